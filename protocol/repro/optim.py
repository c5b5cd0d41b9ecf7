"""Exact-mode SGD (momentum) and AdamW.

Both subclass the torch optimizers, keep the same ``state`` layout (so
checkpoints look the same in both modes) and fall back to the torch ``step``
in native mode. In exact mode every tensor operation is one correctly rounded
float32 ``+ - * /`` or correctly rounded ``sqrt`` (:func:`protocol.repro.fmath.sqrt`; ``torch.sqrt``
is not correctly rounded on every CPU), in the order documented below; PyTorch's own
steps use ``lerp``/``addcmul``/``addcdiv``/``add(alpha=…)``, which may be
evaluated with fused multiply-adds on some ISAs and not others.

Hyper-parameter arithmetic (bias corrections, products of learning rate and
decay) is done on Python floats — IEEE-754 binary64, the same on every
machine — and only then rounded to float32 (``f32``). Powers ``beta**t`` are
never taken with ``pow`` (libm's ``pow`` is not required to be correctly
rounded): they are the sequential products ``p_0 = 1.0, p_t = fl64(p_{t-1} · beta)``.
"""

from __future__ import annotations

import threading

import torch

from . import fmath
from ._config import get_mode
from .fmath import f32

__all__ = ["ExactAdamW", "ExactSGD", "beta_power"]

_pow_cache: dict[float, tuple[int, float]] = {}
_pow_lock = threading.Lock()


def beta_power(beta: float, t: int) -> float:
    """``beta**t`` as t sequential binary64 multiplications starting from 1.0 (memoised per beta)."""
    if t < 0:
        raise ValueError("t must be >= 0")
    with _pow_lock:
        t0, p = _pow_cache.get(beta, (0, 1.0))
        if t0 > t:
            t0, p = 0, 1.0
        for _ in range(t - t0):
            p = p * beta
        _pow_cache[beta] = (t, p)
        return p


def _dev_scalar(c: float, like: torch.Tensor) -> torch.Tensor:
    # a divisor on the tensor's own device keeps division a true IEEE division on CUDA
    return torch.tensor(c, dtype=torch.float32, device=like.device)


class ExactSGD(torch.optim.SGD):
    """SGD with momentum / dampening / Nesterov / weight decay.

    Per parameter p with gradient g (float32; ``lr, wd, mu, damp`` rounded to float32)::

        d = g                                  if wd == 0
        d = fl(g + fl(p · wd))                 otherwise
        if mu != 0:
            buf = copy(d)                      on the first step
            buf = fl(fl(buf · mu) + fl(d · f32(1 - damp)))   afterwards
            d = fl(d + fl(buf · mu))           if nesterov, else d = buf
        p = fl(p - fl(d · lr))
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            foreach=False,
        )

    @torch.no_grad()
    def step(self, closure=None):
        if get_mode() != "exact":
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group.get("maximize"):
                raise NotImplementedError("ExactSGD: maximize is not supported")
            lr = f32(group["lr"])
            wd = group["weight_decay"]
            mu = group["momentum"]
            omd = f32(1.0 - group["dampening"])
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if any(p.dtype != torch.float32 for p in params):
                raise TypeError("exact mode computes in float32")
            grads = [p.grad for p in params]
            # (torch._foreach_* ops are the per-tensor elementwise ops, looped in C++)
            d = grads if wd == 0 else torch._foreach_add(grads, torch._foreach_mul(params, f32(wd)))
            if mu != 0:
                bufs, fresh = [], []
                for p, dp in zip(params, d, strict=True):
                    st = self.state[p]
                    if st.get("momentum_buffer") is None:
                        st["momentum_buffer"] = dp.clone()
                        fresh.append(True)
                    else:
                        fresh.append(False)
                    bufs.append(st["momentum_buffer"])
                old = [b for b, f in zip(bufs, fresh, strict=True) if not f]
                if old:
                    dold = [dp for dp, f in zip(d, fresh, strict=True) if not f]
                    torch._foreach_mul_(old, f32(mu))
                    torch._foreach_add_(old, torch._foreach_mul(dold, omd))
                d = torch._foreach_add(d, torch._foreach_mul(bufs, f32(mu))) if group["nesterov"] else bufs
            torch._foreach_sub_(params, torch._foreach_mul(d, lr))
        return loss


class ExactAdamW(torch.optim.AdamW):
    """AdamW (decoupled weight decay), no amsgrad.

    Per step (t = the parameter's step count after incrementing, an exact float32 integer)::

        binary64:  P1 = beta_power(b1, t);  P2 = beta_power(b2, t)
                   step = lr / (1 - P1);  c2 = sqrt(1 - P2)   (fmath.sqrt_f64: correctly rounded)
                   decay = 1 - lr · wd
        float32 (each scalar f32-rounded):
            p   = fl(p · decay)                                 (only if wd != 0)
            m   = fl(fl(m · b1) + fl(g · f32(1 - b1)))
            v   = fl(fl(v · b2) + fl(fl(g · g) · f32(1 - b2)))
            den = fl(fl(sqrt(v) / c2) + eps)                   (sqrt = fmath.sqrt, correctly rounded)
            p   = fl(p - fl(fl(m / den) · step))
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=False, foreach=False)

    @torch.no_grad()
    def step(self, closure=None):
        if get_mode() != "exact":
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group.get("amsgrad") or group.get("maximize"):
                raise NotImplementedError("ExactAdamW: amsgrad and maximize are not supported")
            lr = float(group["lr"])
            b1, b2 = (float(b) for b in group["betas"])
            eps = f32(group["eps"])
            wd = float(group["weight_decay"])
            decay = f32(1.0 - lr * wd)
            omb1, omb2 = f32(1.0 - b1), f32(1.0 - b2)
            by_t: dict[int, list[torch.Tensor]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.dtype != torch.float32:
                    raise TypeError("exact mode computes in float32")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.tensor(0.0, dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                by_t.setdefault(int(state["step"].item()), []).append(p)
            for t, params in by_t.items():
                grads = [p.grad for p in params]
                ms = [self.state[p]["exp_avg"] for p in params]
                vs = [self.state[p]["exp_avg_sq"] for p in params]
                step_size = f32(lr / (1.0 - beta_power(b1, t)))
                c2 = f32(fmath.sqrt_f64(1.0 - beta_power(b2, t)))
                # (torch._foreach_* ops are the per-tensor elementwise ops, looped in C++)
                if wd != 0:
                    torch._foreach_mul_(params, decay)
                torch._foreach_mul_(ms, f32(b1))
                torch._foreach_add_(ms, torch._foreach_mul(grads, omb1))
                gg = torch._foreach_mul(grads, grads)
                torch._foreach_mul_(gg, omb2)
                torch._foreach_mul_(vs, f32(b2))
                torch._foreach_add_(vs, gg)
                den = [fmath.sqrt(v) for v in vs]  # torch.sqrt is not correctly rounded everywhere
                c2t = _dev_scalar(c2, params[0])
                torch._foreach_div_(den, [c2t] * len(den))
                torch._foreach_add_(den, eps)
                upd = torch._foreach_div(ms, den)
                torch._foreach_mul_(upd, step_size)
                torch._foreach_sub_(params, upd)
        return loss
