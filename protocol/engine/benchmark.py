"""Exact mode against native torch on whole training steps of the example models (``veritrain bench repro``).

For each example spec two :class:`~protocol.engine.runner.Trainer` s are built on the same data, batch size
and architecture: one in exact mode (the reproducible kernels) and one in tolerance mode (plain torch, its
default optimizers). Both use the same thread count (torch's default unless given) and the same device. After
a warm-up (which also compiles the kernels: numba on CPU, Triton on CUDA), rounds of ``steps`` optimizer steps
alternate between the two so that a change of machine load hits both; the per-step time of each is its best
round (the machine may be shared: a slow round measures the neighbours, not the code), ``ratio`` = exact /
native. Checkpointing is not timed (it is the same work in both modes).

On CUDA the exact side runs the Triton kernels (:mod:`protocol.repro._triton_kernels`) and the native side
torch's float32 kernels with TF32 switched off (cuBLAS and cuDNN would otherwise round products to 10-bit
mantissas, which is neither float32 nor what exact mode computes); every step ends with the loss copied to the
host, so the timings include the device's work. :data:`LARGER` names models beyond the examples (a wider,
deeper LM): they run on a GPU by default and on CPU only when asked for by name.
"""

from __future__ import annotations

import contextlib
import os
import time

import torch

from protocol.repro import KERNEL_SET_VERSION
from protocol.spec import JobSpec, ToleranceMode

from .data import load_dataset
from .examples import EXAMPLES, example_data_path, load_example, shortened
from .runner import Trainer, check_device, configure_threads

__all__ = ["LARGER", "bench_model", "bench_names", "bench_spec", "repro_benchmark"]

_LONG = 1_000_000  # total_steps for the timed copies, so no schedule limit is hit

#: Models beyond the examples: name → (example it is derived from, spec changes). ``lm_large``: the tiny LM's
#: data and optimizer with a 4-layer, d=256, 8-head transformer over 128 characters, batch 32 (3.2 M parameters).
LARGER: dict[str, tuple[str, dict]] = {
    "lm_large": (
        "tiny_lm",
        {
            "model": {"kind": "transformer_lm", "vocab_size": 74, "context": 128, "d_model": 256, "n_heads": 8,
                      "n_layers": 4, "d_ff": 1024, "dropout": 0.1},
            "batch_size": 32,
        },
    ),
}  # fmt: skip

_DEFAULT_STEPS = {"mlp_digits": 20, "cnn_digits": 10, "tiny_lm": 3, "lm_large": 2, "gpt_bytes": 1}


def bench_names(device: str = "cpu") -> list[str]:
    """What ``repro_benchmark`` runs by default: the examples, plus :data:`LARGER` on a GPU."""
    return list(EXAMPLES) + (list(LARGER) if torch.device(device).type == "cuda" else [])


def bench_spec(name: str) -> JobSpec:
    """The spec of an example or of a :data:`LARGER` model."""
    if name in LARGER:
        base, changes = LARGER[name]
        return shortened(load_example(base), _LONG, _LONG, **changes)
    return load_example(name)


#: a step of the 10.8M-parameter GPT takes seconds on two cores: fewer timed rounds and warm-up steps
_FEWER = {"gpt_bytes": (3, 1)}


def _trainer(spec: JobSpec, exact: bool, device: str, data_path=None) -> Trainer:
    doc = {} if exact else {"mode": ToleranceMode().model_dump(mode="json")}
    s = shortened(spec, _LONG, _LONG, **doc)
    t = Trainer(s, load_dataset(s.dataset, path=data_path), device)
    t.init()
    return t


def _time_steps(t: Trainer, n: int) -> float:
    t0 = time.perf_counter()
    t.train_steps(n)  # ends each step with the loss on the host: the device's work is inside the timing
    return (time.perf_counter() - t0) / n


@contextlib.contextmanager
def _fp32_native(device: str):
    """On CUDA: TF32 off for cuBLAS and cuDNN (restored afterwards), so native mode computes in float32."""
    if torch.device(device).type != "cuda":
        yield
        return
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def bench_model(
    spec: JobSpec,
    steps: int = 5,
    rounds: int = 7,
    warmup: int = 3,
    device: str = "cpu",
    data_path=None,
) -> dict[str, float]:
    """``{"native_step_s", "exact_step_s", "ratio"}`` for one spec on ``device`` (see the module docstring)."""
    with _fp32_native(device):
        native, exact = _trainer(spec, False, device, data_path), _trainer(spec, True, device, data_path)
        native.train_steps(warmup)
        exact.train_steps(warmup)
        nt, et = [], []
        for _ in range(rounds):
            nt.append(_time_steps(native, steps))
            et.append(_time_steps(exact, steps))
    n, e = min(nt), min(et)
    return {"native_step_s": round(n, 6), "exact_step_s": round(e, 6), "ratio": round(e / n, 3)}


def _device_settings(device: str) -> dict:
    dev = torch.device(device)
    if dev.type != "cuda":
        return {"device": "cpu", "capability": torch.backends.cpu.get_cpu_capability()}
    from protocol.repro._config import cuda_path

    idx = dev.index if dev.index is not None else torch.cuda.current_device()
    info = {
        "device": str(dev),
        "gpu": torch.cuda.get_device_name(idx),
        "cuda": torch.version.cuda,
        "exact_path": cuda_path(),
        "native_tf32": False,
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:  # pragma: no cover - CUDA builds of torch ship triton
        info["triton"] = None
    return info


def repro_benchmark(
    models: list[str] | None = None,
    steps: dict[str, int] | int | None = None,
    rounds: int = 7,
    threads: int | None = None,
    device: str = "cpu",
) -> dict:
    """Bench each model (:func:`bench_names` by default) on ``device``; returns ``{name: {...}, ...,
    "settings": {...}}``. Raises :class:`~protocol.engine.runner.DeviceUnavailable` for a device this machine
    lacks."""
    check_device(device)
    configure_threads(threads)
    out: dict = {}
    for name in models or bench_names(device):
        n = steps if isinstance(steps, int) else (steps or {}).get(name, _DEFAULT_STEPS.get(name, 5))
        r, w = _FEWER.get(name, (rounds, 3))
        data = example_data_path(name) if name in EXAMPLES else None
        out[name] = bench_model(
            bench_spec(name), steps=n, rounds=min(rounds, r), warmup=w, device=device, data_path=data
        )
    out["settings"] = {
        "threads": torch.get_num_threads(),
        "kernel_set": KERNEL_SET_VERSION,
        "torch": torch.__version__,
        **_device_settings(device),
        "rounds": rounds,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    return out
