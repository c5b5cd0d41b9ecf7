"""Triton kernels of exact mode for CUDA devices: the four order-fixed primitives and the fmath functions.

These kernels perform, for every output element, exactly the float32 operations of the specifications in
:mod:`protocol.repro.kernels` and :mod:`protocol.repro.fmath`, in the same order, so they give the bits of
the pure-torch reference path (and of the numba CPU path) on any device:

* ``mm``: one program per BM×BN tile of C (and batch matrix); the tile's BM·BN accumulators live in
  registers, start at +0.0 and take ``acc = fl(acc + fl(a·b))`` for k = 0, 1, …, K-1, one k at a time.
  Tiles split the *outputs* only: no split-K, no tree, no ``tl.dot`` (tensor cores add several products
  in one step with their own internal rounding). The bias is added once, when the tile is stored.
  Operands are read through the offset tables of :class:`protocol.repro.kernels.Operand` (an axis that is
  an arithmetic progression is passed as a stride instead), so transposes and the implicit im2col matrix
  of a convolution are never copied.
* ``rowsum`` / ``colsum``: one register accumulator per output element, the summed axis walked in
  ascending order.
* ``index_add_rows``: the rows are sorted by index (stable, so equal indices stay in ascending n: exact
  integer work done with torch), then one program per (index value, column block) adds its rows in that
  order into register accumulators.
* sqrt, exp, log, tanh, tanh-GELU and its gradient: the reference formulas one element per lane.

What makes the compiled code follow that order:

* every kernel is launched with ``enable_fp_fusion=False``: LLVM does not contract ``a·b + c`` into a fused
  multiply-add (it emits ``mul.rn.f32`` / ``add.rn.f32``, whose explicit rounding ptxas must honour) and
  ptxas runs with ``--fmad=false``;
* division is ``tl.math.div_rn`` (``div.rn.f32``) and the square root ``tl.math.sqrt_rn`` (``sqrt.rn.f32``):
  IEEE-754 correctly rounded, never the approximate forms; the square root is therefore the same number
  as :func:`protocol.repro.fmath.sqrt_reference` computes;
* no library function is called (round-half-even is ``(t + 1.5·2^23) - 1.5·2^23`` with the sign of t, exact
  for the |t| < 2^22 it is used on), so flush-to-zero settings of libdevice never apply; plain float32
  instructions keep subnormals (Triton sets no denormal mode on NVIDIA);
* masked lanes load +0.0 and are never stored; an accumulator is never -0.0 (it starts at +0.0 and
  ``x + (-x)`` rounds to +0.0), so nothing a mask adds can change a result.

``tests/test_repro_triton.py`` checks the compiled NVIDIA code for these properties without a GPU (it
compiles every kernel for sm_80 and sm_90 and reads the PTX and SASS) and runs the kernels bit for bit
against the reference on CPU in Triton's interpreter (``TRITON_INTERPRET=1``). On a CUDA device,
:func:`self_check` repeats a small comparison against the reference path on first use (once per device
and process) and refuses to run if any bit differs.

NaN payloads are not part of the specification: NVIDIA arithmetic returns the canonical NaN 0x7fffffff
where x86 propagates an operand's payload (the reference path differs the same way between devices).

Import cost: this module imports triton and decorates the kernels; :mod:`protocol.repro.kernels` imports it
only when a CUDA tensor (or the ``"triton"`` backend) needs it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, overload

import numpy as np
import torch
import triton
import triton.language as tl

from . import fmath as _fm

if TYPE_CHECKING:
    from .kernels import Operand

__all__ = [
    "LAUNCH_OPTIONS",
    "colsum",
    "elementwise",
    "index_add_rows",
    "interpreted",
    "mm",
    "rowsum",
    "self_check",
]

#: Compiler options of every launch (see the module docstring): no contraction into FMA.
LAUNCH_OPTIONS = {"enable_fp_fusion": False}


def interpreted() -> bool:
    """True when Triton runs its CPU interpreter (``TRITON_INTERPRET=1`` when triton was imported)."""
    return bool(triton.knobs.runtime.interpret)


# ============================================================================================================
# constants (float32 values; the same objects the reference formulas use)
# ============================================================================================================
_EXP_LO = tl.constexpr(_fm.EXP_LO)
_EXP_HI = tl.constexpr(_fm.EXP_HI)
_LOG2E = tl.constexpr(_fm.LOG2E)
_LN2_C1 = tl.constexpr(_fm.LN2_C1)
_LN2_C2 = tl.constexpr(_fm.LN2_C2)
_EP0, _EP1, _EP2, _EP3, _EP4, _EP5 = (tl.constexpr(c) for c in _fm.EXP_P)
_RINT_MAGIC = tl.constexpr(12582912.0)  # 1.5 * 2**23
_TANH_SMALL = tl.constexpr(_fm.TANH_SMALL)
_TANH_CLAMP = tl.constexpr(_fm.TANH_CLAMP)
_T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8, _T9 = (tl.constexpr(c) for c in _fm.TANH_T)
_TWO25 = tl.constexpr(_fm.TWO25)
_LN2_HI = tl.constexpr(_fm.LN2_HI)
_LN2_LO = tl.constexpr(_fm.LN2_LO)
_LG1, _LG2, _LG3, _LG4, _LG5, _LG6, _LG7 = (tl.constexpr(c) for c in _fm.LG)
_GELU_BETA = tl.constexpr(_fm.GELU_BETA)
_GELU_KAPPA = tl.constexpr(_fm.GELU_KAPPA)
_GELU_3KAPPA = tl.constexpr(_fm.GELU_3KAPPA)
_FLT_MIN_NORMAL = tl.constexpr(1.1754943508222875e-38)
_QNAN_BITS = tl.constexpr(0x7FC00000)  # the reference's NaN (torch's float("nan"))
_NEG_INF_BITS = tl.constexpr(-8388608)  # 0xff800000 as int32
_POS_INF_BITS = tl.constexpr(0x7F800000)
_SIGN_BIT = tl.constexpr(-2147483648)  # 0x80000000 as int32
_ABS_MASK = tl.constexpr(0x7FFFFFFF)


# ============================================================================================================
# kernels
# ============================================================================================================
# Integer arguments are not specialised (Triton would otherwise compile a variant per "== 1" and "divisible by 16"
# pattern of sizes and strides): fewer compilations, and the generated code does not depend on the sizes.
_MM_INTS = ("a_bs", "a_rs", "a_cs", "b_bs", "b_rs", "b_cs", "c_bs", "c_rs", "c_cs", "M", "N", "K")


@triton.jit
def _axis(tab, stride, i, TAB: tl.constexpr, mask):
    """Offsets of the positions ``i`` (a block, ``mask`` the valid ones) along one operand axis: ``tab[i]`` or
    ``i · stride`` (int64)."""
    if TAB:
        return tl.load(tab + i, mask=mask, other=0)
    else:
        return tl.cast(i, tl.int64) * stride


@triton.jit
def _axis1(tab, stride, i, TAB: tl.constexpr):
    """:func:`_axis` of one position ``i``."""
    if TAB:
        return tl.load(tab + i)
    else:
        return tl.cast(i, tl.int64) * stride


@triton.jit(do_not_specialize=_MM_INTS)
def _mm_kernel(
    a, a_base, a_bs, a_ro, a_rs, a_co, a_cs,
    b, b_base, b_bs, b_ro, b_rs, b_co, b_cs,
    bias, c, c_base, c_bs, c_ro, c_rs, c_co, c_cs,
    M, N, K,
    A_BT: tl.constexpr, A_RT: tl.constexpr, A_CT: tl.constexpr,
    B_BT: tl.constexpr, B_RT: tl.constexpr, B_CT: tl.constexpr,
    C_BT: tl.constexpr, C_RT: tl.constexpr, C_CT: tl.constexpr,
    HAS_BIAS: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
):  # fmt: skip
    """C[p, i, j] = fl(... fl(fl(0 + fl(A[p,i,0]·B[p,0,j])) + fl(A[p,i,1]·B[p,1,j])) ... ) (+ bias[j])."""
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    p = tl.program_id(2)
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    in_m = rm < M
    in_n = rn < N
    a_row = _axis1(a_base, a_bs, p, A_BT) + _axis(a_ro, a_rs, rm, A_RT, in_m)
    b_col = _axis1(b_base, b_bs, p, B_BT) + _axis(b_co, b_cs, rn, B_CT, in_n)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k in range(0, K):
        av = tl.load(a + (a_row + _axis1(a_co, a_cs, k, A_CT)), mask=in_m, other=0.0)
        bv = tl.load(b + (b_col + _axis1(b_ro, b_rs, k, B_RT)), mask=in_n, other=0.0)
        acc = acc + av[:, None] * bv[None, :]
    if HAS_BIAS:
        acc = acc + tl.load(bias + rn, mask=in_n, other=0.0)[None, :]
    dst = (
        _axis1(c_base, c_bs, p, C_BT)
        + _axis(c_ro, c_rs, rm, C_RT, in_m)[:, None]
        + _axis(c_co, c_cs, rn, C_CT, in_n)[None, :]
    )
    tl.store(c + dst, acc, mask=in_m[:, None] & in_n[None, :])


@triton.jit(do_not_specialize=("R", "L", "s_r", "s_l"))
def _rowsum_kernel(x, out, R, L, s_r, s_l, BR: tl.constexpr):
    """out[r] = fl(... fl(fl(0 + x[r,0]) + x[r,1]) ... + x[r,L-1])."""
    rows = tl.program_id(0) * BR + tl.arange(0, BR)
    ok = rows < R
    base = tl.cast(rows, tl.int64) * s_r
    acc = tl.zeros((BR,), dtype=tl.float32)
    for j in range(0, L):
        acc = acc + tl.load(x + (base + tl.cast(j, tl.int64) * s_l), mask=ok, other=0.0)
    tl.store(out + rows, acc, mask=ok)


@triton.jit(do_not_specialize=("R", "L", "s_r", "s_l"))
def _colsum_kernel(x, out, R, L, s_r, s_l, BL: tl.constexpr):
    """out[l] = fl(... fl(fl(0 + x[0,l]) + x[1,l]) ... + x[R-1,l])."""
    cols = tl.program_id(0) * BL + tl.arange(0, BL)
    ok = cols < L
    base = tl.cast(cols, tl.int64) * s_l
    acc = tl.zeros((BL,), dtype=tl.float32)
    for i in range(0, R):
        acc = acc + tl.load(x + (base + tl.cast(i, tl.int64) * s_r), mask=ok, other=0.0)
    tl.store(out + cols, acc, mask=ok)


@triton.jit(do_not_specialize=("s_n", "s_d", "D"))
def _index_add_rows_kernel(g, s_n, s_d, order, starts, ends, out, D, BD: tl.constexpr):
    """out[v, :] = the rows g[order[r], :] for r in starts[v]..ends[v]-1 (ascending n), summed from +0.0."""
    v = tl.program_id(0)
    cols = tl.program_id(1) * BD + tl.arange(0, BD)
    ok = cols < D
    coff = tl.cast(cols, tl.int64) * s_d
    lo = tl.load(starts + v)
    hi = tl.load(ends + v)
    acc = tl.zeros((BD,), dtype=tl.float32)
    for r in range(lo, hi):
        n = tl.load(order + r)
        acc = acc + tl.load(g + (n * s_n + coff), mask=ok, other=0.0)
    tl.store(out + (tl.cast(v, tl.int64) * D + cols), acc, mask=ok)


# ------------------------------------------------------------------------------------------------ fmath
@triton.jit
def _f32_bits(x):
    return x.to(tl.int32, bitcast=True)


@triton.jit
def _bits_f32(i):
    return i.to(tl.float32, bitcast=True)


@triton.jit
def _const_f32(like, bits: tl.constexpr):
    return _bits_f32(tl.full(like.shape, bits, tl.int32))


@triton.jit
def _copysign(mag, sgn):
    return _bits_f32((_f32_bits(mag) & _ABS_MASK) | (_f32_bits(sgn) & _SIGN_BIT))


@triton.jit
def _pow2i(n):
    """2**n as float32 for int32 -126 <= n <= 127: the bit pattern (n + 127) << 23."""
    return _bits_f32((n + 127) << 23)


@triton.jit
def _exp1(x):
    """fmath.exp_reference, element by element."""
    xc = tl.where(x < _EXP_LO, _EXP_LO, tl.where(x > _EXP_HI, _EXP_HI, x))  # NaN stays NaN
    t = xc * _LOG2E
    # round half to even (torch.round): exact for |t| < 2**22, here |t| <= 151; the sign of a zero is t's
    n = _copysign((t + _RINT_MAGIC) - _RINT_MAGIC, t)
    r = (xc - n * _LN2_C1) - n * _LN2_C2
    z = r * r
    p = tl.full(r.shape, _EP0, tl.float32)
    p = p * r + _EP1
    p = p * r + _EP2
    p = p * r + _EP3
    p = p * r + _EP4
    p = p * r + _EP5
    y = (p * z + r) + 1.0
    ni = tl.where(n != n, 0.0, n).to(tl.int32)
    n1 = ni >> 1
    n2 = ni - n1
    return (y * _pow2i(n1)) * _pow2i(n2)


@triton.jit
def _tanh1(x):
    """fmath.tanh_reference, element by element."""
    a = tl.abs(x)
    z = a * a
    q = tl.full(z.shape, _T9, tl.float32)
    q = q * z + _T8
    q = q * z + _T7
    q = q * z + _T6
    q = q * z + _T5
    q = q * z + _T4
    q = q * z + _T3
    q = q * z + _T2
    q = q * z + _T1
    t_small = a + a * (z * q)
    ac = tl.where(a > _TANH_CLAMP, _TANH_CLAMP, a)
    E = _exp1(ac + ac)
    t_large = 1.0 - tl.math.div_rn(tl.full(E.shape, 2.0, tl.float32), E + 1.0)
    t = tl.where(a < _TANH_SMALL, t_small, t_large)
    return _copysign(t, x)


@triton.jit
def _log1(x):
    """fmath.log_reference, element by element."""
    sub = x < _FLT_MIN_NORMAL
    xs = tl.where(sub, x * _TWO25, x)
    k0 = tl.where(sub, -25, 0).to(tl.int32)
    ix = _f32_bits(xs)
    k = k0 + (ix >> 23) - 127
    ix = ix & 0x007FFFFF
    i = (ix + (0x95F64 << 3)) & 0x800000
    m = _bits_f32(ix | (i ^ 0x3F800000))
    k = k + (i >> 23)
    f = m - 1.0
    dk = k.to(tl.float32)
    s = tl.math.div_rn(f, f + 2.0)
    z = s * s
    w = z * z
    t1 = w * (w * (w * _LG6 + _LG4) + _LG2)
    t2 = z * (w * (w * (w * _LG7 + _LG5) + _LG3) + _LG1)
    R = t2 + t1
    big = ((ix - (0x6147A << 3)) | ((0x6B851 << 3) - ix)) > 0
    hfsq = (f * 0.5) * f
    y_big = dk * _LN2_HI - ((hfsq - (s * (hfsq + R) + dk * _LN2_LO)) - f)
    y_small = dk * _LN2_HI - ((s * (f - R) - dk * _LN2_LO) - f)
    y = tl.where(big, y_big, y_small)
    y = tl.where(x == 0.0, _const_f32(y, _NEG_INF_BITS), y)
    y = tl.where(x == _bits_f32(tl.full(y.shape, _POS_INF_BITS, tl.int32)), _const_f32(y, _POS_INF_BITS), y)
    return tl.where((x < 0.0) | (x != x), _const_f32(y, _QNAN_BITS), y)


@triton.jit
def _sqrt1(x):
    """Correctly rounded sqrt (the number fmath.sqrt_reference computes); ±0 → ±0, NaN 0x7fc00000 for x < 0."""
    r = tl.math.sqrt_rn(tl.abs(x))
    return tl.where(x > 0.0, r, tl.where(x == 0.0, x, _const_f32(x, _QNAN_BITS)))


@triton.jit(do_not_specialize=("n",))
def _unary_kernel(x, out, n, OP: tl.constexpr, BLOCK: tl.constexpr):
    i = tl.cast(tl.program_id(0), tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = i < n
    v = tl.load(x + i, mask=ok, other=1.0)
    if OP == 0:
        y = _sqrt1(v)
    elif OP == 1:
        y = _exp1(v)
    elif OP == 2:
        y = _log1(v)
    else:
        y = _tanh1(v)
    tl.store(out + i, y, mask=ok)


@triton.jit(do_not_specialize=("n",))
def _gelu_kernel(x, y_out, t_out, n, BLOCK: tl.constexpr):
    """fmath.gelu_tanh_reference: (y, t)."""
    i = tl.cast(tl.program_id(0), tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = i < n
    v = tl.load(x + i, mask=ok, other=0.0)
    x2 = v * v
    x3 = x2 * v
    u = (v + x3 * _GELU_KAPPA) * _GELU_BETA
    t = _tanh1(u)
    tl.store(t_out + i, t, mask=ok)
    tl.store(y_out + i, (v * 0.5) * (t + 1.0), mask=ok)


@triton.jit(do_not_specialize=("n",))
def _gelu_grad_kernel(x, t, dy, dx, n, BLOCK: tl.constexpr):
    """fmath.gelu_tanh_grad_reference."""
    i = tl.cast(tl.program_id(0), tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = i < n
    v = tl.load(x + i, mask=ok, other=0.0)
    tv = tl.load(t + i, mask=ok, other=0.0)
    g = tl.load(dy + i, mask=ok, other=0.0)
    x2 = v * v
    ld = (tv + 1.0) * 0.5
    td = 1.0 - tv * tv
    iv = (x2 * _GELU_3KAPPA + 1.0) * _GELU_BETA
    rd = ((v * 0.5) * td) * iv
    tl.store(dx + i, g * (ld + rd), mask=ok)


# ============================================================================================================
# host side
# ============================================================================================================
_UNARY = {"sqrt": 0, "exp": 1, "log": 2, "tanh": 3}
_ELEMENTWISE_BLOCK = 1024


def _pow2_at_least(n: int, lo: int, hi: int) -> int:
    b = lo
    while b < n and b < hi:
        b *= 2
    return b


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


_sm_counts: dict[int, int] = {}


def _target_programs(dev: torch.device) -> int:
    """Programs a launch should have to fill the device (2 per SM); 1 in the interpreter (fewest programs)."""
    if dev.type != "cuda":
        return 1
    idx = dev.index if dev.index is not None else torch.cuda.current_device()
    if idx not in _sm_counts:
        _sm_counts[idx] = torch.cuda.get_device_properties(idx).multi_processor_count
    return 2 * _sm_counts[idx]


def mm_blocks(nb: int, M: int, N: int, dev: torch.device) -> tuple[int, int, int]:
    """(BM, BN, num_warps) of the GEMM tiles: 64×64 shrunk (to 16 at least) until the launch fills the device.

    Speed only: a tile size never changes an element's order of operations (the tests run several).
    """
    bm, bn = _pow2_at_least(M, 16, 64), _pow2_at_least(N, 16, 64)
    target = _target_programs(dev)
    while nb * _cdiv(M, bm) * _cdiv(N, bn) < target and max(bm, bn) > 16:
        if bm >= bn:
            bm //= 2
        else:
            bn //= 2
    warps = 4 if bm * bn >= 2048 else (2 if bm * bn >= 1024 else 1)
    return bm, bn, warps


class _Tables:
    """Device copies of the offset tables of Operands (numpy int64), each as (tensor | None, stride).

    An arithmetic progression is passed as its stride (the kernel computes ``i · stride``); any other table is
    copied to the device. Read-only arrays (the cached tables of strided views and convolutions) are kept per
    device, keyed by identity (the entry holds the array, so its id cannot be reused while it is cached).
    """

    _MAX = 1024

    def __init__(self) -> None:
        self._cache: dict[tuple[int, str], tuple[np.ndarray, torch.Tensor | None, int]] = {}
        self._lock = threading.Lock()
        self._dummy: dict[str, torch.Tensor] = {}

    def dummy(self, dev: torch.device) -> torch.Tensor:
        key = str(dev)
        if key not in self._dummy:
            self._dummy[key] = torch.zeros(1, dtype=torch.int64, device=dev)
        return self._dummy[key]

    @staticmethod
    def _convert(a: np.ndarray, dev: torch.device) -> tuple[torch.Tensor | None, int]:
        n = a.shape[0]
        if n == 0 or (n == 1 and a[0] == 0):
            return None, 0
        if n == 1:
            return torch.from_numpy(np.array(a, dtype=np.int64)).to(dev), 0
        step = int(a[1] - a[0])
        if a[0] == 0 and (n == 2 or bool((np.diff(a) == step).all())):
            return None, step
        return torch.from_numpy(np.array(a, dtype=np.int64)).to(dev), 0  # a copy: the table may be read-only

    def get(self, a: np.ndarray, dev: torch.device) -> tuple[torch.Tensor | None, int]:
        if a.flags.writeable:
            return self._convert(a, dev)
        key = (id(a), str(dev))
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] is a:
                return hit[1], hit[2]
        tab, stride = self._convert(a, dev)
        with self._lock:
            if len(self._cache) >= self._MAX:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = (a, tab, stride)
        return tab, stride

    def args(self, a: np.ndarray, dev: torch.device) -> tuple[tuple[torch.Tensor, int], bool]:
        """(pointer argument, stride argument), is-a-table."""
        tab, stride = self.get(a, dev)
        if tab is None:
            return (self.dummy(dev), stride), False
        return (tab, 0), True


_tables = _Tables()


def _device_ctx(dev: torch.device):
    if dev.type == "cuda":
        return torch.cuda.device(dev)
    import contextlib

    return contextlib.nullcontext()


@overload
def mm(
    A: Operand, B: Operand, bias: torch.Tensor | None, out: None = None, blocks: tuple[int, int] | None = None
) -> torch.Tensor: ...
@overload
def mm(
    A: Operand, B: Operand, bias: torch.Tensor | None, out: Operand, blocks: tuple[int, int] | None = None
) -> None: ...
def mm(
    A: Operand, B: Operand, bias: torch.Tensor | None, out: Operand | None = None, blocks: tuple[int, int] | None = None
) -> torch.Tensor | None:
    """``kernels.mm`` for Operands A (nb, M, K), B (nb, K, N) on one device; ``out`` an Operand or None.

    ``blocks`` = (BM, BN) forces the tile (powers of two, tests); the default is :func:`mm_blocks`.
    """
    from .kernels import Operand

    dev = A.flat.device
    nb, M, K = A.shape
    N = B.shape[2]
    C = None
    if out is None:
        C = torch.empty((nb, M, N), dtype=torch.float32, device=dev)
        out = Operand.of(C)
    if nb == 0 or M == 0 or N == 0:
        return C
    self_check(dev)
    if blocks is None:
        bm, bn, warps = mm_blocks(nb, M, N, dev)
    else:
        (bm, bn), warps = blocks, 4
    args: list[torch.Tensor | int] = []  # kernel arguments: tensors, and table (pointer, stride) pairs
    flags: list[bool] = []
    for op in (A, B):
        args.append(op.flat.detach())
        for tab in (op.base, op.ro, op.co):
            (ptr, stride), is_tab = _tables.args(tab, dev)
            args += [ptr, stride]
            flags.append(is_tab)
    bias_arg = bias.detach().contiguous() if bias is not None else _tables.dummy(dev)
    args.append(bias_arg)
    args.append(out.flat.detach())
    for tab in (out.base, out.ro, out.co):
        (ptr, stride), is_tab = _tables.args(tab, dev)
        args += [ptr, stride]
        flags.append(is_tab)
    grid = (_cdiv(M, bm), _cdiv(N, bn), nb)
    with _device_ctx(dev):
        _mm_kernel[grid](*args, M, N, K, *flags, bias is not None, bm, bn, num_warps=warps, **LAUNCH_OPTIONS)
    return C


def rowsum(X: torch.Tensor) -> torch.Tensor:
    """``kernels.rowsum``: (R, L) → (R,), any strides."""
    R, L = X.shape
    out = torch.empty(R, dtype=torch.float32, device=X.device)
    if R == 0:
        return out
    self_check(X.device)
    br = _pow2_at_least(R, 16, 128)
    with _device_ctx(X.device):
        _rowsum_kernel[(_cdiv(R, br),)](X.detach(), out, R, L, X.stride(0), X.stride(1), br,
                                        num_warps=4 if br >= 128 else 1, **LAUNCH_OPTIONS)  # fmt: skip
    return out


def colsum(X: torch.Tensor) -> torch.Tensor:
    """``kernels.colsum``: (R, L) → (L,), any strides."""
    R, L = X.shape
    out = torch.empty(L, dtype=torch.float32, device=X.device)
    if L == 0:
        return out
    self_check(X.device)
    bl = _pow2_at_least(L, 16, 128)
    with _device_ctx(X.device):
        _colsum_kernel[(_cdiv(L, bl),)](X.detach(), out, R, L, X.stride(0), X.stride(1), bl,
                                        num_warps=4 if bl >= 128 else 1, **LAUNCH_OPTIONS)  # fmt: skip
    return out


def index_add_rows(idx: torch.Tensor, G: torch.Tensor, V: int) -> torch.Tensor:
    """``kernels.index_add_rows``: idx (N,) int64 in [0, V), G (N, D) → (V, D)."""
    dev = G.device
    D = G.shape[1]
    out = torch.empty((V, D), dtype=torch.float32, device=dev)
    if V == 0 or D == 0:
        return out
    self_check(dev)
    sidx, order = torch.sort(idx, stable=True)  # equal indices keep ascending n
    values = torch.arange(V, dtype=torch.int64, device=dev)
    starts = torch.searchsorted(sidx, values)
    ends = torch.searchsorted(sidx, values, right=True)
    bd = _pow2_at_least(D, 16, 128)
    with _device_ctx(dev):
        _index_add_rows_kernel[(V, _cdiv(D, bd))](G.detach(), G.stride(0), G.stride(1), order, starts, ends, out, D,
                                                  bd, num_warps=4 if bd >= 128 else 1, **LAUNCH_OPTIONS)  # fmt: skip
    return out


def elementwise(name: str, *xs: torch.Tensor):
    """The fmath function ``name`` ("sqrt", "exp", "log", "tanh": x → y; "gelu": x → (y, t);
    "gelu_grad": (x, t, dy) → dx) on tensors of one device."""
    dev = xs[0].device
    shape = xs[0].shape
    flats = [x.detach().contiguous().reshape(-1) for x in xs]
    n = flats[0].numel()
    self_check(dev)
    grid = (max(1, _cdiv(n, _ELEMENTWISE_BLOCK)),)
    with _device_ctx(dev):
        if name == "gelu":
            y = torch.empty(shape, dtype=torch.float32, device=dev)
            t = torch.empty(shape, dtype=torch.float32, device=dev)
            if n:
                _gelu_kernel[grid](flats[0], y, t, n, _ELEMENTWISE_BLOCK, num_warps=4, **LAUNCH_OPTIONS)
            return y, t
        out = torch.empty(shape, dtype=torch.float32, device=dev)
        if n == 0:
            return out
        if name == "gelu_grad":
            _gelu_grad_kernel[grid](*flats, out, n, _ELEMENTWISE_BLOCK, num_warps=4, **LAUNCH_OPTIONS)
        else:
            _unary_kernel[grid](flats[0], out, n, _UNARY[name], _ELEMENTWISE_BLOCK, num_warps=4, **LAUNCH_OPTIONS)
    return out


# ============================================================================================================
# self check (first use on each device, in every process)
# ============================================================================================================
_checked: set[str] = set()
_checking = threading.local()
_check_lock = threading.Lock()


def self_check(dev: torch.device | str) -> None:
    """Compare the Triton kernels with the reference path on ``dev`` (small shapes with edge tiles, special
    values); raise :class:`protocol.errors.KernelSelfCheckFailed` on any difference. Runs once per device."""
    dev = torch.device(dev)
    key = str(dev)
    if key in _checked or getattr(_checking, "on", False):
        return
    with _check_lock:
        if key in _checked:
            return
        _checking.on = True
        try:
            results = compare_with_reference(dev, quick=True)
        finally:
            _checking.on = False
        bad = [f"{case}: {n} elements differ" for case, n in results.items() if n]
        if bad:
            from protocol.errors import KernelSelfCheckFailed

            raise KernelSelfCheckFailed(
                f"protocol.repro: the Triton kernels on {dev} do not reproduce the reference order of operations "
                f"({'; '.join(bad[:4])}). Exact mode cannot use them on this device: set VERITRAIN_REPRO_CUDA="
                "reference to run the (slow) reference path, and report this with the triton and driver versions."
            )
        _checked.add(key)


def differing_elements(got: torch.Tensor, want: torch.Tensor, nan_payloads: bool = False) -> int:
    """How many elements of two float32 tensors have different bit patterns (all of them if the shapes differ);
    unless ``nan_payloads``, a NaN equals any NaN whatever its payload (see the module docstring)."""
    if got.shape != want.shape:
        return max(got.numel(), want.numel(), 1)
    a = got.detach().cpu().contiguous().view(torch.int32)
    b = want.detach().cpu().contiguous().view(torch.int32)
    diff = a != b
    if not nan_payloads:
        diff &= ~(torch.isnan(a.view(torch.float32)) & torch.isnan(b.view(torch.float32)))
    return int(diff.sum())


def _gen(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(key=seed))


def _tensor(a: np.ndarray, dev: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(dev)


#: (nb, M, K, N) of the GEMM comparisons: edge tiles (sizes not multiples of any block), K = 0 and 1, wide and
#: tall. ``quick`` (the self check) takes the first four.
MM_SHAPES = ((1, 17, 33, 19), (2, 9, 5, 33), (1, 1, 0, 3), (3, 1, 1, 1), (1, 70, 13, 5), (2, 31, 64, 129),
             (1, 130, 3, 17), (1, 5, 7, 6))  # fmt: skip
#: (R, L) of the row/column sums.
SUM_SHAPES = ((13, 37), (1, 1), (1, 300), (70, 3), (129, 17), (0, 4))
#: (N, D, V) of the scatter-adds.
SCATTER_SHAPES = ((40, 7, 5), (1, 130, 3), (0, 4, 2), (200, 17, 31))


def _special_floats() -> np.ndarray:
    return np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1.1754943508222875e-38, 3.4028235e38,
                     -3.4028235e38, 1.0, -1.0, 0.5, 2.0, 88.7, 89.5, -103.9, -104.5, 0.55, -0.55, 10.0, 9.99,
                     1e-30, 0.3465736, -0.3465736], np.float32)  # fmt: skip


def compare_with_reference(
    dev: torch.device | str,
    quick: bool = False,
    seed: int = 20261122,
    elementwise_count: int | None = None,
    nan_payloads: bool = False,
) -> dict[str, int]:
    """Run every Triton kernel against the reference path on ``dev``: ``{case: elements that differ}`` (all 0:
    bit for bit equal).

    Covers ``mm`` (dense, transposed, im2col and arbitrary-table operands, a strided destination, with and
    without bias, several tile sizes), the sums (contiguous and strided), the scatter-add and every fmath
    function on random bit patterns plus special values. ``quick`` (the self check) runs a subset.
    """
    from . import fmath
    from . import kernels as K

    dev = torch.device(dev)
    g = _gen(seed)
    results: dict[str, int] = {}

    def check(name: str, got: torch.Tensor, want: torch.Tensor) -> None:
        results[name] = differing_elements(got, want, nan_payloads)

    shapes = MM_SHAPES[:4] if quick else MM_SHAPES
    block_sets = [None] if quick else [None, (16, 16), (32, 64)]
    for nb, M, Kd, N in shapes:
        A = _tensor(g.standard_normal((nb, M, Kd)).astype(np.float32), dev)
        B = _tensor(g.standard_normal((nb, Kd, N)).astype(np.float32), dev)
        bias = _tensor(g.standard_normal(N).astype(np.float32), dev)
        for bl in block_sets:
            for bb in (bias, None):
                want = K.mm_reference(A, B, bb)
                got = mm(K.Operand.of(A), K.Operand.of(B), bb, blocks=bl)
                check(f"mm {nb}x{M}x{Kd}x{N} bias={bb is not None} blocks={bl}", got, want)
        # transposed views (column-major operands), written into a transposed destination
        At = A.transpose(1, 2).contiguous().transpose(1, 2)
        Bt = B.transpose(1, 2).contiguous().transpose(1, 2)
        dst = torch.full((nb, N, M), 7.0, device=dev).transpose(1, 2)
        mm(K.Operand.of(At), K.Operand.of(Bt), bias, out=K.Operand.of(dst))
        check(f"mm transposed {nb}x{M}x{Kd}x{N}", dst, K.mm_reference(A, B, bias))
    if not quick:
        # an implicit im2col operand: 3x3 taps over a padded 2-channel image, as Conv2dFn builds it
        from .functional import _conv_tables, _op

        Bn, C, Hp, Wp, kh, kw = 2, 2, 7, 6, 3, 3
        x = _tensor(g.standard_normal((Bn, C, Hp, Wp)).astype(np.float32), dev)
        w = _tensor(g.standard_normal((5, C * kh * kw)).astype(np.float32), dev)
        rowbase, koff, zero = _conv_tables(Bn, C, Hp, Wp, kh, kw, (1, 2), (1, 1))
        Xop = _op(x.reshape(-1), zero, rowbase, koff)
        check(
            "mm im2col", mm(Xop, K.Operand.of(w.t()), None, blocks=(16, 16)), K.mm_reference(Xop.dense(), w.t()[None])
        )
        # arbitrary offset tables on every axis (a gather in no particular order), batch bases included
        flat = _tensor(g.standard_normal(500).astype(np.float32), dev)
        Aop = K.Operand.tables(flat, [37, 0, 101], g.permutation(20)[:11] * 7, g.permutation(9) * 3)
        Bop = K.Operand.tables(flat, [5, 200, 17], g.permutation(9) * 11, g.permutation(13)[:6] * 2)
        dst = torch.zeros(3 * 11 * 6 + 200, device=dev)
        Cop = K.Operand.tables(dst, [0, 70, 140], g.permutation(11) * 6, np.arange(6)[::-1].copy())
        b6 = _tensor(g.standard_normal(6).astype(np.float32), dev)
        mm(Aop, Bop, b6, out=Cop, blocks=(16, 16))
        check("mm offset tables", Cop.dense(), K.mm_reference(Aop.dense(), Bop.dense(), b6))
        # one batch matrix at a non-zero base (a one-entry table that is not the zero offset)
        A1 = K.Operand.tables(flat, [123], np.arange(4) * 9, np.arange(9))
        B1 = K.Operand.tables(flat, [31], np.arange(9) * 5, np.arange(5))
        check("mm offset tables single base", mm(A1, B1, None, blocks=(16, 16)), K.mm_reference(A1.dense(), B1.dense()))
    for R, L in SUM_SHAPES[: 3 if quick else None]:
        X = _tensor(g.standard_normal((R, L)).astype(np.float32), dev)
        check(f"rowsum {R}x{L}", rowsum(X), K.rowsum_reference(X))
        check(f"colsum {R}x{L}", colsum(X), K.colsum_reference(X))
        if R and L:
            Xt = X.t().contiguous().t()  # column-major: strided rows
            check(f"rowsum strided {R}x{L}", rowsum(Xt), K.rowsum_reference(X))
            check(f"colsum strided {R}x{L}", colsum(Xt), K.colsum_reference(X))
    for Nn, D, V in SCATTER_SHAPES[: 2 if quick else None]:
        idx = _tensor(g.integers(0, V, size=Nn).astype(np.int64), dev)
        G = _tensor(g.standard_normal((Nn, D)).astype(np.float32), dev)
        check(f"index_add_rows {Nn}x{D}->{V}", index_add_rows(idx, G, V), K.index_add_rows_reference(idx, G, V))
    count = elementwise_count or (4096 if quick else 50_000)
    bits = g.integers(0, 2**32, size=count, dtype=np.uint64).astype(np.uint32).view(np.float32)
    normal = (g.standard_normal(count) * 4).astype(np.float32)
    x = _tensor(np.concatenate([_special_floats(), bits, normal]), dev)
    for name, ref in (("sqrt", fmath.sqrt_reference), ("exp", fmath.exp_reference), ("log", fmath.log_reference),
                      ("tanh", fmath.tanh_reference)):  # fmt: skip
        check(name, elementwise(name, x), ref(x))
    xg = _tensor(np.concatenate([_special_floats(), normal]), dev)
    y, t = elementwise("gelu", xg)
    yr, tr = fmath.gelu_tanh_reference(xg)
    check("gelu y", y, yr)
    check("gelu t", t, tr)
    dy = _tensor(g.standard_normal(xg.numel()).astype(np.float32), dev)
    check("gelu_grad", elementwise("gelu_grad", xg, tr, dy), fmath.gelu_tanh_grad_reference(xg, tr, dy))
    return results
