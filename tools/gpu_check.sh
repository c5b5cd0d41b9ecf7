#!/usr/bin/env bash
# One prepared run of the GPU evidence for exact mode (docs/gpu.md), for a machine with an NVIDIA GPU, a CUDA
# build of torch (with triton), numba and numpy, and no network. From the repository root:
#
#   bash tools/gpu_prepare.sh                 # first, on the CPU machine: .gpu-carry/ (wheels, anvil, artifacts)
#   bash tools/gpu_check.sh                   # then on the GPU machine (the device tool: carry [".gpu-carry"])
#
# Steps, in order, each cut off when the budget (GPU_CHECK_BUDGET_S, default 450 s) runs out:
#   env      versions, GPU, CPU
#   kernels  every Triton kernel vs the reference path on the GPU, bit for bit
#   roots    the three examples' full trajectories on the GPU, then on this CPU, vs the pinned CPU roots
#   bench    veritrain bench repro --device cuda (exact/native step time: examples and lm_large)
#   market   veritrain demo --jobs 1 --solver-device cuda: a devnet job trained on the GPU, audited by CPU verifiers
# Results: $OUT/<step>.json, $OUT/<step>.log and $OUT/summary.json ($OUT defaults to ./gpu-check-out).
# GPU_CHECK_STEPS="roots market" runs only those steps (a rerun after a cut-off step).
# GPU_CHECK_DEVICE=cpu TRITON_INTERPRET=1 makes a dry run of the plumbing on a machine without a GPU.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
BUDGET=${GPU_CHECK_BUDGET_S:-450}
STEPS=" ${GPU_CHECK_STEPS:-env kernels roots bench market} "
START=$(date +%s)
CARRY=$ROOT/.gpu-carry

# --- what the machine lacks comes from .gpu-carry (tools/gpu_prepare.sh) ----------------------------------------
SITE=$ROOT/.gpu-site
if [ -d "$CARRY/wheels" ] && [ ! -d "$SITE" ]; then
    # A wheel is a zip of the files it installs: unpacking the ones for this Python into one folder on PYTHONPATH
    # needs no pip and leaves the machine's own packages (torch, triton, numba, numpy) as they are.
    "$PY" - "$CARRY/wheels" "$SITE" <<'EOF' >"$OUT/setup.log" 2>&1
import importlib.util, pathlib, re, sys, sysconfig, zipfile
wheels, site = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
keep = ("torch", "numpy", "numba", "triton", "llvmlite")
for whl in sorted(wheels.glob("*.whl")):
    name, _, py, abi = whl.name.split("-")[:4]
    if not (abi == "abi3" or any(p.startswith("py3") or p == tag for p in py.split("."))):
        continue  # built for another Python
    if name.lower() in keep:
        continue
    zipfile.ZipFile(whl).extractall(site)
    print("unpacked", whl.name)
EOF
fi
if [ -d "$SITE" ]; then  # byte-compile it now, on all cores, so the API and node processes start fast later
    "$PY" -m compileall -q -j 0 "$SITE" >/dev/null 2>&1 &
fi
export PYTHONPATH=$ROOT${SITE:+:$SITE}${PYTHONPATH:+:$PYTHONPATH}
ANVIL=$ROOT/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
if [ -f "$CARRY/anvil.xz" ] && [ ! -x "$ANVIL" ]; then
    mkdir -p "$(dirname "$ANVIL")"
    "$PY" -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" \
        "$CARRY/anvil.xz" "$ANVIL" && chmod +x "$ANVIL"
fi
if [ -f "$CARRY/artifacts.tar" ]; then
    tar -xf "$CARRY/artifacts.tar" -C "$ROOT" && touch "$ROOT/out/.veritrain-build-stamp"  # newer than the sources
fi
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
# The CPU kernels (numba) compile once per machine (about a minute; later processes read the on-disk cache):
# started now, in the background, they are ready when the CPU roots and the CPU verifiers of the market need them.
"$PY" -c "from protocol.repro.kernels import self_check; self_check()" >"$OUT/numba-warmup.log" 2>&1 &

# --- the steps ---------------------------------------------------------------------------------------------------
step() {
    local name=$1 cap=$2 left
    [[ "$STEPS" == *" $name "* ]] || return 0
    left=$((BUDGET - ($(date +%s) - START)))
    [ "$left" -lt "$cap" ] && cap=$left
    if [ "$cap" -lt 15 ]; then
        echo "$name: skipped, the budget is spent" | tee -a "$OUT/steps.txt"
        return
    fi
    local t0=$(date +%s)
    timeout --kill-after=10 "$cap" "$PY" tools/gpu_check.py "$name" --device "$DEVICE" --out "$OUT" \
        --budget-s "$cap" >"$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name: rc=$rc after $(($(date +%s) - t0)) s (limit $cap s): $(tail -n 1 "$OUT/$name.log")" \
        | tee -a "$OUT/steps.txt"
}
step env 30
step kernels 120
step roots 200
step bench 120
step market 200
"$PY" tools/gpu_check.py summary --out "$OUT" >"$OUT/summary.log" 2>&1
echo "total $(($(date +%s) - START)) s; results in $OUT (summary.json)"
cat "$OUT/summary.json" 2>/dev/null | head -c 6000
