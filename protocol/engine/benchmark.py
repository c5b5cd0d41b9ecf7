"""Exact mode against native torch on whole training steps of the example models (``veritrain bench repro``).

For each example spec two :class:`~protocol.engine.runner.Trainer` s are built on the same data, batch size
and architecture: one in exact mode (the reproducible kernels) and one in tolerance mode (plain torch, its
default optimizers). Both use the same thread count (torch's default unless given). After a warm-up, rounds
of ``steps`` optimizer steps alternate between the two so that a change of machine load hits both; the
per-step time of each is its best round (the machine may be shared: a slow round measures the neighbours,
not the code), ``ratio`` = exact / native. Checkpointing is not timed (it is the same work in both modes).
"""

from __future__ import annotations

import os
import time

import torch

from protocol.repro import KERNEL_SET_VERSION
from protocol.spec import JobSpec, ToleranceMode

from .data import load_dataset
from .examples import EXAMPLES, load_example, shortened
from .runner import Trainer, configure_threads

__all__ = ["repro_benchmark"]

_LONG = 1_000_000  # total_steps for the timed copies, so no schedule limit is hit


def _trainer(spec: JobSpec, exact: bool) -> Trainer:
    doc = {} if exact else {"mode": ToleranceMode().model_dump(mode="json")}
    s = shortened(spec, _LONG, _LONG, **doc)
    t = Trainer(s, load_dataset(s.dataset))
    t.init()
    return t


def _time_steps(t: Trainer, n: int) -> float:
    t0 = time.perf_counter()
    t.train_steps(n)
    return (time.perf_counter() - t0) / n


def bench_model(spec: JobSpec, steps: int = 5, rounds: int = 7, warmup: int = 3) -> dict[str, float]:
    """``{"native_step_s", "exact_step_s", "ratio"}`` for one spec (see the module docstring)."""
    native, exact = _trainer(spec, False), _trainer(spec, True)
    native.train_steps(warmup)
    exact.train_steps(warmup)
    nt, et = [], []
    for _ in range(rounds):
        nt.append(_time_steps(native, steps))
        et.append(_time_steps(exact, steps))
    n, e = min(nt), min(et)
    return {"native_step_s": round(n, 6), "exact_step_s": round(e, 6), "ratio": round(e / n, 3)}


def repro_benchmark(
    models: list[str] | None = None,
    steps: dict[str, int] | int | None = None,
    rounds: int = 7,
    threads: int | None = None,
) -> dict:
    """Bench each example (all by default); returns ``{name: {...}, ..., "settings": {...}}``."""
    configure_threads(threads)
    default_steps = {"mlp_digits": 20, "cnn_digits": 10, "tiny_lm": 3}
    out: dict = {}
    for name in models or list(EXAMPLES):
        n = steps if isinstance(steps, int) else (steps or {}).get(name, default_steps.get(name, 5))
        out[name] = bench_model(load_example(name), steps=n, rounds=rounds)
    out["settings"] = {
        "threads": torch.get_num_threads(),
        "kernel_set": KERNEL_SET_VERSION,
        "torch": torch.__version__,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "rounds": rounds,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    return out
