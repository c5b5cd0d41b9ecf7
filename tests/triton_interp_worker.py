"""Runs the exact-mode Triton kernels in Triton's CPU interpreter and prints one JSON report (for
``tests/test_repro_triton.py``, which starts it in a subprocess: ``TRITON_INTERPRET`` must be set before triton
is imported, and the rest of the test session must not run interpreted).

``python -m tests.triton_interp_worker --golden [MODEL ...]`` (from the repository root) only runs the golden
roots of ``tests/test_repro_crossplatform.GOLDEN`` on the Triton kernels (all three models by default; the LM
takes minutes). Without arguments it prints::

    {"interpreted": true,
     "first_use_self_check": bool,            # the first kernel call ran the self check on "cpu"
     "kernels": {case: differing elements},   # compare_with_reference, NaN payloads included
     "train": {model: {"fast": root, "triton": root}},   # a few steps, numba vs Triton
     "golden": {model: root},                 # tests/test_repro_crossplatform.GOLDEN runs, Triton backend
     "op_guard": {model: {op: count}},        # torch ops outside the exact allow-list, Triton backend
     "reversed_order": {"differing": int, "self_check_error": str | null},  # a kernel with k descending
     "seconds": {...}}
"""

from __future__ import annotations

import os
import sys

os.environ["TRITON_INTERPRET"] = "1"

import json
import time
import warnings

import numpy as np
import torch
import triton
import triton.language as tl

from protocol.engine.data import load_dataset
from protocol.engine.examples import load_example, shortened
from protocol.engine.runner import Trainer
from protocol.repro import _config
from protocol.repro import _triton_kernels as T
from protocol.repro import kernels as K
from protocol.state import state_root
from tests.test_repro_crossplatform import GOLDEN, SMALL_LM, OpGuard, job_roots

#: A few optimizer steps of each example, shrunk so the interpreter takes seconds (the LM: SMALL_LM).
TRAIN = {"mlp_digits": {"batch_size": 8}, "cnn_digits": {"batch_size": 4}, "tiny_lm": {"batch_size": 4}}
TRAIN_STEPS = 2
GOLDEN_MODELS = ("mlp_digits",)  # cnn_digits takes ~40 s interpreted, tiny_lm ~8 min: `--golden` runs them


def _small(name: str) -> object:
    changes = dict(TRAIN[name])
    if name == "tiny_lm":
        changes["model"] = SMALL_LM
    return shortened(load_example(name), TRAIN_STEPS, 1, **changes)


def _root(spec, ds, backend: str) -> str:
    tr = Trainer(spec, ds)
    tr.init()
    with _config.backend(backend):
        tr.train_steps(TRAIN_STEPS)
    return "0x" + state_root(tr.state()).hex()


@triton.jit
def _mm_k_descending(
    a, a_base, a_bs, a_ro, a_rs, a_co, a_cs,
    b, b_base, b_bs, b_ro, b_rs, b_co, b_cs,
    bias, c, c_base, c_bs, c_ro, c_rs, c_co, c_cs,
    M, N, K,
    A_BT: tl.constexpr, A_RT: tl.constexpr, A_CT: tl.constexpr,
    B_BT: tl.constexpr, B_RT: tl.constexpr, B_CT: tl.constexpr,
    C_BT: tl.constexpr, C_RT: tl.constexpr, C_CT: tl.constexpr,
    HAS_BIAS: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
):  # fmt: skip
    """The GEMM with k walked from K-1 down to 0: the same sums in another order (what the self check must catch)."""
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    p = tl.program_id(2)
    in_m, in_n = rm < M, rn < N
    a_row = T._axis1(a_base, a_bs, p, A_BT) + T._axis(a_ro, a_rs, rm, A_RT, in_m)
    b_col = T._axis1(b_base, b_bs, p, B_BT) + T._axis(b_co, b_cs, rn, B_CT, in_n)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for kk in range(0, K):
        k = K - 1 - kk
        av = tl.load(a + (a_row + T._axis1(a_co, a_cs, k, A_CT)), mask=in_m, other=0.0)
        bv = tl.load(b + (b_col + T._axis1(b_ro, b_rs, k, B_RT)), mask=in_n, other=0.0)
        acc = acc + av[:, None] * bv[None, :]
    if HAS_BIAS:
        acc = acc + tl.load(bias + rn, mask=in_n, other=0.0)[None, :]
    dst = (
        T._axis1(c_base, c_bs, p, C_BT)
        + T._axis(c_ro, c_rs, rm, C_RT, in_m)[:, None]
        + T._axis(c_co, c_cs, rn, C_CT, in_n)[None, :]
    )
    tl.store(c + dst, acc, mask=in_m[:, None] & in_n[None, :])


def golden(models: list[str]) -> dict:
    """``{model: {"root", "golden", "equal", "seconds"}}`` of the GOLDEN runs with the Triton backend."""
    out = {}
    for name in models:
        steps, interval, want = GOLDEN[name]
        t0 = time.perf_counter()
        with _config.backend("triton"):
            root = job_roots(name, steps, interval)[1]
        out[name] = {"root": root, "golden": want, "equal": root == want, "seconds": round(time.perf_counter() - t0, 1)}
    return out


def main() -> None:
    warnings.filterwarnings("ignore")  # numpy overflow warnings on random bit patterns (inf/NaN results are intended)
    np.seterr(all="ignore")
    if sys.argv[1:2] == ["--golden"]:  # python -m tests.triton_interp_worker --golden cnn_digits tiny_lm
        json.dump(golden(sys.argv[2:] or list(GOLDEN)), sys.stdout, indent=2)
        return
    report: dict = {"interpreted": T.interpreted(), "seconds": {}}

    t0 = time.perf_counter()
    x = torch.linspace(-3, 3, 50)
    with _config.backend("triton"):
        K.rowsum(x.reshape(5, 10))  # the first kernel call on this device
    report["first_use_self_check"] = "cpu" in T._checked
    report["kernels"] = T.compare_with_reference("cpu", nan_payloads=True)
    report["seconds"]["kernels"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    report["train"] = {}
    for name in TRAIN:
        spec = _small(name)
        ds = load_dataset(spec.dataset)
        report["train"][name] = {b: _root(spec, ds, b) for b in ("fast", "triton")}
    report["seconds"]["train"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    report["golden"] = {name: r["root"] for name, r in golden(list(GOLDEN_MODELS)).items()}
    report["seconds"]["golden"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    report["op_guard"] = {}
    for name in TRAIN:
        tr = Trainer(_small(name), load_dataset(_small(name).dataset))
        tr.init()
        guard = OpGuard()
        with _config.backend("triton"), guard:
            tr.train_steps(TRAIN_STEPS)
        report["op_guard"][name] = guard.bad
    report["seconds"]["op_guard"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    T._mm_kernel = _mm_k_descending
    differing = sum(v for k, v in T.compare_with_reference("cpu", quick=True).items() if k.startswith("mm"))
    T._checked.clear()  # as in a fresh process
    error = None
    try:
        T.self_check("cpu")
    except Exception as exc:  # the typed error is what the test checks
        error = f"{type(exc).__name__}: {exc}"
    report["reversed_order"] = {"differing": differing, "self_check_error": error}
    report["seconds"]["reversed_order"] = round(time.perf_counter() - t0, 2)
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
