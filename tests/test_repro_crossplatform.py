"""Exact mode gives the same bytes on every platform: golden roots, a guard on the torch ops training calls, and
the correctly rounded square root.

Why (measured 2026-11): ``torch.sqrt`` on float32 is not correctly rounded on CPU — torch 2.13.0 is one ulp off
for ~20% of inputs (any ATEN_CPU_CAPABILITY), torch 2.11.0 for ~0.7% (other inputs), CUDA's is exact — so
LayerNorm and AdamW gave the tiny LM three different trajectory roots on three platforms while the MLP and CNN
(SGD, no norm) agreed. Nothing in exact mode may depend on a library's rounding except the IEEE-754 basic
operations (+ − × ÷ on tensors, comparisons, exact conversions and data movement).

* :data:`GOLDEN` pins the roots of short runs of all three example jobs. They were computed on this machine
  (torch 2.13 CPU, AVX-512) and checked equal on a device machine's CPU (torch 2.11, 1 and 16 threads) and its
  H100 (``--device cuda``, the pure-torch reference path). Any platform whose exact mode diverges fails here.
  ``python -m tests.test_repro_crossplatform [cpu|cuda]`` prints them (for checking a new machine).
* :func:`test_exact_training_uses_only_allowed_torch_ops` runs a step of each model under a dispatch mode and
  fails on any aten op outside an allow-list of exact operations (a library sqrt/exp/sum/matmul, a division
  by a Python scalar — CUDA turns that into a reciprocal multiply —, ``alpha=`` fused adds, scatter-adds),
  with the fast (numba) backend and with the reference backend (what CUDA runs with ``VERITRAIN_REPRO_CUDA=reference``;
  ``tests/test_repro_triton.py`` runs the same guard over the Triton kernels).
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from protocol.engine.data import load_dataset
from protocol.engine.examples import load_example, shortened
from protocol.engine.runner import Trainer
from protocol.repro import _config, fmath, kernels
from protocol.repro.version import KERNEL_SET_VERSION
from protocol.state import state_root
from protocol.trajectory import Trajectory

#: example -> (total_steps, checkpoint_interval, trajectory root). Same on every platform (see module doc).
GOLDEN: dict[str, tuple[int, int, str]] = {
    "tiny_lm": (4, 2, "0x5cc8aa0042af3b2bf3be3edbcb54f5f82e029ba77e8ed12cfee953f624bdb3ab"),
    "mlp_digits": (4, 2, "0x330b62f21da9dbde3b9b594addd240e218ce74fdb8cb0576eeba6edceb77834b"),
    "cnn_digits": (4, 2, "0xe6d3dd60ceeb2f0f9ce05c976e158a16b7d0f2a34801f9f5c6544bc28658a889"),
}


def job_roots(name: str, steps: int, interval: int, device: str = "cpu") -> tuple[str, str]:
    """(init state root, trajectory root) of the example ``name`` shortened to ``steps`` steps."""
    spec = shortened(load_example(name), steps, interval)
    tr = Trainer(spec, load_dataset(spec.dataset), device)
    init = state_root(tr.init())
    traj = Trajectory.in_memory()
    for _ in range(steps // interval):
        tr.train_steps(interval)
        traj.append(state_root(tr.state()))
    return "0x" + init.hex(), "0x" + traj.root().hex()


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_roots_of_the_examples(name):
    steps, interval, want = GOLDEN[name]
    assert KERNEL_SET_VERSION == "repro-v2", "a new kernel set needs new golden roots"
    _, got = job_roots(name, steps, interval)
    assert got == want, f"{name}: exact mode on this platform diverges from the golden trajectory root"


# ------------------------------------------------------------------------------------------------------------
# the torch ops exact-mode training may call
# ------------------------------------------------------------------------------------------------------------
#: aten ops (overload packet names) whose results are exact or correctly rounded on every device: IEEE basic
#: arithmetic, comparisons/selects, integer and bit operations, and data movement.
ALLOWED = {
    # correctly rounded arithmetic (div only by a tensor: checked below)
    "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "rsub", "neg",
    "_foreach_add", "_foreach_add_", "_foreach_sub", "_foreach_sub_", "_foreach_mul", "_foreach_mul_",
    "_foreach_div", "_foreach_div_",
    # exact
    "abs", "copysign", "where", "clamp", "clamp_min", "clamp_max", "round", "nan_to_num", "masked_fill",
    "masked_fill_", "relu", "threshold_backward", "max", "min", "amax", "amin", "argmax", "eq", "ne", "lt", "le",
    "gt", "ge",
    "isnan", "logical_not", "logical_and", "logical_or", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
    "bitwise_left_shift", "bitwise_right_shift", "sort", "cummax", "searchsorted", "arange", "triu", "tril",
    # data movement / creation
    "index", "index_put", "index_put_", "index_select", "gather", "scatter", "scatter_", "cat", "stack",
    "constant_pad_nd", "zeros", "zeros_like", "ones", "ones_like", "full", "full_like", "fill_", "new_zeros",
    "new_ones", "new_full", "scalar_tensor", "empty", "empty_like", "empty_strided", "new_empty",
    "new_empty_strided", "slice_backward", "select_backward", "copy_", "clone", "_to_copy", "contiguous",
    "view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "slice", "select", "detach", "alias",
    "unsqueeze", "squeeze", "as_strided", "split", "split_with_sizes", "unbind", "lift_fresh", "unfold",
    "_local_scalar_dense", "is_nonzero", "unflatten", "movedim", "set_", "_record_function_enter_new",
    "_record_function_exit", "zero_", "resize_", "view_as_real", "flatten", "item",
}  # fmt: skip


class OpGuard(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.bad: dict[str, int] = {}

    def _flag(self, what: str) -> None:
        self.bad[what] = self.bad.get(what, 0) + 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name not in ALLOWED:
            self._flag(str(func))
        elif name in ("div", "div_") and not isinstance(args[1], torch.Tensor):
            self._flag(f"{func} by a Python scalar")
        elif name.startswith("_foreach_div") and not isinstance(args[1], (list, tuple)):
            self._flag(f"{func} by a Python scalar")
        elif name in ("add", "add_", "sub", "sub_", "_foreach_add", "_foreach_add_", "_foreach_sub", "_foreach_sub_"):
            if kwargs.get("alpha", 1) != 1:
                self._flag(f"{func} with alpha (a fused multiply-add)")
        return func(*args, **kwargs)


SMALL_LM = {"kind": "transformer_lm", "vocab_size": 74, "context": 16, "d_model": 16, "n_heads": 2, "n_layers": 1,
            "d_ff": 32, "dropout": 0.1}  # fmt: skip


#: Spec version 2's training options, all at once: warm-up + cosine schedule, clipping, accumulation, LoRA
#: adapters on every linear layer, held-out metrics in each checkpoint.
V2_OPTIONS = {
    "version": 2,
    "schedule": {"warmup_steps": 1, "decay": "cosine", "final_lr_fraction": 0.1},
    "clip_grad_norm": 0.5,
    "grad_accumulation": 2,
    "lora": {"rank": 2, "alpha": 4.0, "targets": ["*"], "train": ["*bias"]},
    "evaluation": {"max_examples": 8},
}


def _guarded_steps(name: str, backend: str, steps: int = 2, v2: bool = False) -> dict[str, int]:
    changes: dict = {"batch_size": 4, **(V2_OPTIONS if v2 else {})}
    if name == "tiny_lm":
        changes["model"] = SMALL_LM
    spec = shortened(load_example(name), steps, 1, **changes)
    tr = Trainer(spec, load_dataset(spec.dataset))
    tr.init()
    guard = OpGuard()
    with _config.backend(backend), guard:
        tr.train_steps(steps)
        if v2:
            tr.state()  # the checkpoint's held-out evaluation
    return guard.bad


@pytest.mark.parametrize("backend", ["fast", "reference"])
@pytest.mark.parametrize("name", ["tiny_lm", "mlp_digits", "cnn_digits"])
def test_exact_training_uses_only_allowed_torch_ops(name, backend):
    bad = _guarded_steps(name, backend)
    assert not bad, (
        f"exact-mode training of {name} ({backend}) calls torch ops whose rounding is library-defined: {bad}"
    )


@pytest.mark.parametrize("backend", ["fast", "reference"])
@pytest.mark.parametrize("name", ["tiny_lm", "mlp_digits", "cnn_digits"])
def test_exact_training_with_every_v2_option_uses_only_allowed_torch_ops(name, backend):
    bad = _guarded_steps(name, backend, v2=True)
    assert not bad, f"{name} ({backend}) with schedule/clip/accumulation/LoRA/metrics calls {bad}"


def test_the_op_guard_catches_library_rounding():
    guard = OpGuard()
    x = torch.rand(8) + 1
    with guard:
        torch.sqrt(x), x.exp(), x.sum(), x / 3.0, torch.add(x, x, alpha=2.0), torch.tanh(x)
        x / torch.tensor(3.0), x + 1.0, x * x
    assert set(guard.bad) == {
        "aten.sqrt.default", "aten.exp.default", "aten.sum.default", "aten.div.Tensor by a Python scalar",
        "aten.add.Tensor with alpha (a fused multiply-add)", "aten.tanh.default",
    }, guard.bad  # fmt: skip


def test_reference_backend_gives_the_fast_backends_bits_for_the_lm():
    """The reference path (the oracle; CUDA's with VERITRAIN_REPRO_CUDA=reference) and the numba path (CPU) agree on
    a few LM steps (AdamW, LayerNorm, GELU, attention, embedding, dropout)."""
    spec = shortened(load_example("tiny_lm"), 3, 1, model=SMALL_LM, batch_size=4)
    ds = load_dataset(spec.dataset)
    roots = {}
    for backend in ("fast", "reference"):
        tr = Trainer(spec, ds)
        tr.init()
        with _config.backend(backend):
            tr.train_steps(3)
        roots[backend] = state_root(tr.state())
    assert roots["fast"] == roots["reference"]


# ------------------------------------------------------------------------------------------------------------
# sqrt
# ------------------------------------------------------------------------------------------------------------
def _bracket_ok(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """r is the correctly rounded sqrt of positive finite x, checked with exact binary64 products only."""
    ri = r.view(np.uint32)
    up = (ri + np.uint32(1)).view(np.float32).astype(np.float64)
    dn = (ri - np.uint32(1)).view(np.float32).astype(np.float64)
    rd, xd = r.astype(np.float64), x.astype(np.float64)
    hi, lo = (rd + up) * 0.5, (rd + dn) * 0.5
    return (lo * lo < xd) & (xd < hi * hi) & (ri > 0) & (ri < 0x7F800000)


def test_sqrt_reference_is_correctly_rounded_on_two_whole_binades():
    """Every float32 in [1, 4) (the algorithm is scale-invariant up to the exponent), checked exactly."""
    for lo in range(0x3F800000, 0x40800000, 1 << 22):
        x = np.arange(lo, lo + (1 << 22), dtype=np.uint32).view(np.float32)
        r = fmath.sqrt_reference(torch.from_numpy(x)).numpy()
        assert _bracket_ok(x, r).all()


def test_sqrt_on_random_bit_patterns_subnormals_and_specials():
    g = np.random.default_rng(31)
    bits = g.integers(0, 2**32, size=2_000_000, dtype=np.uint64).astype(np.uint32)
    sub = g.integers(1, 0x800000, size=100_000, dtype=np.int64).astype(np.uint32)  # positive subnormals
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, -1.0, -1e-45, 1e-45, 3.4028235e38, 1.0, 4.0],
                       np.float32)  # fmt: skip
    x = np.concatenate([bits.view(np.float32), sub.view(np.float32), special])
    xt = torch.from_numpy(x)
    assert kernels.use_fast(xt)
    fast = fmath.sqrt(xt).numpy()
    with _config.backend("reference"):
        ref = fmath.sqrt(xt).numpy()
    small = fmath.sqrt(xt[-1000:]).numpy()  # the serial kernel
    assert fast.tobytes() == ref.tobytes() and small.tobytes() == ref[-1000:].tobytes()
    pos = (x > 0) & np.isfinite(x)
    assert _bracket_ok(x[pos], ref[pos]).all()
    tail = ref[-len(special) :].view(np.uint32)
    qnan = 0x7FC00000
    want = [0, 0x80000000, 0x7F800000, qnan, qnan, qnan, qnan, qnan, 0x1A3504F3, 0x5F7FFFFF, 0x3F800000, 0x40000000]
    assert [int(v) for v in tail] == want


def test_sqrt_f64_is_the_correctly_rounded_binary64_root():
    g = np.random.default_rng(32)
    qs = list(g.integers(1, 0x7FF0000000000000, size=20_000, dtype=np.int64).view(np.float64))
    qs += [5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1.0, 2.0, 0.25, 1 - 0.99**7]
    for q in qs:
        r = fmath.sqrt_f64(float(q))
        assert r == math.sqrt(q)
    for q in qs[:500]:  # exact check independent of libm: r is nearer to sqrt(q) than its neighbours
        r = fmath.sqrt_f64(float(q))
        mid_hi = (Fraction(r) + Fraction(math.nextafter(r, math.inf))) / 2
        mid_lo = (Fraction(r) + Fraction(math.nextafter(r, 0.0))) / 2
        assert mid_lo**2 < Fraction(float(q)) < mid_hi**2
    assert math.copysign(1, fmath.sqrt_f64(-0.0)) == -1 and fmath.sqrt_f64(math.inf) == math.inf
    assert math.isnan(fmath.sqrt_f64(-1.0)) and math.isnan(fmath.sqrt_f64(math.nan))


def test_layer_norm_and_adamw_use_the_correctly_rounded_sqrt():
    """Against float64 references rounded once: LayerNorm's rstd and one AdamW denominator."""
    from protocol.repro import functional as RF
    from protocol.repro.optim import ExactAdamW

    g = np.random.default_rng(33)
    x = torch.from_numpy(g.standard_normal((64, 48)).astype(np.float32))
    y = RF.layer_norm(x, 48, eps=1e-5)
    xd = x.numpy()
    mu = np.zeros(64, np.float32)
    for j in range(48):
        mu = mu + xd[:, j]
    mu = mu / np.float32(48)
    xc = xd - mu[:, None]
    var = np.zeros(64, np.float32)
    for j in range(48):
        var = var + xc[:, j] * xc[:, j]
    var = var / np.float32(48)
    s = np.sqrt((var + np.float32(1e-5)).astype(np.float64)).astype(np.float32)  # correctly rounded
    want = xc * (np.float32(1) / s)[:, None]
    assert y.numpy().tobytes() == want.tobytes()

    p = torch.nn.Parameter(torch.zeros(1000))
    gr = torch.from_numpy(g.standard_normal(1000).astype(np.float32) * 1e-3)
    opt = ExactAdamW([p], lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0)
    p.grad = gr.clone()
    opt.step()
    gn = gr.numpy()
    v = (gn * gn) * np.float32(1 - 0.99)
    c2 = np.float32(math.sqrt(1 - 0.99))
    den = np.sqrt(v.astype(np.float64)).astype(np.float32) / c2 + np.float32(1e-8)
    m = gn * np.float32(1 - 0.9)
    step = np.float32(1e-2 / (1 - 0.9))
    assert p.detach().numpy().tobytes() == (np.float32(0) - (m / den) * step).tobytes()


if __name__ == "__main__":  # print the golden table (python -m tests.test_repro_crossplatform [cpu|cuda])
    dev = sys.argv[1] if len(sys.argv) > 1 else "cpu"
    for ex, (n, k) in {"tiny_lm": (4, 2), "mlp_digits": (4, 2), "cnn_digits": (4, 2)}.items():
        print(ex, n, k, *job_roots(ex, n, k, dev), flush=True)
