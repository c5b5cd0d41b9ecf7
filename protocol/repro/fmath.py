"""sqrt, exp, log, tanh and tanh-GELU in float32 from correctly rounded operations only.

``torch.exp``/``log``/``tanh`` are not correctly rounded and their results
differ between CPU vector ISAs (SLEEF / AVX2 / AVX-512 / scalar libm) and
between CPU and GPU. Neither is ``torch.sqrt`` on CPU: measured 2026-11,
torch 2.13.0 (every ISA setting) is off by one ulp for ~20% of float32
inputs, torch 2.11.0 for ~0.7% (other inputs), while CUDA's is correctly
rounded — three different LayerNorm/AdamW results. :func:`sqrt` here is the
correctly rounded square root computed without any library square root.

These versions use only IEEE-754 float32 ``+ - * /``, exact operations
(round-to-integer of an already rounded value, comparisons, selects, ``abs``,
``copysign``, clamps) and exact integer bit manipulation of the float32
encoding — so every device computes the same bits (:func:`sqrt_reference`
also uses binary64 arithmetic whose final decisions are exact). Each function
documents its exact sequence; constants are float32 values (given as the
decimal of the float32 number, and its bit pattern where it matters).

Accuracy against float64 (measured over wide ranges; the tests check it):
sqrt correctly rounded (0.5 ulp), exp < 1 ulp, log < 1 ulp, tanh < 1.5 ulp;
far below the 1e-5 relative the engine needs.

Each public function has a ``*_reference`` twin written with torch
elementwise operations (any device) and, on CPU, runs a numba kernel (on
CUDA, a Triton kernel) that performs the same float32 operations in the same
order (saving the per-op overhead of ~25 small torch calls; for sqrt, the IEEE
instruction, which is correctly rounded and so equal to the reference). The tests check the two
bit for bit on millions of values, random bit patterns (NaN, ±inf, ±0,
subnormals) included.

``fl(a ∘ b)`` means one float32 operation rounded to nearest-even. All
formulas below are evaluated left to right exactly as bracketed.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "exp", "exp_reference", "f32", "gelu_tanh", "gelu_tanh_grad", "gelu_tanh_grad_reference",
    "gelu_tanh_reference", "log", "log_reference", "sqrt", "sqrt_f64", "sqrt_reference", "tanh", "tanh_reference",
]  # fmt: skip


def f32(x: float) -> float:
    """The float32 nearest to ``x`` (round to nearest even), as a Python float (exactly representable)."""
    return float(np.float32(x))


def _bits(h: int) -> float:
    return float(np.array([h], dtype=np.uint32).view(np.float32)[0])


# ---------------------------------------------------------------------------------------------
# sqrt (correctly rounded; Newton in binary64, then an exact rounding decision)
# ---------------------------------------------------------------------------------------------
SQRT_MAGIC = 0x1FF8000000000000  # (bits(a) >> 1) + SQRT_MAGIC: a first guess within 6% of sqrt(a), a > 0 normal
SQRT_NEWTON_STEPS = 4


def sqrt_reference(x: torch.Tensor) -> torch.Tensor:
    """float32 square root, correctly rounded (round to nearest even), with no library square root.

    This is the IEEE-754 ``sqrt`` — the unique correctly rounded result — so any implementation
    that is correctly rounded (the x86 ``sqrtss`` instruction the CPU kernel uses, CUDA's IEEE
    ``sqrtf``) agrees with it bit for bit. It exists because library ``torch.sqrt`` is not
    correctly rounded on every platform. Order::

        a  = float64(x) for finite x > 0, else 1.0             (exact)
        y0 = the binary64 with bit pattern (bits(a) >> 1) + 0x1FF8000000000000
        y  = fl64(0.5 * fl64(y + fl64(a / y)))   four times   (Newton; rel. error < 1e-15)
        r  = float32(y)                                        (round to nearest even)
        -- exact decision: r and its float32 neighbours have 24 significant bits, so the
        -- midpoints m = fl64(fl64(r + r') * 0.5) have 25 and m * m has at most 50: every
        -- binary64 operation below is exact, and a == m * m is impossible (no ties)
        u = next_up(r);    if a > m(r, u)**2:  r = u
        d = next_down(r);  if a < m(r, d)**2:  r = d
        result = r for finite x > 0;  x for x == ±0;  +inf for +inf;  NaN for x < 0 or NaN

    (The Newton steps only have to bring ``r`` within one float32 ulp; the result does not depend
    on how they round. next_up/next_down are ±1 on the int32 bit pattern; r is a positive normal
    float32 for every positive float32 x, subnormals included.)
    """
    if x.dtype != torch.float32:
        raise TypeError(f"exact sqrt computes in float32; got {x.dtype}")
    pos = (x > 0) & (x < float("inf"))
    a = torch.where(pos, x, torch.ones_like(x)).to(torch.float64)
    y = (torch.bitwise_right_shift(a.view(torch.int64), 1) + SQRT_MAGIC).view(torch.float64)
    for _ in range(SQRT_NEWTON_STEPS):
        y = (y + a / y) * 0.5
    r = y.to(torch.float32)
    rd = r.to(torch.float64)
    u = (r.view(torch.int32) + 1).view(torch.float32).to(torch.float64)
    m = (rd + u) * 0.5
    r = torch.where(a > m * m, u, rd)
    d = (r.to(torch.float32).view(torch.int32) - 1).view(torch.float32).to(torch.float64)
    m = (r + d) * 0.5
    r = torch.where(a < m * m, d, r).to(torch.float32)
    r = torch.where(pos, r, x)  # ±0 and +inf are their own roots
    return torch.where((x < 0) | torch.isnan(x), float("nan"), r)


def sqrt_f64(q: float) -> float:
    """Correctly rounded binary64 square root of a Python float, in exact integer arithmetic (no libm).

    ``q = M · 2^e`` (M a 53-bit integer, e made even); ``R = isqrt(M · 2^108)`` has at least 80 bits; when
    ``R² ≠ M · 2^108`` its lowest bit is set (a sticky bit far below the rounding position) and
    ``float(R)`` — Python's int → float conversion, correctly rounded to nearest even — scaled by
    ``2^((e - 108) / 2)`` (exact) is the result. ±0 → itself, +inf → +inf, q < 0 or NaN → NaN.
    """
    q = float(q)
    if q != q or q < 0.0:
        return float("nan")
    if q == 0.0 or q == float("inf"):
        return q
    f, E = math.frexp(q)  # q = f · 2^E, 0.5 <= f < 1: f · 2^53 is an integer (subnormals too)
    M, e = int(f * 9007199254740992.0), E - 53
    if e & 1:
        M, e = M << 1, e - 1
    N = M << 108
    R = math.isqrt(N)
    if R * R != N:
        R |= 1
    return math.ldexp(float(R), (e - 108) // 2)


def sqrt(x: torch.Tensor) -> torch.Tensor:
    """Correctly rounded float32 square root (:func:`sqrt_reference`; the IEEE instruction on CPU (numba) and CUDA
    (Triton), torch elsewhere)."""
    if x.dtype != torch.float32:
        raise TypeError(f"exact sqrt computes in float32; got {x.dtype}")
    k = _K()
    if k.use_fast(x):
        return k.elementwise("sqrt", x)
    if k.use_triton(x):
        return k.triton_kernels().elementwise("sqrt", x)
    return sqrt_reference(x)


# ---------------------------------------------------------------------------------------------
# exp (Cody–Waite reduction + the Cephes expf polynomial)
# ---------------------------------------------------------------------------------------------
EXP_LO = -104.0  # exp(-104) < 2^-150: rounds to +0
EXP_HI = 89.0  # exp(89) > FLT_MAX: rounds to +inf
LOG2E = f32(1.4426950408889634)  # 0x3fb8aa3b
LN2_C1 = 0.693359375  # 355/512: n*C1 is exact for |n| <= 2^15
LN2_C2 = f32(-2.12194440e-4)
EXP_P = tuple(
    f32(c)
    for c in (
        1.9875691500e-4,
        1.3981999507e-3,
        8.3334519073e-3,
        4.1665795894e-2,
        1.6666665459e-1,
        5.0000001201e-1,
    )
)


def _pow2i(n: torch.Tensor) -> torch.Tensor:
    """2**n as float32 for integer tensors -126 <= n <= 127: the bit pattern (n + 127) << 23."""
    return torch.bitwise_left_shift(n + 127, 23).view(torch.float32)


def exp_reference(x: torch.Tensor) -> torch.Tensor:
    """float32 e**x (torch elementwise reference; :func:`exp` is the dispatching entry point).

    Order::

        xc = clamp(x, -104, 89)                     (NaN stays NaN)
        n  = round_half_even(fl(xc * LOG2E))        (an integer in [-150, 128])
        r  = fl(fl(xc - fl(n * C1)) - fl(n * C2))   (C1 = 0.693359375, C2 = -2.12194440e-4)
        z  = fl(r * r)
        p  = P0;  p = fl(fl(p * r) + Pi) for i = 1..5   (P0..P5 = EXP_P)
        y  = fl(fl(fl(p * z) + r) + 1)
        n1 = n >> 1 (floor(n/2)), n2 = n - n1      (integers in [-75, 64])
        result = fl(fl(y * 2**n1) * 2**n2)           (2**m built from its bit pattern)

    Overflow to +inf and underflow to +0 / subnormals happen in the last
    multiplication, by IEEE rules.
    """
    if x.dtype != torch.float32:
        raise TypeError(f"exact exp computes in float32; got {x.dtype}")
    xc = torch.clamp(x, EXP_LO, EXP_HI)
    n = torch.round(xc * LOG2E)
    r = (xc - n * LN2_C1) - n * LN2_C2
    z = r * r
    p = torch.full_like(r, EXP_P[0])
    for c in EXP_P[1:]:
        p = p * r + c
    y = (p * z + r) + 1.0
    ni = torch.nan_to_num(n, nan=0.0).to(torch.int32)
    n1 = torch.bitwise_right_shift(ni, 1)
    n2 = ni - n1
    return (y * _pow2i(n1)) * _pow2i(n2)


def exp(x: torch.Tensor) -> torch.Tensor:
    """float32 e**x in the order of :func:`exp_reference` (numba on CPU, Triton on CUDA, else torch)."""
    if x.dtype != torch.float32:
        raise TypeError(f"exact exp computes in float32; got {x.dtype}")
    k = _K()
    if k.use_fast(x):
        return k.elementwise("exp", x)
    if k.use_triton(x):
        return k.triton_kernels().elementwise("exp", x)
    return exp_reference(x)


def _K():
    from . import kernels

    return kernels


# ---------------------------------------------------------------------------------------------
# log (the fdlibm/FreeBSD logf reduction and polynomial)
# ---------------------------------------------------------------------------------------------
LN2_HI = _bits(0x3F317180)  # 6.9313812256e-01
LN2_LO = _bits(0x3717F7D1)  # 9.0580006145e-06
TWO25 = 33554432.0
LG = tuple(
    f32(c)
    for c in (
        6.6666668653e-01,  # Lg1 0x3f2aaaab
        4.0000000596e-01,  # Lg2 0x3ecccccd
        2.8571429849e-01,  # Lg3 0x3e924925
        2.2222198546e-01,  # Lg4 0x3e638e29
        1.8183572590e-01,  # Lg5 0x3e3a3325
        1.5313838422e-01,  # Lg6 0x3e1cd04f
        1.4798198640e-01,  # Lg7 0x3e178897
    )
)


def log(x: torch.Tensor) -> torch.Tensor:
    """float32 natural logarithm in the order of :func:`log_reference` (numba on CPU, Triton on CUDA, else torch)."""
    if x.dtype != torch.float32:
        raise TypeError(f"exact log computes in float32; got {x.dtype}")
    k = _K()
    if k.use_fast(x):
        return k.elementwise("log", x)
    if k.use_triton(x):
        return k.triton_kernels().elementwise("log", x)
    return log_reference(x)


def log_reference(x: torch.Tensor) -> torch.Tensor:
    """float32 natural logarithm (torch elementwise reference).

    Order (integer operations on the int32 bit pattern ``ix`` of x are exact)::

        sub = x < 2**-126;  x' = sub ? fl(x * 2**25) : x;  k0 = sub ? -25 : 0
        ix = bits(x');  k = k0 + (ix >> 23) - 127;  ix = ix & 0x007fffff
        i  = (ix + 0x4afb20) & 0x800000              (set when the mantissa >= sqrt(2))
        m  = float(ix | (i ^ 0x3f800000));  k = k + (i >> 23)    (m in [sqrt(2)/2, sqrt(2)))
        f  = fl(m - 1);  dk = float(k)
        s  = fl(f / fl(2 + f));  z = fl(s * s);  w = fl(z * z)
        t1 = fl(w * fl(Lg2 + fl(w * fl(Lg4 + fl(w * Lg6)))))
        t2 = fl(z * fl(Lg1 + fl(w * fl(Lg3 + fl(w * fl(Lg5 + fl(w * Lg7)))))))
        R  = fl(t2 + t1)
        if ((ix - 0x30a3d0) | (0x35c288 - ix)) > 0:             (|f| not small)
            hfsq = fl(fl(0.5 * f) * f)
            y = fl(fl(dk * LN2_HI) - fl(fl(hfsq - fl(fl(s * fl(hfsq + R)) + fl(dk * LN2_LO))) - f))
        else:
            y = fl(fl(dk * LN2_HI) - fl(fl(fl(s * fl(f - R)) - fl(dk * LN2_LO)) - f))
        x == 0 → -inf;  x < 0 or NaN → NaN;  x == +inf → +inf
    """
    if x.dtype != torch.float32:
        raise TypeError(f"exact log computes in float32; got {x.dtype}")
    sub = x < 1.1754943508222875e-38
    xs = torch.where(sub, x * TWO25, x)
    k0 = torch.where(sub, -25, 0).to(torch.int32)
    ix = xs.view(torch.int32)
    k = k0 + torch.bitwise_right_shift(ix, 23) - 127
    ix = torch.bitwise_and(ix, 0x007FFFFF)
    i = torch.bitwise_and(ix + (0x95F64 << 3), 0x800000)
    m = torch.bitwise_or(ix, torch.bitwise_xor(i, 0x3F800000)).view(torch.float32)
    k = k + torch.bitwise_right_shift(i, 23)
    f = m - 1.0
    dk = k.to(torch.float32)
    s = f / (f + 2.0)
    z = s * s
    w = z * z
    Lg1, Lg2, Lg3, Lg4, Lg5, Lg6, Lg7 = LG
    t1 = w * (w * (w * Lg6 + Lg4) + Lg2)
    t2 = z * (w * (w * (w * Lg7 + Lg5) + Lg3) + Lg1)
    R = t2 + t1
    big = torch.bitwise_or(ix - (0x6147A << 3), (0x6B851 << 3) - ix) > 0
    hfsq = (f * 0.5) * f
    y_big = dk * LN2_HI - ((hfsq - (s * (hfsq + R) + dk * LN2_LO)) - f)
    y_small = dk * LN2_HI - ((s * (f - R) - dk * LN2_LO) - f)
    y = torch.where(big, y_big, y_small)
    y = torch.where(x == 0, float("-inf"), y)
    y = torch.where(x == float("inf"), float("inf"), y)
    y = torch.where((x < 0) | torch.isnan(x), float("nan"), y)
    return y


# ---------------------------------------------------------------------------------------------
# tanh
# ---------------------------------------------------------------------------------------------
TANH_SMALL = f32(0.55)
TANH_CLAMP = 10.0  # tanh(10) rounds to 1 in float32
# Taylor coefficients of tanh(x)/x - 1 in z = x^2 (z^1 .. z^9), float32
TANH_T = tuple(
    f32(c)
    for c in (
        -1.0 / 3.0,
        2.0 / 15.0,
        -17.0 / 315.0,
        62.0 / 2835.0,
        -1382.0 / 155925.0,
        21844.0 / 6081075.0,
        -929569.0 / 638512875.0,
        6404582.0 / 10854718875.0,
        -443861162.0 / 1856156927625.0,
    )
)


def tanh_reference(x: torch.Tensor) -> torch.Tensor:
    """float32 tanh (torch elementwise reference; :func:`tanh` dispatches).

    Order, with a = |x|::

        small (a < f32(0.55)):  z = fl(a * a);  q = T9;  q = fl(fl(q * z) + Ti) for i = 8..1
                           t = fl(a + fl(a * fl(z * q)))
        large:             ac = min(a, 10);  E = exp(fl(ac + ac))   (the exp above)
                           t = fl(1 - fl(2 / fl(E + 1)))
        result = copysign(small ? t_small : t_large, x)

    (T1..T9 = TANH_T: the Taylor coefficients -1/3, 2/15, -17/315, ... rounded to float32.)
    """
    if x.dtype != torch.float32:
        raise TypeError(f"exact tanh computes in float32; got {x.dtype}")
    a = torch.abs(x)
    z = a * a
    q = torch.full_like(z, TANH_T[-1])
    for c in reversed(TANH_T[:-1]):
        q = q * z + c
    t_small = a + a * (z * q)
    ac = torch.clamp(a, max=TANH_CLAMP)
    E = exp_reference(ac + ac)
    # (a tensor numerator: ``2.0 / tensor`` would run as reciprocal-then-multiply in torch)
    t_large = 1.0 - torch.full_like(E, 2.0) / (E + 1.0)
    t = torch.where(a < TANH_SMALL, t_small, t_large)
    return torch.copysign(t, x)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """float32 tanh in the order of :func:`tanh_reference` (numba on CPU, Triton on CUDA, else torch)."""
    if x.dtype != torch.float32:
        raise TypeError(f"exact tanh computes in float32; got {x.dtype}")
    k = _K()
    if k.use_fast(x):
        return k.elementwise("tanh", x)
    if k.use_triton(x):
        return k.triton_kernels().elementwise("tanh", x)
    return tanh_reference(x)


# ---------------------------------------------------------------------------------------------
# GELU, tanh approximation (the formula of torch.nn.functional.gelu(approximate="tanh"))
# ---------------------------------------------------------------------------------------------
GELU_BETA = f32(0.7978845608028654)  # sqrt(2/pi)
GELU_KAPPA = f32(0.044715)
GELU_3KAPPA = f32(3 * 0.044715)


def gelu_tanh_reference(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """GELU (tanh approximation); returns ``(y, t)`` where ``t`` is saved for the gradient (reference).

    Order::

        x2 = fl(x * x);  x3 = fl(x2 * x)
        u  = fl(BETA * fl(x + fl(KAPPA * x3)))          (BETA = f32(sqrt(2/pi)), KAPPA = f32(0.044715))
        t  = tanh(u)                                    (the tanh above)
        y  = fl(fl(0.5 * x) * fl(1 + t))
    """
    x2 = x * x
    x3 = x2 * x
    u = (x + x3 * GELU_KAPPA) * GELU_BETA
    t = tanh_reference(u)
    y = (x * 0.5) * (t + 1.0)
    return y, t


def gelu_tanh_grad_reference(x: torch.Tensor, t: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """dL/dx of :func:`gelu_tanh` given ``t`` from the forward (reference).

    Order (the derivative PyTorch's own gelu backward uses)::

        x2 = fl(x * x)
        ld = fl(0.5 * fl(1 + t))                           (left derivative)
        td = fl(1 - fl(t * t))                             (tanh derivative)
        iv = fl(BETA * fl(1 + fl(K3 * x2)))                (K3 = f32(3 * 0.044715))
        rd = fl(fl(fl(0.5 * x) * td) * iv)
        dx = fl(dy * fl(ld + rd))
    """
    x2 = x * x
    ld = (t + 1.0) * 0.5
    td = 1.0 - t * t
    iv = (x2 * GELU_3KAPPA + 1.0) * GELU_BETA
    rd = ((x * 0.5) * td) * iv
    return dy * (ld + rd)


def gelu_tanh(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, t)`` of :func:`gelu_tanh_reference` (numba on CPU, Triton on CUDA, else torch)."""
    if x.dtype != torch.float32:
        raise TypeError(f"exact gelu computes in float32; got {x.dtype}")
    k = _K()
    if k.use_fast(x):
        return k.elementwise("gelu", x)
    if k.use_triton(x):
        return k.triton_kernels().elementwise("gelu", x)
    return gelu_tanh_reference(x)


def gelu_tanh_grad(x: torch.Tensor, t: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """dL/dx of :func:`gelu_tanh_grad_reference` (numba on CPU, Triton on CUDA, else torch)."""
    k = _K()
    if k.use_fast(x, t, dy):
        return k.elementwise("gelu_grad", x, t, dy)
    if k.use_triton(x, t, dy):
        return k.triton_kernels().elementwise("gelu_grad", x, t, dy)
    return gelu_tanh_grad_reference(x, t, dy)
