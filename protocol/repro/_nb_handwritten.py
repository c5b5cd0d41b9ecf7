"""Hand-written numba kernels: packing helpers for the GEMM, column sums, row scatter-add.

This file is the *source* of these kernels; ``_gen_kernels.py`` splices
everything below the marker line into the generated ``_nb_kernels.py``, the
one module that is compiled and cached (numba's on-disk cache does not track
dependencies between files, so all kernels live in one file). It is not
imported at run time.

Every loop that accumulates does so in float32 (accumulators are created as
``np.float32(0.0)`` so numba never widens them to float64), one IEEE
operation at a time, with no fast-math flags: LLVM may vectorise across
*independent* outputs but may neither reassociate nor contract ``a*b + c``
into an FMA. The per-element orders are documented in
:mod:`protocol.repro.kernels`.
"""

from __future__ import annotations

import math
from typing import TypedDict

import numpy as np
from numba import njit, prange

from ._config import numba_ready

numba_ready()


class _NjitOptions(TypedDict):
    """The options every kernel is compiled with (a TypedDict so that ``njit(**_OPTS)`` type-checks)."""

    fastmath: bool
    cache: bool
    boundscheck: bool
    nogil: bool


_OPTS: _NjitOptions = dict(fastmath=False, cache=True, boundscheck=False, nogil=True)

# ---- spliced into _nb_kernels.py below this line ----


@njit(**_OPTS)
def pack_b(B, base, bro, bco, ro_unit, co_unit, dst, j0, N, K, NR):  # pragma: no cover - compiled
    """dst[k*NR + c] = B[base + bro[k] + bco[j0 + c]] (+0.0 beyond column N): a k-major column panel.

    (Loops over the constant NR let LLVM turn full panels into vector copies.)
    """
    w = min(NR, N - j0)
    if w == NR and co_unit:
        cb = base + bco[j0]
        for k in range(K):
            rb = cb + bro[k]
            for c in range(NR):
                dst[k * NR + c] = B[rb + c]
        return
    if w == NR:
        for k in range(K):
            rb = base + bro[k]
            for c in range(NR):
                dst[k * NR + c] = B[rb + bco[j0 + c]]
        return
    for k in range(K):
        rb = base + bro[k]
        for c in range(w):
            dst[k * NR + c] = B[rb + bco[j0 + c]]
        for c in range(w, NR):
            dst[k * NR + c] = np.float32(0.0)


@njit(**_OPTS)
def pack_a(A, base, aro, aco, co_unit, dst, i0, M, k0, kc, MR):  # pragma: no cover - compiled
    """dst[kk*MR + r] = A[base + aro[i0 + r] + aco[k0 + kk]] (+0.0 beyond row M): a k-major row panel block."""
    h = min(MR, M - i0)
    if h == MR:
        for kk in range(kc):
            ck = base + aco[k0 + kk]
            for r in range(MR):
                dst[kk * MR + r] = A[ck + aro[i0 + r]]
        return
    for kk in range(kc):
        ck = base + aco[k0 + kk]
        for r in range(h):
            dst[kk * MR + r] = A[ck + aro[i0 + r]]
        for r in range(h, MR):
            dst[kk * MR + r] = np.float32(0.0)


@njit(**_OPTS)
def store_tile(T, bias, C, base, cro, cco, co_unit, i0, j0, M, N, MR, NR):  # pragma: no cover - compiled
    """C[base + cro[i0 + r] + cco[j0 + c]] = fl(T[r*NR + c] + bias[j0 + c]) inside M x N."""
    h = min(MR, M - i0)
    w = min(NR, N - j0)
    if h == MR and w == NR and co_unit:
        cb = base + cco[j0]
        for r in range(MR):
            s = cb + cro[i0 + r]
            for c in range(NR):
                C[s + c] = T[r * NR + c] + bias[j0 + c]
        return
    for r in range(h):
        rb = base + cro[i0 + r]
        for c in range(w):
            C[rb + cco[j0 + c]] = T[r * NR + c] + bias[j0 + c]


@njit(parallel=True, **_OPTS)
def colsum(X, out):  # pragma: no cover - compiled
    """out[j] = fl(...fl(fl(0 + X[0,j]) + X[1,j]) ... + X[R-1,j]): rows in ascending order.

    Parallel over blocks of columns; each column is summed by one thread in
    ascending row order, so neither threads nor SIMD width change any result.
    """
    R, L = X.shape
    CB = 512
    nblk = (L + CB - 1) // CB
    for t in prange(nblk):
        c0 = t * CB
        c1 = min(L, c0 + CB)
        acc = np.zeros(c1 - c0, np.float32)
        for r in range(R):
            row = X[r]
            for c in range(c1 - c0):
                acc[c] = acc[c] + row[c0 + c]
        for c in range(c1 - c0):
            out[c0 + c] = acc[c]


@njit(parallel=True, **_OPTS)
def index_add_rows(idx, G, out):  # pragma: no cover - compiled
    """out[v, :] = fl(... fl(fl(0 + G[n1,:]) + G[n2,:]) ...) over n1 < n2 < ... with idx[n] == v.

    ``out`` must be zero on entry. Parallel over blocks of columns; within a
    column every row of ``G`` is added in ascending ``n`` order.
    """
    N, D = G.shape
    CB = 256
    nblk = (D + CB - 1) // CB
    for t in prange(nblk):
        c0 = t * CB
        c1 = min(D, c0 + CB)
        for n in range(N):
            v = idx[n]
            dst = out[v]
            src = G[n]
            for c in range(c0, c1):
                dst[c] = dst[c] + src[c]


@njit(parallel=True, **_OPTS)
def maxpool_fwd(x, k, y, pos):  # pragma: no cover - compiled
    """Non-overlapping k×k max pool of x (B,C,H,W): scan row-major, strict ``>``, first maximum wins."""
    B, C = x.shape[0], x.shape[1]
    Ho, Wo = y.shape[2], y.shape[3]
    for bc in prange(B * C):
        b = bc // C
        c = bc % C
        for oy in range(Ho):
            for ox in range(Wo):
                m = x[b, c, oy * k, ox * k]
                p = 0
                for q in range(1, k * k):
                    v = x[b, c, oy * k + q // k, ox * k + q % k]
                    if v > m:
                        m = v
                        p = q
                y[b, c, oy, ox] = m
                pos[b, c, oy, ox] = p


@njit(parallel=True, **_OPTS)
def maxpool_bwd(dy, pos, k, dx):  # pragma: no cover - compiled
    """dx (zero on entry) receives dy at each window's recorded position."""
    B, C = dy.shape[0], dy.shape[1]
    Ho, Wo = dy.shape[2], dy.shape[3]
    for bc in prange(B * C):
        b = bc // C
        c = bc % C
        for oy in range(Ho):
            for ox in range(Wo):
                q = pos[b, c, oy, ox]
                dx[b, c, oy * k + q // k, ox * k + q % k] = dy[b, c, oy, ox]


# ---- elementwise transcendental functions: the exact float32 sequences of fmath.py ----
# (every constant is a float32 so numba never widens an expression to float64)
_F0 = np.float32(0.0)
_F05 = np.float32(0.5)
_F1 = np.float32(1.0)
_F2 = np.float32(2.0)
_NAN = np.float32(np.nan)
_EXP_LO = np.float32(-104.0)
_EXP_HI = np.float32(89.0)
_LOG2E = np.float32(1.4426950408889634)
_LN2_C1 = np.float32(0.693359375)
_LN2_C2 = np.float32(-2.12194440e-4)
_EP0 = np.float32(1.9875691500e-4)
_EP1 = np.float32(1.3981999507e-3)
_EP2 = np.float32(8.3334519073e-3)
_EP3 = np.float32(4.1665795894e-2)
_EP4 = np.float32(1.6666665459e-1)
_EP5 = np.float32(5.0000001201e-1)
_TANH_SMALL = np.float32(0.55)
_TANH_CLAMP = np.float32(10.0)
_T1 = np.float32(-1.0 / 3.0)
_T2 = np.float32(2.0 / 15.0)
_T3 = np.float32(-17.0 / 315.0)
_T4 = np.float32(62.0 / 2835.0)
_T5 = np.float32(-1382.0 / 155925.0)
_T6 = np.float32(21844.0 / 6081075.0)
_T7 = np.float32(-929569.0 / 638512875.0)
_T8 = np.float32(6404582.0 / 10854718875.0)
_T9 = np.float32(-443861162.0 / 1856156927625.0)
_GELU_BETA = np.float32(0.7978845608028654)
_GELU_KAPPA = np.float32(0.044715)
_GELU_3KAPPA = np.float32(3 * 0.044715)


@njit(inline="always", **_OPTS)
def _exp1(x):  # pragma: no cover - compiled
    xc = x
    if xc < _EXP_LO:
        xc = _EXP_LO
    if xc > _EXP_HI:
        xc = _EXP_HI
    n = np.float32(np.rint(xc * _LOG2E))
    r = (xc - n * _LN2_C1) - n * _LN2_C2
    z = r * r
    p = _EP0
    p = p * r + _EP1
    p = p * r + _EP2
    p = p * r + _EP3
    p = p * r + _EP4
    p = p * r + _EP5
    y = (p * z + r) + _F1
    if n != n:
        return y
    ni = int(n)
    n1 = ni >> 1
    n2 = ni - n1
    return (y * np.float32(math.ldexp(1.0, n1))) * np.float32(math.ldexp(1.0, n2))


@njit(inline="always", **_OPTS)
def _tanh1(x):  # pragma: no cover - compiled
    a = abs(x)
    z = a * a
    q = _T9
    q = q * z + _T8
    q = q * z + _T7
    q = q * z + _T6
    q = q * z + _T5
    q = q * z + _T4
    q = q * z + _T3
    q = q * z + _T2
    q = q * z + _T1
    t_small = a + a * (z * q)
    ac = a
    if ac > _TANH_CLAMP:
        ac = _TANH_CLAMP
    E = _exp1(ac + ac)
    t_large = _F1 - _F2 / (E + _F1)
    t = t_small if a < _TANH_SMALL else t_large
    return np.float32(math.copysign(t, x))


@njit(parallel=True, **_OPTS)
def sqrt_kernel(x, out):  # pragma: no cover - compiled
    """IEEE sqrt (the ``sqrtss``/``vsqrtps`` instruction: correctly rounded); ±0 → ±0; NaN for x < 0 or NaN,
    the quiet NaN 0x7fc00000 like :func:`protocol.repro.fmath.sqrt_reference`. (The root is taken of |x|:
    LLVM treats all NaNs as equal, so "x >= 0 ? sqrt(x) : NaN" may compile to a bare sqrt whose NaN for a
    negative x is the x86 default NaN 0xffc00000.)"""
    for i in prange(x.shape[0]):
        xi = x[i]
        r = np.sqrt(abs(xi))
        out[i] = r if xi > _F0 else (xi if xi == _F0 else _NAN)


@njit(parallel=True, **_OPTS)
def exp_kernel(x, out):  # pragma: no cover - compiled
    for i in prange(x.shape[0]):
        out[i] = _exp1(x[i])


@njit(parallel=True, **_OPTS)
def tanh_kernel(x, out):  # pragma: no cover - compiled
    for i in prange(x.shape[0]):
        out[i] = _tanh1(x[i])


@njit(parallel=True, **_OPTS)
def gelu_kernel(x, y, t):  # pragma: no cover - compiled
    for i in prange(x.shape[0]):
        xi = x[i]
        x2 = xi * xi
        x3 = x2 * xi
        u = (xi + x3 * _GELU_KAPPA) * _GELU_BETA
        ti = _tanh1(u)
        t[i] = ti
        y[i] = (xi * _F05) * (ti + _F1)


@njit(parallel=True, **_OPTS)
def gelu_grad_kernel(x, t, dy, dx):  # pragma: no cover - compiled
    for i in prange(x.shape[0]):
        xi = x[i]
        ti = t[i]
        x2 = xi * xi
        ld = (ti + _F1) * _F05
        td = _F1 - ti * ti
        iv = (x2 * _GELU_3KAPPA + _F1) * _GELU_BETA
        rd = ((xi * _F05) * td) * iv
        dx[i] = dy[i] * (ld + rd)


_LOG_TINY = np.float32(1.1754943508222875e-38)
_TWO25 = np.float32(33554432.0)
_LN2_HI = np.float32(6.9313812256e-01)
_LN2_LO = np.float32(9.0580006145e-06)
_LG1 = np.float32(6.6666668653e-01)
_LG2 = np.float32(4.0000000596e-01)
_LG3 = np.float32(2.8571429849e-01)
_LG4 = np.float32(2.2222198546e-01)
_LG5 = np.float32(1.8183572590e-01)
_LG6 = np.float32(1.5313838422e-01)
_LG7 = np.float32(1.4798198640e-01)


@njit(inline="always", **_OPTS)
def _log1(x):  # pragma: no cover - compiled
    if x != x or x < _F0:
        return np.float32(np.nan)
    if x == _F0:
        return np.float32(-np.inf)
    if x == np.float32(np.inf):
        return x
    k = 0
    xs = x
    if x < _LOG_TINY:
        xs = x * _TWO25
        k = -25
    # the float32 bit pattern of xs (positive, normal), via an exact frexp
    fr, ex = math.frexp(float(xs))  # xs = fr * 2**ex, fr in [0.5, 1)
    k += ex - 1  # (ix >> 23) - 127
    ix = int((fr * 2.0 - 1.0) * 8388608.0)  # mantissa bits: ix & 0x007fffff
    i = (ix + 0x4AFB20) & 0x800000
    mb = ix | (i ^ 0x3F800000)
    m = np.float32(math.ldexp(1.0 + (mb & 0x7FFFFF) / 8388608.0, ((mb >> 23) & 0xFF) - 127))
    k += i >> 23
    f = m - _F1
    dk = np.float32(k)
    s = f / (f + _F2)
    z = s * s
    w = z * z
    t1 = w * (w * (w * _LG6 + _LG4) + _LG2)
    t2 = z * (w * (w * (w * _LG7 + _LG5) + _LG3) + _LG1)
    R = t2 + t1
    if ((ix - 0x30A3D0) | (0x35C288 - ix)) > 0:
        hfsq = (f * _F05) * f
        return dk * _LN2_HI - ((hfsq - (s * (hfsq + R) + dk * _LN2_LO)) - f)
    return dk * _LN2_HI - ((s * (f - R) - dk * _LN2_LO) - f)


@njit(parallel=True, **_OPTS)
def log_kernel(x, out):  # pragma: no cover - compiled
    for i in prange(x.shape[0]):
        out[i] = _log1(x[i])
