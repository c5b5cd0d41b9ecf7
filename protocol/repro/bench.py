"""Micro-benchmark: exact-mode kernels against native torch on the same inputs.

:func:`run` times, in both modes on the same inputs:

* layers — forward alone and forward+backward (all gradients) for linear
  layers 64×784→128 and 256×784→512 and a 3×3 conv layer 16→32 channels on
  64×14×14 images: ``{"native_fwd_s", "exact_fwd_s", "fwd_ratio",
  "native_step_s", "exact_step_s", "ratio"}``;
* whole training steps (forward, cross-entropy, backward, AdamW) of a small
  MLP (64→128→128→10) and a small CNN (two 3×3 convs, max-pools, linear) on
  batches of 64: ``{"native_step_s", "exact_step_s", "ratio"}``.

Times are medians of wall time over repeats, ``ratio`` = exact / native.
On a shared machine multi-threaded timings are at the mercy of other jobs
(a parallel region waits for its slowest thread); single-thread figures are
the stable ones.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from . import functional as RF
from ._config import mode, set_threads
from .kernels import KERNEL_SET_VERSION, self_check, tiling

CASES = {
    "linear_64x784x128": ("linear", (64, 784, 128)),
    "linear_256x784x512": ("linear", (256, 784, 512)),
    "conv_64x16x14x14_k3_to32": ("conv", (64, 16, 14, 14, 32, 3)),
}


def _median_time(fn: Callable[[], object], repeats: int, min_time: float) -> float:
    fn()
    fn()
    times: list[float] = []
    t_end = time.perf_counter() + min_time
    while len(times) < repeats or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 50 * repeats:
            break
    return statistics.median(times)


def _inputs(kind: str, dims: tuple, seed: int = 0) -> list[torch.Tensor]:
    g = np.random.Generator(np.random.Philox(key=seed))

    def t(*shape, scale=1.0):
        return torch.from_numpy((g.standard_normal(shape) * scale).astype(np.float32)).requires_grad_(True)

    if kind == "linear":
        n, k, m = dims
        return [t(n, k), t(m, k, scale=k**-0.5), t(m)]
    b, c, h, w, o, ks = dims
    return [t(b, c, h, w), t(o, c, ks, ks, scale=(c * ks * ks) ** -0.5), t(o)]


def _fn(kind: str, ins: list[torch.Tensor], backward: bool) -> Callable[[], object]:
    def call():
        if kind == "linear":
            y = RF.linear(*ins)
        else:
            y = RF.conv2d(ins[0], ins[1], ins[2], 1, 1)
        if backward:
            return torch.autograd.grad(y, ins, torch.ones_like(y))
        return y

    if not backward:

        def fwd():
            with torch.no_grad():
                return call()

        return fwd
    return call


def _model(kind: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    from . import nn as RN

    g = np.random.Generator(np.random.Philox(key=1))
    torch.manual_seed(0)
    if kind == "mlp":
        model = torch.nn.Sequential(RN.ExactLinear(64, 128), RN.ExactReLU(), RN.ExactLinear(128, 128), RN.ExactReLU(),
                                    RN.ExactLinear(128, 10))  # fmt: skip
        x = torch.from_numpy(g.standard_normal((64, 64)).astype(np.float32))
    else:
        model = torch.nn.Sequential(
            RN.ExactConv2d(1, 16, 3, padding=1), RN.ExactReLU(), RN.ExactMaxPool2d(2),
            RN.ExactConv2d(16, 32, 3, padding=1), RN.ExactReLU(), RN.ExactMaxPool2d(2),
            torch.nn.Flatten(), RN.ExactLinear(32 * 2 * 2, 10),
        )  # fmt: skip
        x = torch.from_numpy(g.standard_normal((64, 1, 8, 8)).astype(np.float32))
    y = torch.from_numpy(g.integers(0, 10, size=64))
    return model, x, y


def _train_step(kind: str) -> Callable[[], object]:
    from .optim import ExactAdamW

    model, x, y = _model(kind)
    opt = ExactAdamW(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        loss = RF.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def run(threads: int | None = None, repeats: int = 10, min_time: float = 0.3) -> dict:
    """Time every case in native and exact mode; see the module docstring for the result's keys."""
    if threads is not None:
        set_threads(threads)
    else:
        set_threads(torch.get_num_threads())
    self_check()  # compile / load the kernels outside the timings
    out: dict = {
        "threads": torch.get_num_threads(),
        "kernel_set": KERNEL_SET_VERSION,
        "tiling": "x".join(map(str, tiling())),
        "torch": torch.__version__,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "cases": {},
    }
    for name, (kind, dims) in CASES.items():
        ins = _inputs(kind, dims)
        r: dict = {}
        for m in ("native", "exact"):
            with mode(m):
                r[f"{m}_fwd_s"] = _median_time(_fn(kind, ins, False), repeats, min_time)
                r[f"{m}_step_s"] = _median_time(_fn(kind, ins, True), repeats, min_time)
        r["fwd_ratio"] = r["exact_fwd_s"] / r["native_fwd_s"]
        r["ratio"] = r["exact_step_s"] / r["native_step_s"]
        out["cases"][name] = r
    for kind in ("mlp", "cnn"):
        r = {}
        for m in ("native", "exact"):
            with mode(m):
                r[f"{m}_step_s"] = _median_time(_train_step(kind), repeats, min_time)
        r["ratio"] = r["exact_step_s"] / r["native_step_s"]
        out["cases"][f"{kind}_train_step"] = r
    return out


if __name__ == "__main__":  # pragma: no cover - manual use
    import json

    print(json.dumps(run(), indent=2))
