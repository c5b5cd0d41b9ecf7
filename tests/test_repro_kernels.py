"""Exact-mode kernels (protocol.repro): right math, and the fast path equals its reference bit for bit.

1. Every operator, forward and backward, agrees with float64 torch autograd
   within 1e-5 (norm-wise relative error) on well-conditioned random inputs.
2. The numba fast path and the pure-torch reference path give identical
   bits, on random shapes including 1, 3, 17, 33, 129.
3. Supporting facts: thread count and GEMM tiling do not change bits, the
   transcendental functions are accurate to a few ulp and handle special
   values, the optimizers follow their formulas, the mode switch works, the
   generated kernel file is up to date.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from protocol.repro import backend, fmath, kernels, mode
from protocol.repro import functional as RF
from protocol.repro import nn as RN
from protocol.repro.optim import ExactAdamW, ExactSGD, beta_power

TOL = 1e-5


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(key=seed))


def _t(a: np.ndarray, grad: bool = True) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).requires_grad_(grad)


def _randn(g: np.random.Generator, *shape: int, scale: float = 1.0, grad: bool = True) -> torch.Tensor:
    return _t(g.standard_normal(shape) * scale, grad)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    den = b.norm().item()
    return (a - b).norm().item() / (den if den > 0 else 1.0)


def _bits(t: torch.Tensor) -> bytes:
    return t.detach().contiguous().cpu().numpy().tobytes()


# ---------------------------------------------------------------------------------------------
# cases: (name, exact_fn, native_fn, input builder). Each fn maps a list of tensors to one tensor.
# ---------------------------------------------------------------------------------------------
def _case_inputs(name: str, g: np.random.Generator, sizes: dict) -> tuple[list[torch.Tensor], dict]:
    n, k, m = sizes["n"], sizes["k"], sizes["m"]
    if name == "linear":
        return [_randn(g, n, k), _randn(g, m, k, scale=1 / math.sqrt(k)), _randn(g, m)], {}
    if name == "linear_nobias_3d":
        return [_randn(g, 2, n, k), _randn(g, m, k)], {}
    if name == "matmul_batched":
        return [_randn(g, 3, n, k), _randn(g, 3, k, m)], {}
    if name == "matmul_2d":
        return [_randn(g, n, k), _randn(g, k, m)], {}
    if name in ("sum_all", "mean_dim", "sum_dims_keep"):
        return [_randn(g, n, k, 3)], {}
    if name in ("softmax", "log_softmax"):
        return [_randn(g, n, k, scale=3.0)], {}
    if name in ("cross_entropy", "cross_entropy_sum", "cross_entropy_none"):
        return [_randn(g, n, k, scale=2.0)], {"target": torch.from_numpy(g.integers(0, k, size=n))}
    if name == "layer_norm":
        return [_randn(g, n, k), _t(1 + 0.1 * g.standard_normal(k)), _randn(g, k)], {}
    if name == "layer_norm_2d_noaffine":
        return [_randn(g, n, 3, k)], {}
    if name == "embedding":
        return [_randn(g, m, k)], {"idx": torch.from_numpy(g.integers(0, m, size=(n, 3)))}
    if name == "conv2d":
        c = max(1, k % 5)
        return [_randn(g, 2, c, 9, 8), _randn(g, 3, c, 3, 3, scale=0.3), _randn(g, 3)], {}
    if name == "conv2d_strided":
        c = max(1, k % 4)
        return [_randn(g, 2, c, 11, 10), _randn(g, 4, c, 3, 2, scale=0.3), _randn(g, 4)], {}
    if name == "max_pool2d":
        return [_randn(g, 2, 3, 7, 9)], {}
    if name in ("exp", "tanh", "gelu"):
        return [_randn(g, n, k, scale=2.0)], {}
    if name == "log":
        return [_t(np.abs(g.standard_normal((n, k))) + 0.1)], {}
    if name in ("add_bcast", "mul_bcast"):
        return [_randn(g, n, 3, k), _randn(g, 3, 1)], {}
    raise KeyError(name)


def _run(name: str, ts: list[torch.Tensor], kw: dict, lib: str) -> torch.Tensor:
    """lib: 'exact' → protocol.repro.functional in exact mode; 'torch' → plain torch (used in float64)."""
    ex = lib == "exact"
    if name == "linear":
        return RF.linear(*ts) if ex else F.linear(*ts)
    if name == "linear_nobias_3d":
        return RF.linear(*ts) if ex else F.linear(*ts)
    if name in ("matmul_batched", "matmul_2d"):
        return RF.matmul(*ts) if ex else torch.matmul(*ts)
    if name == "sum_all":
        return RF.sum(ts[0]) if ex else ts[0].sum()
    if name == "mean_dim":
        return RF.mean(ts[0], dim=1) if ex else ts[0].mean(dim=1)
    if name == "sum_dims_keep":
        return RF.sum(ts[0], dim=(0, 2), keepdim=True) if ex else ts[0].sum(dim=(0, 2), keepdim=True)
    if name == "softmax":
        return RF.softmax(ts[0], dim=0) if ex else F.softmax(ts[0], dim=0)
    if name == "log_softmax":
        return RF.log_softmax(ts[0]) if ex else F.log_softmax(ts[0], dim=-1)
    if name.startswith("cross_entropy"):
        red = {"cross_entropy": "mean", "cross_entropy_sum": "sum", "cross_entropy_none": "none"}[name]
        return (RF.cross_entropy if ex else F.cross_entropy)(ts[0], kw["target"], reduction=red)
    if name == "layer_norm":
        return (RF.layer_norm if ex else F.layer_norm)(ts[0], (ts[0].shape[-1],), ts[1], ts[2], 1e-5)
    if name == "layer_norm_2d_noaffine":
        return (RF.layer_norm if ex else F.layer_norm)(ts[0], tuple(ts[0].shape[-2:]), None, None, 1e-5)
    if name == "embedding":
        return (RF.embedding if ex else F.embedding)(kw["idx"], ts[0])
    if name == "conv2d":
        return (RF.conv2d if ex else F.conv2d)(ts[0], ts[1], ts[2], 1, 1, 1)
    if name == "conv2d_strided":
        return (RF.conv2d if ex else F.conv2d)(ts[0], ts[1], ts[2], (2, 1), (1, 2), (2, 1))
    if name == "max_pool2d":
        return RF.max_pool2d(ts[0], 2) if ex else F.max_pool2d(ts[0], 2)
    if name == "exp":
        return RF.exp(ts[0]) if ex else torch.exp(ts[0])
    if name == "log":
        return RF.log(ts[0]) if ex else torch.log(ts[0])
    if name == "tanh":
        return RF.tanh(ts[0]) if ex else torch.tanh(ts[0])
    if name == "gelu":
        return RF.gelu(ts[0]) if ex else F.gelu(ts[0], approximate="tanh")
    if name == "add_bcast":
        return RF.add(*ts) if ex else ts[0] + ts[1]
    if name == "mul_bcast":
        return RF.mul(*ts) if ex else ts[0] * ts[1]
    raise KeyError(name)


CASES = [
    "linear", "linear_nobias_3d", "matmul_batched", "matmul_2d", "sum_all", "mean_dim", "sum_dims_keep",
    "softmax", "log_softmax", "cross_entropy", "cross_entropy_sum", "cross_entropy_none", "layer_norm",
    "layer_norm_2d_noaffine", "embedding", "conv2d", "conv2d_strided", "max_pool2d", "exp", "log", "tanh",
    "gelu", "add_bcast", "mul_bcast",
]  # fmt: skip


def _forward_backward(name: str, ts: list[torch.Tensor], kw: dict, lib: str, seed: int):
    ts = [t.detach().clone().requires_grad_(True) for t in ts]
    y = _run(name, ts, kw, lib)
    g = _rng(seed + 99)
    dy = torch.from_numpy(g.standard_normal(tuple(y.shape))).to(y.dtype)
    (grads) = torch.autograd.grad(y, ts, dy)
    return y, list(grads)


@pytest.mark.parametrize("name", CASES)
def test_matches_float64_torch(name):
    sizes = {"n": 13, "k": 17, "m": 9}
    g = _rng(1)
    ts, kw = _case_inputs(name, g, sizes)
    with mode("exact"):
        y, grads = _forward_backward(name, ts, kw, "exact", 5)
    y64, grads64 = _forward_backward(name, [t.double() for t in ts], kw, "torch", 5)
    assert y.dtype == torch.float32
    assert _rel(y, y64) < TOL, f"{name} forward rel err {_rel(y, y64):.2e}"
    for i, (a, b) in enumerate(zip(grads, grads64, strict=True)):
        assert _rel(a, b) < TOL, f"{name} grad {i} rel err {_rel(a, b):.2e}"


SHAPES = [
    {"n": 1, "k": 3, "m": 17},
    {"n": 17, "k": 33, "m": 3},
    {"n": 33, "k": 129, "m": 1},
    {"n": 3, "k": 1, "m": 129},
]


@pytest.mark.parametrize("name", CASES)
def test_fast_path_equals_reference_bitwise(name):
    for si, sizes in enumerate(SHAPES):
        g = _rng(100 + si)
        ts, kw = _case_inputs(name, g, sizes)
        with mode("exact"):
            with backend("fast"):
                y1, g1 = _forward_backward(name, ts, kw, "exact", si)
            with backend("reference"):
                y2, g2 = _forward_backward(name, ts, kw, "exact", si)
        assert _bits(y1) == _bits(y2), f"{name} {sizes}: forward bits differ"
        for i, (a, b) in enumerate(zip(g1, g2, strict=True)):
            assert _bits(a) == _bits(b), f"{name} {sizes}: grad {i} bits differ"


# ---------------------------------------------------------------------------------------------
# the primitives themselves
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "nb,M,K,N",
    [(1, 1, 1, 1), (1, 3, 17, 33), (2, 33, 129, 17), (1, 129, 3, 1), (1, 5, 0, 4), (3, 17, 33, 129), (1, 64, 784, 128)],
)
def test_mm_equals_elementwise_reference(nb, M, K, N):
    g = _rng(M * 1000 + K)
    A, B, bias = _randn(g, nb, M, K, grad=False), _randn(g, nb, K, N, grad=False), _randn(g, N, grad=False)
    for b in (None, bias):
        assert _bits(kernels.mm(A, B, b)) == _bits(kernels.mm_reference(A, B, b))
    # also against an independent numpy (not torch) sequential loop
    An, Bn = A.numpy(), B.numpy()
    C = np.zeros((nb, M, N), np.float32)
    for k in range(K):
        C = C + An[:, :, k : k + 1] * Bn[:, k : k + 1, :]
    assert _bits(kernels.mm(A, B)) == C.tobytes()


def test_mm_noncontiguous_inputs():
    g = _rng(3)
    A = _randn(g, 2, 20, 9, grad=False).transpose(1, 2)  # (2, 9, 20) non-contiguous
    B = _randn(g, 2, 31, 20, grad=False).transpose(1, 2)
    assert _bits(kernels.mm(A, B)) == _bits(kernels.mm_reference(A, B))


def test_sums_and_scatter_equal_reference():
    g = _rng(4)
    for R, L in [(1, 1), (1, 129), (129, 1), (17, 33), (9, 1000)]:
        X = _randn(g, R, L, grad=False)
        assert _bits(kernels.rowsum(X)) == _bits(kernels.rowsum_reference(X))
        assert _bits(kernels.colsum(X)) == _bits(kernels.colsum_reference(X))
    for N, D, V in [(0, 3, 4), (1, 1, 1), (50, 17, 7), (200, 300, 13)]:
        idx = torch.from_numpy(g.integers(0, V, size=N))
        G = _randn(g, N, D, grad=False)
        assert _bits(kernels.index_add_rows(idx, G, V)) == _bits(kernels.index_add_rows_reference(idx, G, V))
    # the scatter order really is ascending n: the same rows in another order give other bits
    idx = torch.zeros(64, dtype=torch.int64)
    G = _randn(g, 64, 8, grad=False) * torch.logspace(-6, 6, 64).unsqueeze(1)
    seq = torch.zeros(8)
    for n in range(64):
        seq = seq + G[n]
    assert _bits(kernels.index_add_rows(idx, G, 1)[0]) == _bits(seq)


def test_threads_tiling_and_blocking_do_not_change_bits():
    import numba

    from protocol.repro import _nb_kernels
    from protocol.repro._config import slp_vectorize

    kernels.self_check()
    g = _rng(5)
    A, B, bias = _randn(g, 2, 67, 129, grad=False), _randn(g, 2, 129, 45, grad=False), _randn(g, 45, grad=False)
    ref = _bits(kernels.mm_reference(A, B, bias))
    old = numba.get_num_threads()
    try:
        for th in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(th)
            assert _bits(kernels.mm(A, B, bias)) == ref
            with slp_vectorize():
                for pair in _nb_kernels.GEMMS.values():  # every tiling, parallel and serial
                    for fn in pair:
                        for kc in (1, 7, 64, 256):  # the k blocking of the fast kernel
                            C = np.empty((2, 67, 45), np.float32)
                            kernels._np_gemm(fn, A.numpy(), B.numpy(), bias.numpy(), C, kc=kc)
                            assert C.tobytes() == ref
    finally:
        numba.set_num_threads(old)


# ---------------------------------------------------------------------------------------------
# transcendental functions
# ---------------------------------------------------------------------------------------------
def _ulps(y: torch.Tensor, ref64: torch.Tensor) -> np.ndarray:
    sp = np.spacing(np.abs(ref64.numpy()).astype(np.float32)).astype(np.float64)
    return np.abs(y.double().numpy() - ref64.numpy()) / sp


def test_fmath_accuracy_in_ulps():
    g = _rng(6)
    x = torch.from_numpy(np.concatenate([np.linspace(-87, 88, 50001), g.standard_normal(20000) * 4]).astype(np.float32))
    assert _ulps(fmath.exp(x), torch.exp(x.double())).max() <= 1.5
    xp = torch.from_numpy(np.exp(np.linspace(-87, 88, 50001)).astype(np.float32))
    xp = torch.cat([xp, torch.from_numpy((1 + g.standard_normal(20000) * 1e-3).astype(np.float32))])
    assert _ulps(fmath.log(xp), torch.log(xp.double())).max() <= 1.5
    xt = np.concatenate([np.linspace(-12, 12, 50001), g.standard_normal(20000) * 1e-2])
    xt = torch.from_numpy(xt.astype(np.float32))
    assert _ulps(fmath.tanh(xt), torch.tanh(xt.double())).max() <= 2.0


def test_fmath_special_values():
    inf, nan = float("inf"), float("nan")
    e = fmath.exp(torch.tensor([0.0, -inf, inf, nan, -200.0, 100.0, -0.0]))
    assert e[0] == 1 and e[1] == 0 and e[2] == inf and torch.isnan(e[3]) and e[4] == 0 and e[5] == inf and e[6] == 1
    lg = fmath.log(torch.tensor([1.0, 0.0, -1.0, inf, nan, 1e-45, 2.0]))
    assert lg[0] == 0 and lg[1] == -inf and torch.isnan(lg[2]) and lg[3] == inf and torch.isnan(lg[4])
    assert abs(lg[5].item() - math.log(1.401298464324817e-45)) < 1e-5
    assert lg[6].item() == np.float32(math.log(2.0))
    th = fmath.tanh(torch.tensor([0.0, -0.0, inf, -inf, nan, 30.0]))
    assert th[0] == 0 and math.copysign(1, th[1].item()) == -1 and th[2] == 1 and th[3] == -1
    assert torch.isnan(th[4]) and th[5] == 1
    # exp of a subnormal-result argument is finite and tiny, never negative
    sub = fmath.exp(torch.tensor([-100.0, -95.0]))
    assert (sub > 0).all() and (sub < 1e-38).all()


def test_fmath_is_elementwise_and_shape_independent():
    # the same value gives the same bits wherever it sits (no vectorised/tail-path differences)
    g = _rng(7)
    x = torch.from_numpy((g.standard_normal(1031) * 5).astype(np.float32))
    for f in (fmath.exp, fmath.tanh, lambda v: fmath.log(v.abs() + 1e-3), lambda v: fmath.gelu_tanh(v)[0]):
        whole = f(x)
        parts = torch.cat([f(x[i : i + 7]) for i in range(0, 1031, 7)])
        assert _bits(whole) == _bits(parts)


# ---------------------------------------------------------------------------------------------
# optimizers
# ---------------------------------------------------------------------------------------------
def test_beta_power_is_sequential_product():
    p = 1.0
    for t in range(1, 200):
        p = p * 0.999
        assert beta_power(0.999, t) == p
    assert beta_power(0.999, 5) == 0.999 * 0.999 * 0.999 * 0.999 * 0.999
    assert beta_power(0.9, 0) == 1.0


def _opt_run(cls, kwargs, steps=5):
    g = _rng(8)
    p = _t(g.standard_normal((7, 5)))
    opt = cls([p], **kwargs)
    for s in range(steps):
        p.grad = torch.from_numpy(_rng(20 + s).standard_normal((7, 5)).astype(np.float32))
        opt.step()
    return p.detach().clone(), opt


@pytest.mark.parametrize(
    "exact_cls,torch_cls,kwargs",
    [
        (ExactAdamW, torch.optim.AdamW, dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)),
        (ExactSGD, torch.optim.SGD, dict(lr=1e-2, momentum=0.9, weight_decay=1e-3)),
        (ExactSGD, torch.optim.SGD, dict(lr=1e-2, momentum=0.9, nesterov=True)),
        (ExactSGD, torch.optim.SGD, dict(lr=1e-2, momentum=0.8, dampening=0.1)),
        (ExactSGD, torch.optim.SGD, dict(lr=1e-2)),
    ],
)
def test_optimizers_track_torch(exact_cls, torch_cls, kwargs):
    with mode("exact"):
        pe, oe = _opt_run(exact_cls, kwargs)
    pt, ot = _opt_run(torch_cls, dict(kwargs, foreach=False))
    assert _rel(pe, pt) < 1e-6
    for p_e, p_t in zip(oe.state.values(), ot.state.values(), strict=True):
        assert set(p_e) == set(p_t)  # same state layout as torch's optimizer
    # native mode of the exact class is torch's own step
    with mode("native"):
        pn, _ = _opt_run(exact_cls, kwargs)
    assert _bits(pn) == _bits(pt)


def test_adamw_follows_documented_formula():
    g = _rng(9)
    p0 = g.standard_normal(6).astype(np.float32)
    grads = [_rng(30 + s).standard_normal(6).astype(np.float32) for s in range(3)]
    lr, b1, b2, eps, wd = 1e-2, 0.9, 0.999, 1e-8, 0.1
    p = _t(p0)
    opt = ExactAdamW([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    f = np.float32
    P, m, v = p0.copy(), np.zeros(6, f), np.zeros(6, f)
    with mode("exact"):
        for t, gr in enumerate(grads, start=1):
            p.grad = torch.from_numpy(gr)
            opt.step()
            P = P * f(1 - lr * wd)
            m = m * f(b1) + gr * f(1 - b1)
            v = v * f(b2) + (gr * gr) * f(1 - b2)
            den = np.sqrt(v) / f(math.sqrt(1 - beta_power(b2, t))) + f(eps)
            P = P - (m / den) * f(lr / (1 - beta_power(b1, t)))
    assert p.detach().numpy().tobytes() == P.astype(f).tobytes()


# ---------------------------------------------------------------------------------------------
# modules, mode switch, generated code
# ---------------------------------------------------------------------------------------------
def test_modules_follow_mode_and_exactify():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(2 * 3 * 3, 8), torch.nn.GELU(approximate="tanh"), torch.nn.LayerNorm(8), torch.nn.Tanh(),
        torch.nn.Linear(8, 4),
    )  # fmt: skip
    x = torch.from_numpy(_rng(10).standard_normal((5, 1, 6, 6)).astype(np.float32))
    with mode("native"):
        before = model(x)
    RN.exactify(model)
    assert isinstance(model[0], RN.ExactConv2d) and isinstance(model[4], RN.ExactLinear)
    assert isinstance(model[6], RN.ExactLayerNorm) and isinstance(model[5], RN.ExactGELU)
    with mode("native"):
        assert _bits(model(x)) == _bits(before)
    with mode("exact"):
        exact = model(x)
    assert _rel(exact, before) < 1e-5
    with pytest.raises(NotImplementedError):
        RN.exactify(torch.nn.GELU())


def test_embedding_module_and_padding_idx():
    emb = RN.ExactEmbedding(6, 4, padding_idx=2)
    idx = torch.tensor([[2, 1, 2], [5, 1, 0]])
    with mode("exact"):
        out = emb(idx)
        out.backward(torch.ones_like(out))
    ge = emb.weight.grad.clone()
    emb.weight.grad = None
    with mode("native"):
        emb(idx).backward(torch.ones_like(out))
    assert _bits(ge) == _bits(emb.weight.grad)


def test_exact_mode_rejects_non_float32():
    with mode("exact"), pytest.raises(TypeError):
        RF.linear(torch.ones(2, 3, dtype=torch.float64), torch.ones(4, 3, dtype=torch.float64))


def test_generated_kernels_are_up_to_date():
    from protocol.repro import _gen_kernels

    assert _gen_kernels.TARGET.read_text() == _gen_kernels.generate(), (
        "protocol/repro/_nb_kernels.py is stale: run `python -m protocol.repro._gen_kernels`"
    )


def test_grad_clipping_order():
    g = _rng(11)
    ps = [_t(g.standard_normal((3, 4))), _t(g.standard_normal(5))]
    for p in ps:
        p.grad = torch.from_numpy(g.standard_normal(tuple(p.shape)).astype(np.float32) * 3)
    with mode("exact"):
        n = RF.grad_norm(ps)
    S = np.float32(0)
    for p in ps:
        s = np.float32(0)
        for v in (p.grad.numpy() * p.grad.numpy()).reshape(-1):
            s = np.float32(s + v)
        S = np.float32(S + s)
    assert n.numpy().tobytes() == np.sqrt(S).astype(np.float32).tobytes()
    with mode("exact"):
        RF.clip_grad_norm_(ps, 1.0)
        assert abs(RF.grad_norm(ps).item() - 1.0) < 1e-5


def test_fmath_numba_twins_equal_torch_reference_on_random_bit_patterns():
    g = _rng(12)
    bits = g.integers(0, 2**32, size=1_000_000, dtype=np.uint64).astype(np.uint32)
    special = [0.0, -0.0, math.inf, -math.inf, math.nan, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38, 88.72, 89.0,
               -103.9, -104.0, 0.55, -0.55, 0.54999995, 10.0, 1.0, 1.0000001, 0.99999994]  # fmt: skip
    x = torch.cat([torch.from_numpy(bits.view(np.float32).copy()), torch.tensor(special, dtype=torch.float32),
                   torch.from_numpy(np.linspace(-110, 95, 200_001, dtype=np.float32))])  # fmt: skip
    assert kernels.use_fast(x)
    pos = x.abs()
    assert _bits(fmath.exp(x)) == _bits(fmath.exp_reference(x))
    assert _bits(fmath.tanh(x)) == _bits(fmath.tanh_reference(x))
    assert _bits(fmath.log(x)) == _bits(fmath.log_reference(x))
    assert _bits(fmath.log(pos)) == _bits(fmath.log_reference(pos))
    (y1, t1), (y2, t2) = fmath.gelu_tanh(x), fmath.gelu_tanh_reference(x)
    assert _bits(y1) == _bits(y2) and _bits(t1) == _bits(t2)
    dy = torch.from_numpy(g.standard_normal(x.shape[0]).astype(np.float32))
    assert _bits(fmath.gelu_tanh_grad(x, t1, dy)) == _bits(fmath.gelu_tanh_grad_reference(x, t1, dy))


def test_parallel_and_serial_twins_give_the_same_bits():
    import numba

    k = kernels._load()
    g = _rng(13)
    X = g.standard_normal((300, 257)).astype(np.float32)
    v = g.standard_normal(100_003).astype(np.float32) * 5
    idx = g.integers(0, 37, size=300)
    x4 = g.standard_normal((4, 6, 10, 12)).astype(np.float32)
    old = numba.get_num_threads()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    try:
        for name, args, outs in (
            ("rowsum", (X,), (np.empty(300, np.float32),)),
            ("colsum", (X,), (np.empty(257, np.float32),)),
            ("index_add_rows", (idx, X), (np.zeros((37, 257), np.float32),)),
            ("exp", (v,), (np.empty_like(v),)),
            ("log", (np.abs(v),), (np.empty_like(v),)),
            ("tanh", (v,), (np.empty_like(v),)),
            ("gelu", (v,), (np.empty_like(v), np.empty_like(v))),
            ("maxpool_fwd", (x4, 2), (np.empty((4, 6, 5, 6), np.float32), np.empty((4, 6, 5, 6), np.int8))),
        ):
            res = []
            for fn in (k[name].par, k[name].ser):
                o = [a.copy() for a in outs]
                fn(*args, *o)
                res.append(b"".join(a.tobytes() for a in o))
            assert res[0] == res[1], name
    finally:
        numba.set_num_threads(old)
