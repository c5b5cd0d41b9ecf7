"""Exact-mode operators (forward and backward) with a native-mode switch.

Each public function here runs, in ``"exact"`` mode (the default, see
:func:`protocol.repro.set_mode`), a custom :class:`torch.autograd.Function`
whose forward *and* backward use only

* the four order-fixed primitives of :mod:`protocol.repro.kernels`
  (``mm``, ``rowsum``, ``colsum``, ``index_add_rows``),
* the float32 elementwise formulas of :mod:`protocol.repro.fmath`
  (sqrt, exp, log, tanh, GELU), and
* correctly rounded float32 elementwise torch operations and exact data
  movement (views, copies, gathers, ``unfold``, ``amax``, ``where``).

The docstring of each Function is its specification: the float32 operations
and their order. ``fl(·)`` is one IEEE-754 binary32 operation, round to
nearest even; "rowsum"/"colsum"/"mm" are the primitives. In ``"native"`` mode
every function calls the plain PyTorch operator instead (tolerance mode,
benchmarking).

Rules for model code that must stay exact (the autograd engine itself adds
gradients, so these matter):

* Use these functions for anything that sums: matmuls, reductions, norms,
  softmax, losses, conv, embedding. Use :func:`add`/:func:`mul` when an
  operand that needs a gradient is *broadcast* (autograd would reduce its
  gradient with native ``sum``). Same-shape ``+``, ``-``, ``*``, ``/``,
  ``relu``, views, reshapes, ``cat``, indexing *without* repeated indices are
  exact as they are.
* When one tensor feeds several operations, autograd adds the incoming
  gradients elementwise in a fixed, graph-determined order; two consumers
  commute exactly, three or more are still deterministic for the same graph
  but better avoided in a protocol (e.g. use one fused QKV projection rather
  than three projections of the same input).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import fmath
from . import kernels as K
from ._config import get_mode

__all__ = [
    "add",
    "clip_grad_norm_",
    "col2im",
    "conv2d",
    "cross_entropy",
    "embedding",
    "exp",
    "gelu",
    "grad_norm",
    "layer_norm",
    "linear",
    "log",
    "log_softmax",
    "matmul",
    "max_pool2d",
    "mean",
    "mul",
    "relu",
    "softmax",
    "sum",
    "tanh",
]


def _exact() -> bool:
    return get_mode() == "exact"


def _f32(*ts: torch.Tensor | None) -> None:
    for t in ts:
        if t is not None and t.dtype != torch.float32:
            raise TypeError(f"exact mode computes in float32; got a {t.dtype} tensor")


def _div_scalar(x: torch.Tensor, c: float) -> torch.Tensor:
    """fl(x / c) as a true division on every device.

    (On CUDA, dividing by a *CPU scalar* is implemented as multiplication by
    its reciprocal; a divisor tensor on x's own device avoids that.)
    """
    return x / torch.tensor(float(c), dtype=x.dtype, device=x.device)


# =============================================================================================
# linear / matmul
# =============================================================================================
class LinearFn(torch.autograd.Function):
    """y = x Wᵀ + b over the flattened rows of x (…, K); W (O, K), b (O,).

    forward   y[n,o]  = mm: acc over k ascending of fl(x[n,k]·W[o,k]); then fl(acc + b[o])
    backward  dx[n,k] = mm: acc over o ascending of fl(dy[n,o]·W[o,k])
              dW[o,k] = mm: acc over n ascending (rows of x flattened in row-major order)
                        of fl(dy[n,o]·x[n,k])
              db[o]   = colsum: acc over n ascending of dy[n,o]
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        Kdim = x.shape[-1]
        x2 = x.reshape(-1, Kdim)
        y = K.mm(x2, weight.t(), bias)[0]
        ctx.save_for_backward(x2, weight)
        ctx.x_shape = x.shape
        ctx.has_bias = bias is not None
        return y.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, dy):
        x2, weight = ctx.saved_tensors
        dy2 = dy.reshape(-1, weight.shape[0]).contiguous()
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = K.mm(dy2, weight)[0].reshape(ctx.x_shape)
        if ctx.needs_input_grad[1]:
            dw = K.mm(dy2.t(), x2)[0]
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = K.colsum(dy2)
        return dx, dw, db


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear`` (exact: :class:`LinearFn`)."""
    if not _exact():
        return F.linear(x, weight, bias)
    _f32(x, weight, bias)
    return LinearFn.apply(x, weight, bias)


class MatmulFn(torch.autograd.Function):
    """c = a @ b for a (…, M, K) and b (…, K, N) with equal leading dims, or b (K, N).

    forward   c[i,j]  = mm: acc over k ascending of fl(a[i,k]·b[k,j])
    backward  da[i,k] = mm: acc over j ascending of fl(dc[i,j]·b[k,j])
              db[k,j] = mm: acc over i ascending of fl(a[i,k]·dc[i,j])
                        (b 2-D: i runs over all rows of a flattened in row-major order)
    """

    @staticmethod
    def forward(ctx, a, b):
        ctx.a_shape, ctx.b_shape = a.shape, b.shape
        if b.dim() == 2:
            a3 = a.reshape(1, -1, a.shape[-1])
            b3 = b.unsqueeze(0)
        else:
            a3 = a.reshape(-1, a.shape[-2], a.shape[-1])
            b3 = b.reshape(-1, b.shape[-2], b.shape[-1])
        c3 = K.mm(a3, b3)
        ctx.save_for_backward(a3, b3)
        return c3.reshape(*a.shape[:-1], b.shape[-1])

    @staticmethod
    def backward(ctx, dc):
        a3, b3 = ctx.saved_tensors
        dc3 = dc.reshape(a3.shape[0], a3.shape[1], b3.shape[2]).contiguous()
        da = db = None
        if ctx.needs_input_grad[0]:
            da = K.mm(dc3, b3.transpose(1, 2)).reshape(ctx.a_shape)
        if ctx.needs_input_grad[1]:
            db = K.mm(a3.transpose(1, 2), dc3).reshape(ctx.b_shape)
        return da, db


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` (exact: :class:`MatmulFn`; leading dims must match, or b is 2-D)."""
    if not _exact():
        return torch.matmul(a, b)
    _f32(a, b)
    if a.dim() < 2 or b.dim() < 2:
        raise ValueError("exact matmul needs a.dim() >= 2 and b.dim() >= 2")
    if b.dim() > 2 and (a.shape[:-2] != b.shape[:-2]):
        raise ValueError(f"exact matmul: leading dims must match (no broadcasting): {a.shape} @ {b.shape}")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul shape mismatch: {tuple(a.shape)} @ {tuple(b.shape)}")
    return MatmulFn.apply(a, b)


# =============================================================================================
# sums and means
# =============================================================================================
def _norm_dims(x: torch.Tensor, dim) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(x.dim()))
    if isinstance(dim, int):
        dim = (dim,)
    dims = sorted({d % x.dim() for d in dim}) if x.dim() else []
    return tuple(dims)


def _rows_for(x: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, list[int]]:
    """x permuted to (kept dims…, reduced dims…) and flattened to (R, L); plus the kept shape."""
    kept = [d for d in range(x.dim()) if d not in dims]
    xp = x.permute(*kept, *dims) if x.dim() else x.reshape(1)
    L = 1
    for d in dims:
        L *= x.shape[d]
    kept_shape = [x.shape[d] for d in kept]
    return xp.reshape(-1, L), kept_shape


class SumFn(torch.autograd.Function):
    """Sum over ``dims`` (all dims by default); ``mean=True`` divides once at the end.

    forward   s = rowsum over the reduced elements in row-major order of the reduced dims
              (ascending flattened index), from +0.0;   mean: fl(s / n)  (n = their count)
    backward  dx = dy broadcast (sum);  dx = fl(dy / n) broadcast (mean)
    """

    @staticmethod
    def forward(ctx, x, dims, keepdim, is_mean):
        x2, kept_shape = _rows_for(x, dims)
        s = K.rowsum(x2.contiguous())
        n = x2.shape[1]
        if is_mean:
            s = _div_scalar(s, n)
        ctx.x_shape, ctx.dims, ctx.is_mean, ctx.n = x.shape, dims, is_mean, n
        out = s.reshape(kept_shape)
        if keepdim:
            for d in dims:
                out = out.unsqueeze(d)
        return out

    @staticmethod
    def backward(ctx, dy):
        g = _div_scalar(dy, ctx.n) if ctx.is_mean else dy
        shape = list(ctx.x_shape)
        gshape = [1 if d in ctx.dims else shape[d] for d in range(len(shape))]
        g = g.reshape(gshape).expand(shape).contiguous()
        return g, None, None, None


def sum(x: torch.Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> torch.Tensor:
    """``torch.sum`` (exact: :class:`SumFn`, sequential in row-major order)."""
    if not _exact():
        return torch.sum(x) if dim is None and not keepdim else torch.sum(x, dim=_norm_dims(x, dim), keepdim=keepdim)
    _f32(x)
    return SumFn.apply(x, _norm_dims(x, dim), keepdim, False)


def mean(x: torch.Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> torch.Tensor:
    """``torch.mean`` (exact: :class:`SumFn` with ``mean=True``)."""
    if not _exact():
        return torch.mean(x) if dim is None and not keepdim else torch.mean(x, dim=_norm_dims(x, dim), keepdim=keepdim)
    _f32(x)
    return SumFn.apply(x, _norm_dims(x, dim), keepdim, True)


def _sum_to(g: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Reduce a broadcast gradient to ``shape`` with the exact sum (row-major order of the reduced dims)."""
    if g.shape == shape:
        return g
    lead = g.dim() - len(shape)
    dims = list(range(lead)) + [lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1]
    x2, _ = _rows_for(g, tuple(dims))
    return K.rowsum(x2.contiguous()).reshape(shape)


class BroadcastAddFn(torch.autograd.Function):
    """c = fl(a + b) with broadcasting; da, db = dc reduced to their shapes with the exact sum."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.a_shape, ctx.b_shape = a.shape, b.shape
        return a + b

    @staticmethod
    def backward(ctx, dc):
        return _sum_to(dc, ctx.a_shape), _sum_to(dc, ctx.b_shape)


class BroadcastMulFn(torch.autograd.Function):
    """c = fl(a · b) with broadcasting; da = sum_to(fl(dc·b)), db = sum_to(fl(dc·a)) (exact sums)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, dc):
        a, b = ctx.saved_tensors
        da = _sum_to(dc * b, a.shape) if ctx.needs_input_grad[0] else None
        db = _sum_to(dc * a, b.shape) if ctx.needs_input_grad[1] else None
        return da, db


def add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` whose gradients reduce over broadcast dims exactly."""
    if not _exact() or a.shape == b.shape:
        return a + b
    _f32(a, b)
    return BroadcastAddFn.apply(a, b)


def mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a * b`` whose gradients reduce over broadcast dims exactly."""
    if not _exact() or a.shape == b.shape:
        return a * b
    _f32(a, b)
    return BroadcastMulFn.apply(a, b)


# =============================================================================================
# softmax family
# =============================================================================================
def _last(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, int]:
    dim = dim % x.dim()
    xt = x.movedim(dim, -1)
    return xt.reshape(-1, x.shape[dim]).contiguous(), dim


def _unlast(y2: torch.Tensor, x: torch.Tensor, dim: int) -> torch.Tensor:
    shape = list(x.movedim(dim, -1).shape)
    return y2.reshape(shape).movedim(-1, dim).contiguous()


class SoftmaxFn(torch.autograd.Function):
    """Softmax along ``dim``; per row x (length C).

    forward   m = max(x) (exact);  z = fl(x - m);  e = exp(z) (fmath.exp)
              s = rowsum(e);  y = fl(e / s)
    backward  t = rowsum(fl(dy · y));  dx = fl(y · fl(dy - t))
    """

    @staticmethod
    def forward(ctx, x, dim):
        x2, dim = _last(x, dim)
        m = torch.amax(x2, dim=1, keepdim=True)
        e = fmath.exp(x2 - m)
        s = K.rowsum(e)
        y2 = e / s.unsqueeze(1)
        ctx.save_for_backward(y2)
        ctx.dim, ctx.shape_ref = dim, x.shape
        return _unlast(y2, x, dim)

    @staticmethod
    def backward(ctx, dy):
        (y2,) = ctx.saved_tensors
        dy2, _ = _last(dy, ctx.dim)
        t = K.rowsum(dy2 * y2)
        dx2 = y2 * (dy2 - t.unsqueeze(1))
        return _unlast(dx2, dy, ctx.dim), None


class LogSoftmaxFn(torch.autograd.Function):
    """Log-softmax along ``dim``; per row x (length C).

    forward   m = max(x);  z = fl(x - m);  e = exp(z);  s = rowsum(e)
              y = fl(z - log(s))          (fmath.log);   p = fl(e / s) is kept
    backward  dx = fl(dy - fl(p · rowsum(dy)))
    """

    @staticmethod
    def forward(ctx, x, dim):
        x2, dim = _last(x, dim)
        m = torch.amax(x2, dim=1, keepdim=True)
        z = x2 - m
        e = fmath.exp(z)
        s = K.rowsum(e)
        y2 = z - fmath.log(s).unsqueeze(1)
        p = e / s.unsqueeze(1)
        ctx.save_for_backward(p)
        ctx.dim = dim
        return _unlast(y2, x, dim)

    @staticmethod
    def backward(ctx, dy):
        (p,) = ctx.saved_tensors
        dy2, _ = _last(dy, ctx.dim)
        dx2 = dy2 - p * K.rowsum(dy2).unsqueeze(1)
        return _unlast(dx2, dy, ctx.dim), None


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``F.softmax`` (exact: :class:`SoftmaxFn`)."""
    if not _exact():
        return F.softmax(x, dim=dim)
    _f32(x)
    return SoftmaxFn.apply(x, dim)


def log_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``F.log_softmax`` (exact: :class:`LogSoftmaxFn`)."""
    if not _exact():
        return F.log_softmax(x, dim=dim)
    _f32(x)
    return LogSoftmaxFn.apply(x, dim)


class CrossEntropyFn(torch.autograd.Function):
    """Cross-entropy of logits x (N, C) against class indices t (N,).

    forward   per row: m = max(x);  z = fl(x - m);  e = exp(z);  s = rowsum(e)
              nll[i] = -fl(z[i,t_i] - log(s_i))       (= -log_softmax(x)[i, t_i])
              "mean": fl(S / N) with S = rowsum of nll over i ascending;
              "sum": S;  "none": nll
    backward  p = fl(e / s);  g = fl(dL / N) ("mean"), dL ("sum"), dL[i] ("none")
              dx[i,c] = fl(fl(p[i,c] - onehot[i,c]) · g)
    """

    @staticmethod
    def forward(ctx, x, target, reduction):
        N = x.shape[0]
        m = torch.amax(x, dim=1, keepdim=True)
        z = x - m
        e = fmath.exp(z)
        s = K.rowsum(e.contiguous())
        zt = z.gather(1, target.unsqueeze(1)).squeeze(1)
        nll = -(zt - fmath.log(s))
        ctx.save_for_backward(e, s, target)
        ctx.reduction, ctx.N = reduction, N
        if reduction == "none":
            return nll
        S = K.rowsum(nll.unsqueeze(0))[0]
        return _div_scalar(S, N) if reduction == "mean" else S

    @staticmethod
    def backward(ctx, dl):
        e, s, target = ctx.saved_tensors
        p = e / s.unsqueeze(1)
        onehot = torch.zeros_like(p)
        onehot.scatter_(1, target.unsqueeze(1), 1.0)
        if ctx.reduction == "mean":
            g = _div_scalar(dl, ctx.N)
        elif ctx.reduction == "sum":
            g = dl
        else:
            g = dl.unsqueeze(1)
        return (p - onehot) * g, None, None


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``F.cross_entropy`` for logits (N, C) and int targets (N,) (exact: :class:`CrossEntropyFn`).

    No ``weight``, ``ignore_index`` or ``label_smoothing`` in exact mode.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"unknown reduction {reduction!r}")
    if not _exact():
        return F.cross_entropy(logits, target, reduction=reduction)
    _f32(logits)
    if logits.dim() != 2 or target.dim() != 1 or target.shape[0] != logits.shape[0]:
        raise ValueError(f"exact cross_entropy wants logits (N,C) and target (N,); got {logits.shape}, {target.shape}")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= logits.shape[1]):
        raise IndexError("cross_entropy target out of range")
    return CrossEntropyFn.apply(logits.contiguous(), target.to(torch.int64), reduction)


# =============================================================================================
# layer norm
# =============================================================================================
class LayerNormFn(torch.autograd.Function):
    """Layer norm over the last len(normalized_shape) dims (flattened row-major to D).

    forward   mu   = fl(rowsum(x) / D);   xc = fl(x - mu)
              var  = fl(rowsum(fl(xc · xc)) / D)
              rstd = fl(1 / sqrt(fl(var + eps)))     (eps rounded to float32; sqrt = fmath.sqrt,
                                                     correctly rounded — torch.sqrt is not everywhere)
              xh   = fl(xc · rstd);   y = fl(fl(xh · w) + b)   (w, b when given)
    backward  g  = fl(dy · w) (or dy);   a = fl(rowsum(g) / D);   c = fl(rowsum(fl(g · xh)) / D)
              dx = fl(rstd · fl(fl(g - a) - fl(xh · c)))
              dw = colsum(fl(dy · xh)) over rows ascending;   db = colsum(dy)
    """

    @staticmethod
    def forward(ctx, x, D, weight, bias, eps):
        x2 = x.reshape(-1, D).contiguous()
        mu = _div_scalar(K.rowsum(x2), D).unsqueeze(1)
        xc = x2 - mu
        var = _div_scalar(K.rowsum(xc * xc), D).unsqueeze(1)
        rstd = torch.ones_like(var) / fmath.sqrt(var + fmath.f32(eps))
        xh = xc * rstd
        y = xh
        w = b = None
        if weight is not None:
            w = weight.reshape(D)
            y = y * w
        if bias is not None:
            b = bias.reshape(D)
            y = y + b
        ctx.save_for_backward(xh, rstd, w)
        ctx.D, ctx.x_shape = D, x.shape
        ctx.w_shape = None if weight is None else weight.shape
        ctx.b_shape = None if bias is None else bias.shape
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, dy):
        xh, rstd, w = ctx.saved_tensors
        D = ctx.D
        dy2 = dy.reshape(-1, D).contiguous()
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            g = dy2 * w if w is not None else dy2
            a = _div_scalar(K.rowsum(g), D).unsqueeze(1)
            c = _div_scalar(K.rowsum(g * xh), D).unsqueeze(1)
            dx = (rstd * ((g - a) - xh * c)).reshape(ctx.x_shape)
        if ctx.w_shape is not None and ctx.needs_input_grad[2]:
            dw = K.colsum(dy2 * xh).reshape(ctx.w_shape)
        if ctx.b_shape is not None and ctx.needs_input_grad[3]:
            db = K.colsum(dy2).reshape(ctx.b_shape)
        return dx, None, dw, db, None


def layer_norm(
    x: torch.Tensor,
    normalized_shape: int | Sequence[int],
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """``F.layer_norm`` (exact: :class:`LayerNormFn`)."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    if not _exact():
        return F.layer_norm(x, normalized_shape, weight, bias, eps)
    _f32(x, weight, bias)
    if tuple(x.shape[x.dim() - len(normalized_shape) :]) != normalized_shape:
        raise ValueError(f"layer_norm: input {tuple(x.shape)} does not end in {normalized_shape}")
    D = 1
    for s in normalized_shape:
        D *= s
    return LayerNormFn.apply(x, D, weight, bias, eps)


# =============================================================================================
# embedding
# =============================================================================================
class EmbeddingFn(torch.autograd.Function):
    """out = weight[idx] (a gather: exact).

    backward  dW[v,:] = index_add_rows: acc over n ascending (idx flattened row-major) of dy[n,:]
              for the n with idx[n] == v; rows never used stay +0.0; row ``padding_idx`` is +0.0.
    """

    @staticmethod
    def forward(ctx, idx, weight, padding_idx):
        flat = idx.reshape(-1)
        out = weight.index_select(0, flat)
        ctx.save_for_backward(flat)
        ctx.V, ctx.D, ctx.padding_idx = weight.shape[0], weight.shape[1], padding_idx
        return out.reshape(*idx.shape, weight.shape[1])

    @staticmethod
    def backward(ctx, dy):
        (flat,) = ctx.saved_tensors
        dw = K.index_add_rows(flat, dy.reshape(-1, ctx.D).contiguous(), ctx.V)
        if ctx.padding_idx is not None:
            dw[ctx.padding_idx] = 0.0
        return None, dw, None


def embedding(idx: torch.Tensor, weight: torch.Tensor, padding_idx: int | None = None) -> torch.Tensor:
    """``F.embedding`` (exact: :class:`EmbeddingFn`)."""
    if not _exact():
        return F.embedding(idx, weight, padding_idx=padding_idx)
    _f32(weight)
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    return EmbeddingFn.apply(idx.to(torch.int64), weight, padding_idx)


# =============================================================================================
# conv2d = im2col + mm; col2im with a fixed order
# =============================================================================================
def _pair(v) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"expected an int or a pair, got {v}")
    return v


def col2im(
    cols: torch.Tensor,
    output_size: tuple[int, int],
    kernel_size: tuple[int, int],
    dilation: tuple[int, int],
    padding: tuple[int, int],
    stride: tuple[int, int],
) -> torch.Tensor:
    """Inverse of ``F.unfold`` that *adds* overlapping windows in a fixed order.

    cols (B, C·kh·kw, L) with L = Ho·Wo, channel-major like ``unfold``. On the
    zero-padded image::

        acc[b,c,y,x] = +0.0
        for i in 0..kh-1, for j in 0..kw-1 (ascending):
            for every (oy, ox) with y = oy·sh + i·dh and x = ox·sw + j·dw:
                acc[b,c,y,x] = fl(acc[b,c,y,x] + cols[b, (c,i,j), oy·Wo + ox])
        result = acc with the padding cropped

    For fixed (i, j) each pixel receives at most one term, so the order per
    pixel is exactly the (i, j) order. Pure torch elementwise adds on strided
    views: the same code is the fast path and the reference, on any device.
    """
    B, CKK, L = cols.shape
    H, W = output_size
    kh, kw = kernel_size
    dh, dw = dilation
    ph, pw = padding
    sh, sw = stride
    C = CKK // (kh * kw)
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if Ho * Wo != L:
        raise ValueError(f"col2im: {L} columns do not match output {Ho}x{Wo}")
    c6 = cols.unflatten(2, (Ho, Wo)).unflatten(1, (C, kh, kw))  # views, any strides
    acc = torch.zeros((B, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype, device=cols.device)
    for i in range(kh):
        for j in range(kw):
            y0, x0 = i * dh, j * dw
            view = acc[:, :, y0 : y0 + sh * (Ho - 1) + 1 : sh, x0 : x0 + sw * (Wo - 1) + 1 : sw]
            view.add_(c6[:, :, i, j])
    return acc[:, :, ph : ph + H, pw : pw + W].contiguous()


@functools.lru_cache(maxsize=256)
def _conv_tables(B, C, Hp, Wp, kh, kw, st, dl):
    """Offset tables (int64 numpy, with their "consecutive" flags) of the implicit im2col matrix."""
    ar = np.arange
    # rows n = (b, oy, ox) b-major: window origin in the padded input
    Ho = (Hp - dl[0] * (kh - 1) - 1) // st[0] + 1
    Wo = (Wp - dl[1] * (kw - 1) - 1) // st[1] + 1
    rowbase = ((ar(B) * (C * Hp * Wp))[:, None, None] + (ar(Ho) * (st[0] * Wp))[None, :, None]
               + (ar(Wo) * st[1])[None, None, :]).reshape(-1)  # fmt: skip
    # columns k = (c, i, j) c-major (the order of F.unfold): offset of the tap
    koff = ((ar(C) * (Hp * Wp))[:, None, None] + (ar(kh) * (dl[0] * Wp))[None, :, None]
            + (ar(kw) * dl[1])[None, None, :]).reshape(-1)  # fmt: skip
    zero = np.zeros(1, np.int64)
    for a in (rowbase, koff, zero):
        a.flags.writeable = False
    return tuple(_Table(a, K._consecutive(a)) for a in (rowbase, koff, zero))


class _Table(tuple):
    """(offsets, consecutive) for one axis of an implicit matrix."""

    def __new__(cls, a: np.ndarray, unit: bool):
        return super().__new__(cls, (a, unit))


def _op(flat: torch.Tensor, base: _Table, ro: _Table, co: _Table) -> K.Operand:
    return K.Operand(flat, base[0], ro[0], co[0], ro[1], co[1])


class Conv2dFn(torch.autograd.Function):
    """2-D convolution (groups=1, zero padding) as an implicit-im2col matrix product.

    With xpad the zero-padded input, rows n = (b, oy, ox) (b-major) and columns
    k = (c, i, j) (c-major, the order of ``F.unfold``), Xc[n,k] = xpad[b, c, oy·sh+i·dh, ox·sw+j·dw]:

    forward   out[b,o,oy,ox] = mm: acc over k ascending of fl(Xc[n,k] · W[o,k]); then fl(acc + bias[o])
    backward  dW[o,k] = mm: acc over n ascending of fl(dout[n,o] · Xc[n,k])
              db[o]   = acc over n ascending of dout[n,o]
              dXc[n,k] = mm: acc over o ascending of fl(dout[n,o] · W[o,k]);  dx = col2im(dXc)
    (Padded positions are +0.0 terms of the sums; the im2col matrix is never materialised in
    the fast path: the GEMM reads it through offset tables.)
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        B, C, H, W = x.shape
        Co, _, kh, kw = weight.shape
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        Hp, Wp = H + 2 * ph, W + 2 * pw
        Ho = (Hp - dh * (kh - 1) - 1) // sh + 1
        Wo = (Wp - dw * (kw - 1) - 1) // sw + 1
        xpad = F.pad(x, (pw, pw, ph, ph)).contiguous() if (ph or pw) else x.contiguous()
        rowbase, koff, zero = _conv_tables(B, C, Hp, Wp, kh, kw, stride, dilation)
        Xop = _op(xpad.reshape(-1), zero, rowbase, koff)
        w2 = weight.reshape(Co, C * kh * kw)
        # rows n = (b, oy, ox) of the product are NHWC; one layout copy gives NCHW
        y2 = K.mm(Xop, w2.t(), bias)[0]  # (B*L, Co)
        y = y2.reshape(B, Ho, Wo, Co).permute(0, 3, 1, 2).contiguous()
        ctx.save_for_backward(xpad, weight)
        ctx.geom = (B, C, H, W, Co, kh, kw, Ho, Wo, stride, padding, dilation)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, dy):
        xpad, weight = ctx.saved_tensors
        B, C, H, W, Co, kh, kw, Ho, Wo, stride, padding, dilation = ctx.geom
        L, CKK = Ho * Wo, C * kh * kw
        Hp, Wp = H + 2 * padding[0], W + 2 * padding[1]
        rowbase, koff, zero = _conv_tables(B, C, Hp, Wp, kh, kw, stride, dilation)
        # dout as the (B*L, Co) matrix of rows n = (b, oy, ox): one layout copy
        dy2 = dy.permute(0, 2, 3, 1).reshape(B * L, Co).contiguous()
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            cols = K.mm(dy2, weight.reshape(Co, CKK))[0].reshape(B, L, CKK)  # dXc, rows n = (b, l)
            dx = col2im(cols.transpose(1, 2), (H, W), (kh, kw), dilation, padding, stride)
        if ctx.needs_input_grad[1]:
            Xop = _op(xpad.reshape(-1), zero, rowbase, koff)
            dw = K.mm(dy2.t(), Xop)[0].reshape(weight.shape)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = K.colsum(dy2)
        return dx, dw, db, None, None, None


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> torch.Tensor:
    """``F.conv2d`` (exact: :class:`Conv2dFn`; groups=1, numeric zero padding)."""
    if not _exact():
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    if groups != 1:
        raise NotImplementedError("exact conv2d supports groups=1 only")
    if isinstance(padding, str):
        raise NotImplementedError("exact conv2d needs numeric padding")
    _f32(x, weight, bias)
    squeeze = x.dim() == 3
    if squeeze:
        x = x.unsqueeze(0)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"conv2d: input has {x.shape[1]} channels, weight expects {weight.shape[1]}")
    y = Conv2dFn.apply(x, weight, bias, _pair(stride), _pair(padding), _pair(dilation))
    return y[0] if squeeze else y


# =============================================================================================
# max pooling (non-overlapping windows)
# =============================================================================================
class MaxPool2dFn(torch.autograd.Function):
    """Non-overlapping k×k max pooling (stride k, no padding, floor mode).

    forward   scan the window in row-major order (i, then j):
                  m = w[0,0];  pos = 0
                  for p = 1 .. k·k-1:  if w[p] > m:  m = w[p];  pos = p
              y = m  (comparisons only: exact; ties keep the FIRST maximum; a NaN is
              never "greater", so it wins only as the window's first element)
    backward  dx = dy at window position ``pos``, +0.0 elsewhere (no additions)
    """

    @staticmethod
    def forward(ctx, x, k):
        B, C, H, W = x.shape
        Ho, Wo = H // k, W // k
        ctx.geom = (B, C, H, W, k)
        if K.use_fast(x) and k * k <= 127:
            m, pos = K.maxpool2d_fast(x, k)
            ctx.save_for_backward(pos)
            return m
        m = x[:, :, 0 : Ho * k : k, 0 : Wo * k : k].clone()
        pos = torch.zeros((B, C, Ho, Wo), dtype=torch.int8 if k * k < 128 else torch.int32, device=x.device)
        for p in range(1, k * k):
            i, j = divmod(p, k)
            w = x[:, :, i : Ho * k : k, j : Wo * k : k]
            better = w > m
            m = torch.where(better, w, m)
            pos = torch.where(better, p, pos).to(pos.dtype)
        ctx.save_for_backward(pos)
        return m

    @staticmethod
    def backward(ctx, dy):
        (pos,) = ctx.saved_tensors
        B, C, H, W, k = ctx.geom
        Ho, Wo = H // k, W // k
        if K.use_fast(dy, pos) and pos.dtype == torch.int8:
            return K.maxpool2d_backward_fast(dy, pos, k, H, W), None
        dx = torch.zeros((B, C, H, W), dtype=dy.dtype, device=dy.device)
        zero = torch.zeros((), dtype=dy.dtype, device=dy.device)
        for p in range(k * k):
            i, j = divmod(p, k)
            dx[:, :, i : Ho * k : k, j : Wo * k : k] = torch.where(pos == p, dy, zero)
        return dx, None


def max_pool2d(x: torch.Tensor, kernel_size: int, stride: int | None = None) -> torch.Tensor:
    """``F.max_pool2d`` with stride == kernel_size (exact: :class:`MaxPool2dFn`)."""
    if stride is not None and stride != kernel_size:
        raise NotImplementedError("exact max_pool2d supports stride == kernel_size only")
    if not _exact():
        return F.max_pool2d(x, kernel_size)
    _f32(x)
    return MaxPool2dFn.apply(x, int(kernel_size))


# =============================================================================================
# elementwise transcendental functions
# =============================================================================================
class ExpFn(torch.autograd.Function):
    """y = fmath.exp(x);  dx = fl(dy · y)."""

    @staticmethod
    def forward(ctx, x):
        y = fmath.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        return dy * y


class LogFn(torch.autograd.Function):
    """y = fmath.log(x);  dx = fl(dy / x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return fmath.log(x)

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return dy / x


class TanhFn(torch.autograd.Function):
    """y = fmath.tanh(x);  dx = fl(dy · fl(1 - fl(y · y)))."""

    @staticmethod
    def forward(ctx, x):
        y = fmath.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        return dy * (1.0 - y * y)


class GeluFn(torch.autograd.Function):
    """y = fmath.gelu_tanh(x);  dx = fmath.gelu_tanh_grad(x, t, dy)."""

    @staticmethod
    def forward(ctx, x):
        y, t = fmath.gelu_tanh(x)
        ctx.save_for_backward(x, t)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, t = ctx.saved_tensors
        return fmath.gelu_tanh_grad(x, t, dy)


def exp(x: torch.Tensor) -> torch.Tensor:
    """``torch.exp`` (exact: :class:`ExpFn`)."""
    if not _exact():
        return torch.exp(x)
    _f32(x)
    return ExpFn.apply(x)


def log(x: torch.Tensor) -> torch.Tensor:
    """``torch.log`` (exact: :class:`LogFn`)."""
    if not _exact():
        return torch.log(x)
    _f32(x)
    return LogFn.apply(x)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """``torch.tanh`` (exact: :class:`TanhFn`)."""
    if not _exact():
        return torch.tanh(x)
    _f32(x)
    return TanhFn.apply(x)


def gelu(x: torch.Tensor, approximate: str = "tanh") -> torch.Tensor:
    """``F.gelu(x, approximate="tanh")`` (exact: :class:`GeluFn`; the erf form is not offered)."""
    if approximate != "tanh":
        raise NotImplementedError("exact mode offers the tanh-approximated GELU only (approximate='tanh')")
    if not _exact():
        return F.gelu(x, approximate="tanh")
    _f32(x)
    return GeluFn.apply(x)


def relu(x: torch.Tensor) -> torch.Tensor:
    """``torch.relu``: already exact both ways (max with 0; backward selects), in either mode."""
    return torch.relu(x)


# =============================================================================================
# gradient norm and clipping
# =============================================================================================
def grad_norm(parameters) -> torch.Tensor:
    """Global L2 norm of the gradients, fixed order.

    S = +0.0; for each parameter in the given order (skipping those without a grad):
    S = fl(S + rowsum(fl(g·g)) over g flattened row-major); result = fmath.sqrt(S) (correctly rounded).
    (Native mode: ``torch.nn.utils.get_total_norm``-style native arithmetic.)
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    if not _exact():
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    sq = [K.rowsum((g * g).reshape(1, -1).contiguous())[0].to(grads[0].device) for g in grads]
    S = torch.zeros((), dtype=torch.float32, device=grads[0].device)
    for v in sq:
        S = S + v
    return fmath.sqrt(S.reshape(1)).reshape(())


def clip_grad_norm_(parameters, max_norm: float, eps: float = 1e-6) -> torch.Tensor:
    """Scale gradients so their global norm is at most ``max_norm``; returns the norm before clipping.

    coef = fl(f32(max_norm) / fl(norm + f32(eps))); when coef < 1 every grad becomes fl(g · coef).
    """
    params = [p for p in parameters if p.grad is not None]
    if not _exact():
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    norm = grad_norm(params)
    coef = torch.tensor(fmath.f32(max_norm), device=norm.device) / (norm + fmath.f32(eps))
    if bool(coef < 1.0):
        for p in params:
            p.grad.mul_(coef)
    return norm
