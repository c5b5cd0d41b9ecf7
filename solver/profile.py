"""The solver's capability profile: measured exact-mode throughput per example model (examples per second).

Measured once at start on the shipped example specs (:mod:`protocol.engine.examples`) and cached in
``<data dir>/profile.json`` keyed by the kernel set, thread count and device, so a restart does not measure
again. The node publishes it (EIP-712 ``SolverProfile``) to the marketplace and derives each bid's ETA from it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from protocol.atomic import atomic_write_json
from protocol.engine.data import load_dataset
from protocol.engine.examples import load_example, shortened
from protocol.engine.runner import Trainer
from protocol.repro import KERNEL_SET_VERSION

__all__ = ["MODEL_EXAMPLES", "eta_seconds", "load_or_measure", "measure"]

#: Model kind (as the marketplace names it) → the example spec measured for it.
MODEL_EXAMPLES = {"mlp": "mlp_digits", "cnn": "cnn_digits", "transformer_lm": "tiny_lm"}
_STEPS = {"mlp": 20, "cnn": 4, "transformer_lm": 2}


def measure(kinds: list[str], device: str = "cpu") -> dict[str, float]:
    """Training examples per second, exact mode, for each model kind in ``kinds``."""
    out: dict[str, float] = {}
    for kind in kinds:
        example = load_example(MODEL_EXAMPLES[kind])
        steps = _STEPS[kind]
        spec = shortened(example, 1_000_000, 1_000_000)
        t = Trainer(spec, load_dataset(spec.dataset), device)
        t.init()
        t.train_steps(1)  # warm-up (kernel compilation, allocation)
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            t.train_steps(steps)
            best = min(best, (time.perf_counter() - t0) / steps)
        out[kind] = round(spec.batch_size / best, 3)
    return out


def load_or_measure(data_dir: Path, kinds: list[str], device: str = "cpu") -> dict:
    """The cached profile document if it matches this machine's settings, else a new measurement."""
    key = {"kernel_set": KERNEL_SET_VERSION, "threads": torch.get_num_threads(), "device": device}
    path = Path(data_dir) / "profile.json"
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key and set(kinds) <= set(cached["profile"]["throughput"]):
            return cached["profile"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    doc = {"throughput": measure(kinds, device), "kernel_set": KERNEL_SET_VERSION, "device": device}
    atomic_write_json(path, {"key": key, "profile": doc, "measured_at": round(time.time(), 3)})
    return doc


def eta_seconds(profile: dict, spec, margin: float = 2.0, fixed_s: int = 15) -> int:
    """An honest time-to-commit for ``spec`` from the measured throughput: training time at the measured
    rate, times ``margin`` (checkpoints, load from other work), plus ``fixed_s`` for the commit itself."""
    rate = float(profile["throughput"][spec.model.kind])
    return int(spec.total_steps * spec.batch_size / rate * margin) + fixed_s
