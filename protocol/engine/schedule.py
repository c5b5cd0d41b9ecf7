"""The learning rate of every optimizer step, the same bits on every machine (spec field ``schedule``).

Rule (the protocol; another implementation reproduces it from this text). For optimizer step ``s`` (0-based:
the step that turns state ``s`` into state ``s + 1``), with ``lr`` the optimizer's binary64 learning rate,
``W = warmup_steps``, ``D = decay_steps`` (default ``total_steps``), ``f = final_lr_fraction`` (its binary64
value, read as an exact rational):

* ``s < W``: ``m = (s + 1) / W``;
* else ``t = min(1, (s - W) / (D - W))`` and ``m = 1`` (constant), ``1 - (1 - f)·t`` (linear) or
  ``f + (1 - f)·(1 + cos(π·t)) / 2`` (cosine);

and the step's learning rate is ``lr_s`` = the binary64 nearest (ties to even) to the *exact* real number
``lr · m``. The optimizers then use ``lr_s`` exactly as they use a constant ``lr`` (:mod:`protocol.repro.optim`:
binary64 hyper-parameter arithmetic, rounded to float32 where it meets the tensors). A constant schedule gives
``lr_s = lr`` bit for bit, so specs without a schedule train as before.

How it is computed without a libm ``cos`` (whose rounding differs between C libraries): everything is exact
rational arithmetic (:class:`fractions.Fraction`, Python integers). Warm-up, constant and linear values are
rationals, rounded once by ``float(Fraction)`` (integer true division, correctly rounded in CPython). For the
cosine, rational bounds ``lo <= lr·m <= hi`` are built from alternating series whose partial sums bracket
their limits — π from Machin's formula ``16·atan(1/5) - 4·atan(1/239)``, ``cos(x)`` from its Taylor series for
``0 <= x <= π/2`` (reduced by ``cos(π·t) = -cos(π·(1 - t))``), each bound rounded outward to a multiple of
``2^-P``. When ``float(lo) == float(hi)`` that float is ``lr_s`` (rounding is monotonic); otherwise ``P`` doubles.
This ends: by Niven's theorem ``cos(π·t)`` is irrational for rational ``t`` except where it is 0, ±1/2 or ±1
(``t`` ∈ {0, 1/3, 1/2, 2/3, 1}, computed exactly), so ``lr·m`` is never a rounding boundary itself.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

from protocol.spec import JobSpec, ScheduleConfig

__all__ = ["ScheduleError", "cos_pi_bounds", "lr_at", "multiplier"]

_NIVEN = {
    Fraction(0): Fraction(1),
    Fraction(1, 3): Fraction(1, 2),
    Fraction(1, 2): Fraction(0),
    Fraction(2, 3): Fraction(-1, 2),
    Fraction(1): Fraction(-1),
}
_MAX_BITS = 1 << 14


class ScheduleError(ArithmeticError):
    """The exact learning rate could not be decided (cannot happen for valid specs; see the module doc)."""


def _down(x: Fraction, p: int) -> Fraction:
    return Fraction((x.numerator << p) // x.denominator, 1 << p)


def _up(x: Fraction, p: int) -> Fraction:
    return Fraction(-((-x.numerator << p) // x.denominator), 1 << p)


def _atan_inv_bounds(n: int, p: int) -> tuple[Fraction, Fraction]:
    """``lo <= atan(1/n) <= hi`` (n >= 2) from the alternating series ``sum (-1)^k / ((2k+1) n^(2k+1))``."""
    total = Fraction(0)
    k = 0
    eps = Fraction(1, 1 << (p + 4))
    while True:
        term = Fraction(1, (2 * k + 1) * n ** (2 * k + 1))
        nxt = Fraction(1, (2 * k + 3) * n ** (2 * k + 3))
        total += term if k % 2 == 0 else -term
        if nxt < eps:
            # the partial sum and the partial sum plus the next term bracket the limit
            other = total - nxt if k % 2 == 0 else total + nxt
            lo, hi = min(total, other), max(total, other)
            return _down(lo, p + 2), _up(hi, p + 2)
        k += 1


@lru_cache(maxsize=16)
def _pi_bounds(p: int) -> tuple[Fraction, Fraction]:
    a_lo, a_hi = _atan_inv_bounds(5, p + 8)
    b_lo, b_hi = _atan_inv_bounds(239, p + 8)
    return _down(16 * a_lo - 4 * b_hi, p), _up(16 * a_hi - 4 * b_lo, p)


def cos_pi_bounds(t: Fraction, p: int) -> tuple[Fraction, Fraction]:
    """Rational ``lo <= cos(π·t) <= hi`` for ``0 <= t <= 1``, ``hi - lo`` about ``2^-p`` (exact for Niven's
    points)."""
    if not 0 <= t <= 1:
        raise ValueError("cos_pi_bounds needs 0 <= t <= 1")
    if t in _NIVEN:
        v = _NIVEN[t]
        return v, v
    sign = 1
    if t > Fraction(1, 2):
        t, sign = 1 - t, -1
    pi_lo, pi_hi = _pi_bounds(p + 8)
    x_lo, x_hi = pi_lo * t, pi_hi * t  # t > 0
    # cos decreases on [0, π/2]: cos(x_hi) <= cos(π t) <= cos(x_lo)
    lo, _ = _cos_bounds_exact(x_hi, p + 4)
    _, hi = _cos_bounds_exact(x_lo, p + 4)
    if sign < 0:
        lo, hi = -hi, -lo
    return lo, hi


def _cos_bounds_exact(x: Fraction, p: int) -> tuple[Fraction, Fraction]:
    """``lo <= cos(x) <= hi`` for ``0 <= x <= 2``, rounded outward to ``2^-p``.

    ``x`` is first rounded down to ``X / 2^q`` (``q = p + 16``; ``|cos'| <= 1``, so that moves ``cos(x)`` by less
    than ``2^-q``, added to both bounds as slack). The Taylor partial sums of ``cos(X / 2^q)`` are then exact
    integers over the common denominator ``2^(2qK)·(2K)!``; the terms decrease from k = 1 on (``x^2 < 12``), so
    the partial sum ``S_K`` and ``S_K`` plus the next term bracket the limit.
    """
    q = p + 16
    X = (x.numerator << q) // x.denominator
    X2, Q2 = X * X, 1 << (2 * q)
    # smallest K >= 1 whose next term x^(2K+2)/(2K+2)! is below 2^-(p+4):  X2^(K+1)·2^(p+4) < Q2^(K+1)·(2K+2)!
    K, xp, qp, fact = 1, X2 * X2, Q2 * Q2, 24
    while (xp << (p + 4)) >= qp * fact:
        K += 1
        xp, qp, fact = xp * X2, qp * Q2, fact * (2 * K + 1) * (2 * K + 2)
    # S_K = sum_{k<=K} (-1)^k X2^k / (Q2^k (2k)!) over the denominator Q2^K (2K)!
    num, xk, qk, fk = 0, 1, Q2**K, 1  # xk = X2^k, qk = Q2^(K-k), fk = (2K)!/(2k)!
    facts = [1]
    for j in range(1, 2 * K + 1):
        facts.append(facts[-1] * j)
    den = Q2**K * facts[2 * K]
    for k in range(K + 1):
        fk = facts[2 * K] // facts[2 * k]
        term = xk * qk * fk
        num += -term if k % 2 else term
        xk *= X2
        qk //= Q2 if k < K else 1
    s_k = Fraction(num, den)
    nxt = Fraction(xp, qp * fact)  # x^(2K+2)/(2K+2)!, with sign (-1)^(K+1)
    other = s_k - nxt if K % 2 == 0 else s_k + nxt
    slack = Fraction(1, 1 << q)
    return _down(min(s_k, other) - slack, p), _up(max(s_k, other) + slack, p)


def multiplier(cfg: ScheduleConfig, total_steps: int, s: int, p: int = 128) -> tuple[Fraction, Fraction]:
    """Rational bounds ``lo <= m(s) <= hi`` of the schedule's multiplier (equal unless it is a cosine value)."""
    w = cfg.warmup_steps
    if s < w:
        v = Fraction(s + 1, w)
        return v, v
    if cfg.decay == "constant":
        return Fraction(1), Fraction(1)
    d = cfg.decay_steps if cfg.decay_steps is not None else total_steps
    t = min(Fraction(1), Fraction(s - w, d - w)) if d > w else Fraction(1)
    f = Fraction(cfg.final_lr_fraction)
    if cfg.decay == "linear":
        v = 1 - (1 - f) * t
        return v, v
    c_lo, c_hi = cos_pi_bounds(t, p)
    return f + (1 - f) * (1 + c_lo) / 2, f + (1 - f) * (1 + c_hi) / 2


@lru_cache(maxsize=65536)
def _lr_at(lr: float, cfg: ScheduleConfig, total_steps: int, s: int) -> float:
    if cfg == ScheduleConfig() or (cfg.warmup_steps <= s and cfg.decay == "constant"):
        return lr
    rate = Fraction(lr)
    p = 128
    while p <= _MAX_BITS:
        lo, hi = multiplier(cfg, total_steps, s, p)
        a, b = float(rate * lo), float(rate * hi)
        if a == b:
            return a
        p *= 2
    raise ScheduleError(f"could not round the learning rate of step {s} (schedule {cfg})")


def lr_at(spec: JobSpec, s: int) -> float:
    """The learning rate (binary64) of optimizer step ``s`` of ``spec`` (see the module docstring)."""
    if not 0 <= s < spec.total_steps:
        raise ValueError(f"step {s} is outside the job's 0..{spec.total_steps - 1}")
    return _lr_at(float(spec.optimizer.lr), spec.schedule, spec.total_steps, s)
