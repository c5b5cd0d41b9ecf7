"""Given initial weights: ``.safetensors`` files and PyTorch ``state_dict`` s as canonical *weights states*.

A weights state is a :class:`protocol.state.TrainingState` with one float32 tensor ``param/<name>`` per
parameter, step 0 and ``meta = {"kind": "weights"}`` — serialised, validated (:func:`protocol.state.deserialize`
→ :func:`protocol.state.parse_manifest`, the one check of state bytes) and hashed like every checkpoint, so its
state root addresses it in the blob store (kind ``state``) and a spec's ``init.state_root`` names it. The job's
initial state is built from it by :meth:`protocol.engine.runner.Trainer.init`.

Conversion (:func:`import_weights`): every tensor of the file, named as in the file (after removing
``strip_prefix``; names matching an ``exclude`` pattern are dropped), becomes float32: float16 and bfloat16
exactly, float64 rounded to nearest even (IEEE, the same everywhere); integer or boolean tensors (buffers such
as BatchNorm's counters) are refused unless excluded. A ``.pt``/``.pth``/``.bin`` file is read with
``torch.load(weights_only=True)`` (no pickled code runs); a checkpoint dict that holds the ``state_dict``
under ``"state_dict"`` or ``"model"`` is unwrapped. A ``.vts`` file is a canonical state already: a weights
state, or a veritrain checkpoint (``veritrain job fetch`` writes ``final_state.vts``), whose ``param/``
tensors are taken.
"""

from __future__ import annotations

import os
from fnmatch import fnmatchcase
from pathlib import Path

import torch

from protocol.errors import VeritrainError
from protocol.state import StateFormatError, TrainingState, deserialize

__all__ = ["WEIGHTS_KIND", "WeightsImportError", "import_weights", "read_tensors", "weights_state"]

#: ``meta.kind`` of a weights state.
WEIGHTS_KIND = "weights"
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class WeightsImportError(VeritrainError, ValueError):
    """A weights file that cannot be read or converted (format, dtype, names)."""


def weights_state(tensors: dict[str, torch.Tensor]) -> TrainingState:
    """The canonical weights state of ``{parameter name: tensor}`` (each converted to contiguous float32)."""
    out = {}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise WeightsImportError(f"{name!r} is a {type(t).__name__}, not a tensor")
        if t.dtype not in _FLOATS:
            raise WeightsImportError(
                f"{name!r} is a {t.dtype} tensor, not a floating-point parameter (drop it with --exclude)"
            )
        out[f"param/{name}"] = t.detach().to("cpu", torch.float32).contiguous()
    if not out:
        raise WeightsImportError("no tensors to import")
    return TrainingState(tensors=out, step=0, meta={"kind": WEIGHTS_KIND})


def read_tensors(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The named tensors of a ``.safetensors``, ``.pt``/``.pth``/``.bin`` or ``.vts`` file (see the module doc)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsImportError(f"{p} does not exist")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:  # pragma: no cover - a dependency
            raise WeightsImportError(f"reading .safetensors needs the safetensors package ({exc})") from None
        try:
            return dict(load_file(str(p), device="cpu"))
        except Exception as exc:  # safetensors raises SafetensorError / OSError for bad files
            raise WeightsImportError(f"{p} is not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    if suffix == ".vts":
        try:
            st = deserialize(p.read_bytes())
        except StateFormatError as exc:
            raise WeightsImportError(f"{p}: {exc}") from None
        if (st.meta or {}).get("kind") != WEIGHTS_KIND and "engine" not in (st.meta or {}):
            raise WeightsImportError(f"{p} is a canonical state but neither a weights state nor a checkpoint")
        return {k.removeprefix("param/"): t for k, t in st.tensors.items() if k.startswith("param/")}
    if suffix in (".pt", ".pth", ".bin"):
        try:
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises UnpicklingError / RuntimeError / OSError
            raise WeightsImportError(
                f"{p} is not a loadable PyTorch state_dict ({type(exc).__name__}: {exc})"
            ) from None
        if isinstance(obj, dict):
            for key in ("state_dict", "model"):
                if isinstance(obj.get(key), dict) and not isinstance(obj.get(key), torch.Tensor):
                    obj = obj[key]
                    break
        if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
            raise WeightsImportError(f"{p} does not hold a state_dict (a dict of named tensors)")
        return dict(obj)
    raise WeightsImportError(f"{p}: unknown weights format {suffix!r} (use .safetensors, .pt/.pth/.bin or .vts)")


def import_weights(
    path: str | os.PathLike[str], *, strip_prefix: str = "", exclude: list[str] | tuple[str, ...] = ()
) -> TrainingState:
    """The weights state of the file at ``path`` (see the module docstring); raises WeightsImportError."""
    tensors = {}
    for name, t in read_tensors(path).items():
        if strip_prefix and name.startswith(strip_prefix):
            name = name[len(strip_prefix) :]
        if any(fnmatchcase(name, pat) for pat in exclude):
            continue
        if name in tensors:
            raise WeightsImportError(f"two tensors are named {name!r} after removing the prefix {strip_prefix!r}")
        tensors[name] = t
    return weights_state(tensors)
