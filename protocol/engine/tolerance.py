"""Tolerance-mode acceptance: is a replayed state close enough to the claimed one? (DESIGN §4, Proof-of-Learning)

In tolerance mode training runs on native torch, whose results depend on thread count and vector ISA, so a
verifier's replay of a segment is compared with the solver's leaf by distance instead of by root. The
distances, over all model parameters (the ``param/…`` tensors) flattened in ascending name order and computed
in binary64:

* ``l2``     = ‖a − b‖₂ / ‖b‖₂ (relative; ``b`` is the claimed state; ‖a − b‖₂ when ‖b‖₂ = 0)
* ``linf``   = max |a − b| (absolute)
* ``cosine`` = a·b / (‖a‖₂‖b‖₂) (1.0 when both are zero)

A replay is accepted when ``l2 <= thresholds.l2``, ``linf <= thresholds.linf`` and
``cosine >= thresholds.cosine`` (defaults from :class:`protocol.spec.ToleranceMode`), and the two states have
the same step and the same tensor names, dtypes and shapes. NaN anywhere fails.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from protocol.spec import ToleranceMode
from protocol.state import TrainingState

__all__ = ["compare_states", "distances"]


def _params(state: TrainingState) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.tensors.items() if k.startswith("param/")}


def distances(replayed: TrainingState, claimed: TrainingState) -> dict[str, float]:
    """``{"l2", "linf", "cosine"}`` between the parameters of two states of the same model."""
    a, b = _params(replayed), _params(claimed)
    if sorted(a) != sorted(b):
        raise ValueError("the states hold different parameters")
    diff2 = a2 = b2 = dot = 0.0
    linf = 0.0
    for name in sorted(a):
        x = a[name].detach().to("cpu", torch.float64).reshape(-1)
        y = b[name].detach().to("cpu", torch.float64).reshape(-1)
        if x.shape != y.shape:
            raise ValueError(f"parameter {name} has shape {tuple(a[name].shape)} vs {tuple(b[name].shape)}")
        d = x - y
        diff2 += float(d @ d)
        a2 += float(x @ x)
        b2 += float(y @ y)
        dot += float(x @ y)
        if d.numel():
            linf = max(linf, float(d.abs().max()))
    l2 = math.sqrt(diff2) / math.sqrt(b2) if b2 > 0 else math.sqrt(diff2)
    if a2 == 0 and b2 == 0:
        cosine = 1.0
    elif a2 == 0 or b2 == 0:
        cosine = 0.0
    else:
        cosine = dot / (math.sqrt(a2) * math.sqrt(b2))
    return {"l2": l2, "linf": linf, "cosine": cosine}


def _thresholds(t: ToleranceMode | dict[str, Any] | None) -> ToleranceMode:
    if t is None:
        return ToleranceMode()
    if isinstance(t, ToleranceMode):
        return t
    return ToleranceMode(**{k: v for k, v in t.items() if k != "kind"})


def compare_states(
    replayed: TrainingState, claimed: TrainingState, thresholds: ToleranceMode | dict[str, Any] | None = None
) -> tuple[bool, dict[str, float]]:
    """``(accepted, {"l2", "linf", "cosine"})`` for a replayed state against the claimed one (module docstring).

    States that differ in step or in tensor layout are rejected with infinite distances.
    """
    th = _thresholds(thresholds)
    layout = {k: (v.dtype, tuple(v.shape)) for k, v in replayed.tensors.items()}
    claimed_layout = {k: (v.dtype, tuple(v.shape)) for k, v in claimed.tensors.items()}
    if replayed.step != claimed.step or layout != claimed_layout:
        return False, {"l2": math.inf, "linf": math.inf, "cosine": -1.0}
    d = distances(replayed, claimed)
    ok = d["l2"] <= th.l2 and d["linf"] <= th.linf and d["cosine"] >= th.cosine
    return bool(ok), d
