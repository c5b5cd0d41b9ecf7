"""`veritrain train` gives the same trajectory root under ATEN_CPU_CAPABILITY ∈ {default, avx2, avx512} ×
threads ∈ {1, 2}: each cell is a fresh subprocess (torch reads the capability once at start-up) training a
shortened MLP example job (exact mode, SGD with momentum, 4 segments) into its own output directory.

The same job in tolerance mode (native torch) runs in two opposite cells as evidence that the matrix is
meaningful: on this kind of machine its roots differ (where they do not, that is only printed).

A second exact job uses spec version 2's training options — a warm-up + cosine learning-rate schedule,
gradient clipping by global norm (a threshold every step exceeds), gradient accumulation over 4 micro-batches,
a frozen layer and held-out metrics in every checkpoint — and must also give one root in all six cells.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from protocol.engine.examples import load_example, shortened

ROOT = Path(__file__).resolve().parents[1]
CAPS = ("default", "avx2", "avx512")
THREADS = (1, 2)
#: Native torch runs in two opposite cells only (evidence, not a requirement; keeps the test short).
NATIVE_CELLS = {("default", 1), ("avx512", 2)}


def _train(spec_file: Path, out: Path, cap: str, threads: int) -> dict:
    env = dict(os.environ, ATEN_CPU_CAPABILITY=cap, PYTHONHASHSEED="0")
    for k in ("VERITRAIN_REPRO_TILING", "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "OMP_NUM_THREADS"):
        env.pop(k, None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "veritrain.cli",
            "train",
            str(spec_file),
            "--out",
            str(out),
            "--json",
            "--threads",
            str(threads),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"train failed under {cap}/{threads}:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


V2_OPTIONS = {
    "version": 2,
    "schedule": {"warmup_steps": 8, "decay": "cosine", "final_lr_fraction": 0.05},
    "clip_grad_norm": 0.25,
    "grad_accumulation": 4,
    "freeze": ["layers.0.bias"],
    "evaluation": {"max_examples": 200},
}


def test_same_trajectory_root_across_isa_and_threads(tmp_path):
    exact = shortened(load_example("mlp_digits"), 40, 10)
    native = shortened(load_example("mlp_digits"), 40, 10, mode={"kind": "tolerance"})
    finetune = shortened(load_example("mlp_digits"), 40, 10, **V2_OPTIONS)
    files = {}
    for name, spec in (("exact", exact), ("native", native), ("v2", finetune)):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_bytes(spec.canonical_json())

    cells = [
        (name, cap, th)
        for cap in CAPS
        for th in THREADS
        for name in ("exact", "v2", "native")
        if name != "native" or (cap, th) in NATIVE_CELLS
    ]
    # two processes at a time: start-up (imports, loading the compiled kernels) dominates each cell
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda c: _train(files[c[0]], tmp_path / "-".join(map(str, c)), c[1], c[2]), cells))
    roots: dict[str, dict[tuple[str, int], str]] = {"exact": {}, "v2": {}, "native": {}}
    for (name, cap, th), res in zip(cells, results, strict=True):
        assert res["leaves"] == 4
        roots[name][(cap, th)] = res["trajectory_root"]
    print("\nexact roots :", {f"{c}/{t}": r[:18] for (c, t), r in roots["exact"].items()})
    print("native roots:", {f"{c}/{t}": r[:18] for (c, t), r in roots["native"].items()})
    print("v2 roots   :", {f"{c}/{t}": r[:18] for (c, t), r in roots["v2"].items()})
    assert len(set(roots["exact"].values())) == 1, f"exact mode differs across the matrix: {roots['exact']}"
    assert len(set(roots["v2"].values())) == 1, f"schedule/clip/accumulation differ across the matrix: {roots['v2']}"
    assert roots["v2"][("default", 1)] != roots["exact"][("default", 1)]
    metrics = {(tmp_path / f"v2-{c}-{t}" / "metrics.json").read_text() for c in CAPS for t in THREADS}
    assert len(metrics) == 1 and len(json.loads(metrics.pop())) == 4  # one entry per checkpoint, the same bits
    distinct = len(set(roots["native"].values()))
    print(f"native torch: {distinct} distinct trajectory roots over {len(roots['native'])} cells")
    # the leaf lists on disk agree too
    lists = {(tmp_path / f"exact-{c}-{t}" / "leaves.json").read_text() for c in CAPS for t in THREADS}
    assert len(lists) == 1 and len(json.loads(lists.pop())) == 4
