"""Exact mode gives the same bytes under ATEN_CPU_CAPABILITY ∈ {default, avx2, avx512} × threads ∈ {1, 2}.

Each cell of the matrix is a fresh subprocess (the capability is read once at
torch start-up) running :mod:`protocol.repro.selftest`: an MLP, a CNN and an
attention block trained a few steps (forward, backward, AdamW/SGD), with
sha256 over every parameter, optimizer state and loss. All six exact-mode
digests must be equal. The same workload in native torch is run alongside as
evidence that the matrix is meaningful: on this kind of machine native torch
gives different digests; where it happens not to, that is only printed.

A second test recompiles the numba kernels for other CPUs (``NUMBA_CPU_NAME``:
``generic`` x86-64 = SSE2 only, ``haswell`` = AVX2 without AVX-512) with the
other register tiling, as an older machine would: same digest again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAPS = ("default", "avx2", "avx512")
THREADS = (1, 2)


def _cell(cap: str, threads: int, **extra_env: str) -> dict:
    env = dict(os.environ, ATEN_CPU_CAPABILITY=cap, OMP_NUM_THREADS=str(threads), PYTHONHASHSEED="0")
    for k in ("VERITRAIN_REPRO_TILING", "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "VERITRAIN_REPRO_PAR_MIN"):
        env.pop(k, None)
    if threads > 1:
        # the workload is tiny: make every kernel take its multi-threaded version anyway
        env["VERITRAIN_REPRO_PAR_MIN"] = "0"
    env.update(extra_env)
    proc = subprocess.run(
        [sys.executable, "-m", "protocol.repro.selftest", "--mode", "both", "--threads", str(threads)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"selftest failed under {cap}/{threads}:\n{proc.stderr[-4000:]}"
    exact, native = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"exact": exact, "native": native}


_results: dict = {}


def _matrix() -> dict:
    if not _results:
        cells = [(cap, th) for cap in CAPS for th in THREADS]
        # two processes at a time: start-up (imports, loading the compiled kernels) dominates each cell
        with ThreadPoolExecutor(max_workers=2) as pool:
            _results.update(zip(cells, pool.map(lambda c: _cell(*c), cells), strict=True))
    return _results


def test_exact_mode_is_identical_across_isa_and_threads():
    results = _matrix()

    exact = {k: v["exact"]["all"] for k, v in results.items()}
    native = {k: v["native"]["all"] for k, v in results.items()}
    caps_seen = {k: v["native"]["capability"] for k, v in results.items()}
    print("\ncapability reported by torch:", caps_seen)
    print("exact digests :", {f"{c}/{t}": d[:16] for (c, t), d in exact.items()})
    print("native digests:", {f"{c}/{t}": d[:16] for (c, t), d in native.items()})

    assert len(set(exact.values())) == 1, f"exact mode differs across the matrix: {exact}"
    for part in ("mlp", "cnn", "attn"):
        assert len({v["exact"]["digests"][part] for v in results.values()}) == 1

    distinct_native = len(set(native.values()))
    print(f"native torch: {distinct_native} distinct digests over {len(native)} cells")
    if distinct_native == 1:
        print("note: native torch did not differ on this CPU; the matrix is not evidence here")


def test_exact_mode_is_identical_for_other_numba_targets():
    reference = _matrix()[("avx512", 2)]["exact"]["all"]
    targets = (("generic", "default"), ("haswell", "avx2"))
    # each cell compiles every kernel for its target on one thread: both at once
    with ThreadPoolExecutor(max_workers=2) as pool:
        cells = list(pool.map(lambda t: _cell(t[1], 2, NUMBA_CPU_NAME=t[0], VERITRAIN_REPRO_TILING="4x16"), targets))
    for (cpu, _), cell in zip(targets, cells, strict=True):
        assert cell["exact"]["all"] == reference, f"numba target {cpu}: exact digest differs"
