#!/usr/bin/env bash
# Prepares .gpu-carry/ on this (CPU) machine for tools/gpu_check.sh on a GPU machine that reaches no network:
#   .gpu-carry/wheels/      Python wheels of veritrain's dependencies except torch, numpy, numba and triton (the
#                           GPU machine brings those, built for its CUDA) for the Python version given (default 3.12)
#   .gpu-carry/anvil.xz     the anvil binary from node_modules, xz-compressed (43 MB -> ~12 MB)
#   .gpu-carry/artifacts.tar  the forge artifacts of the four protocol contracts (out/), built here if missing
# Pass the folder with `run`'s carry: [".gpu-carry"] (it must stay under 64 MiB; this script says its size).
#
#   bash tools/gpu_prepare.sh            # wheels for CPython 3.12
#   bash tools/gpu_prepare.sh 3.11 3.12  # wheels for both (pure-Python wheels are shared)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "error: run 'make setup' first (.venv is missing)" >&2; exit 1; }
VERSIONS=("${@:-3.12}")
CARRY=.gpu-carry
rm -rf "$CARRY"
mkdir -p "$CARRY/wheels"

# The dependencies from pyproject.toml, minus what the GPU machine's own CUDA stack provides.
mapfile -t DEPS < <("$PY" - <<'EOF'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
skip = {"torch", "numpy", "numba", "triton", "psycopg"}  # psycopg: PostgreSQL only, the devnet uses SQLite
for d in deps:
    if re.split(r"[\[<>=!~ ]", d, maxsplit=1)[0] not in skip:
        print(d)
EOF
)
for v in "${VERSIONS[@]}"; do
    echo "wheels for CPython $v: ${DEPS[*]}"
    "$PY" -m pip download -q --disable-pip-version-check --only-binary=:all: --python-version "$v" \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux_2_5_x86_64 --platform linux_x86_64 --platform any \
        -d "$CARRY/wheels" "${DEPS[@]}"
done

ANVIL=node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
[ -x "$ANVIL" ] || { echo "error: $ANVIL is missing: run 'make setup'" >&2; exit 1; }
"$PY" - "$ANVIL" "$CARRY/anvil.xz" <<'EOF'
import lzma, shutil, sys
with open(sys.argv[1], "rb") as src, lzma.open(sys.argv[2], "wb", preset=6) as dst:
    shutil.copyfileobj(src, dst)
EOF

"$PY" -c "from protocol.build import ensure_forge_build; ensure_forge_build()"
tar -cf "$CARRY/artifacts.tar" out/.veritrain-build-stamp out/VeriToken.sol out/StakeManager.sol \
    out/JobMarket.sol out/DisputeGame.sol

du -sh "$CARRY" "$CARRY"/*
SIZE=$(du -sb "$CARRY" | cut -f1)
if [ "$SIZE" -gt $((64 * 1024 * 1024)) ]; then
    echo "error: $CARRY is $SIZE bytes, over the 64 MiB a run may carry; prepare fewer Python versions" >&2
    exit 1
fi
echo "ready: carry [\"$CARRY\"] and run: bash tools/gpu_check.sh"
