"""Drop-in ``torch.nn`` modules that run exact-mode kernels (or native torch in native mode).

Each ``ExactX`` subclasses ``torch.nn.X`` without adding state, so parameters,
``state_dict`` keys and initialisation are those of the torch module, and
:func:`exactify` can convert an existing model in place. ``forward`` follows
the current mode (:func:`protocol.repro.set_mode` / :func:`protocol.repro.mode`).

Note: torch's default parameter initialisation draws from torch's CPU
generator; whether those draws are ISA-independent is the model builder's
concern (TOOLCHAIN.md: ``torch.randn`` is not; initialise from a counter-based
generator).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from . import functional as RF
from ._config import get_mode

__all__ = [
    "ExactConv2d",
    "ExactCrossEntropyLoss",
    "ExactEmbedding",
    "ExactGELU",
    "ExactLayerNorm",
    "ExactLinear",
    "ExactLogSoftmax",
    "ExactMaxPool2d",
    "ExactReLU",
    "ExactSoftmax",
    "ExactTanh",
    "LoRALinear",
    "add_lora",
    "exactify",
]


class ExactLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return RF.linear(x, self.weight, self.bias)


class LoRALinear(ExactLinear):
    """A linear layer with a low-rank adapter: ``y = linear(x, W, b) + fl(linear(linear(x, A), B) · scale)``.

    ``A`` (``lora_A``, rank × in) and ``B`` (``lora_B``, out × rank) are parameters registered after ``weight``
    and ``bias`` (so ``state_dict`` keys of the base layer are unchanged); ``scale`` is ``f32(alpha / rank)``. In
    exact mode each ``linear`` is :class:`protocol.repro.functional.LinearFn`; ``x`` feeds two products, whose
    gradients autograd adds elementwise (two terms commute exactly). Created by :func:`add_lora`.
    """

    lora_A: nn.Parameter
    lora_B: nn.Parameter
    lora_scale: float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = RF.linear(x, self.weight, self.bias)
        return y + RF.linear(RF.linear(x, self.lora_A), self.lora_B) * self.lora_scale


def add_lora(layer: nn.Module, rank: int, alpha: float) -> LoRALinear:
    """Turn ``layer`` (an ``nn.Linear``/``ExactLinear``) into a :class:`LoRALinear` in place (``A`` and ``B``
    zero until initialised)."""
    import numpy as np

    if not isinstance(layer, nn.Linear):
        raise TypeError(f"LoRA adapts linear layers, not {type(layer).__name__}")
    layer.__class__ = LoRALinear
    lora = cast(LoRALinear, layer)  # the same object, now of the subclass
    w = lora.weight
    lora.lora_A = nn.Parameter(torch.zeros(rank, w.shape[1], dtype=w.dtype, device=w.device))
    lora.lora_B = nn.Parameter(torch.zeros(w.shape[0], rank, dtype=w.dtype, device=w.device))
    lora.lora_scale = float(np.float32(alpha / rank))
    return lora


class ExactConv2d(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if get_mode() == "exact" and self.padding_mode != "zeros":
            raise NotImplementedError("ExactConv2d supports padding_mode='zeros' only")
        if get_mode() != "exact":
            return super().forward(x)
        return RF.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ExactLayerNorm(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return RF.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class ExactEmbedding(nn.Embedding):
    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if get_mode() != "exact":
            return super().forward(idx)
        if self.max_norm is not None or self.scale_grad_by_freq or self.sparse:
            raise NotImplementedError("ExactEmbedding: max_norm, scale_grad_by_freq and sparse are not supported")
        return RF.embedding(idx, self.weight, self.padding_idx)


class ExactGELU(nn.GELU):
    def __init__(self, approximate: str = "tanh") -> None:
        super().__init__(approximate=approximate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if get_mode() != "exact":
            return super().forward(x)
        return RF.gelu(x, approximate=self.approximate)


class ExactTanh(nn.Tanh):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return RF.tanh(x)


class ExactReLU(nn.ReLU):
    """``nn.ReLU`` is exact as it is; the class exists for symmetry."""


class ExactSoftmax(nn.Softmax):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return RF.softmax(x, dim=-1 if self.dim is None else self.dim)


class ExactLogSoftmax(nn.LogSoftmax):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return RF.log_softmax(x, dim=-1 if self.dim is None else self.dim)


class ExactCrossEntropyLoss(nn.CrossEntropyLoss):
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if get_mode() != "exact":
            return super().forward(logits, target)
        if self.weight is not None or self.label_smoothing != 0.0 or self.ignore_index != -100:
            raise NotImplementedError("ExactCrossEntropyLoss: no weight, label_smoothing or ignore_index")
        return RF.cross_entropy(logits, target, reduction=self.reduction)


class ExactMaxPool2d(nn.MaxPool2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if get_mode() != "exact":
            return super().forward(x)
        k = self.kernel_size
        s = self.stride
        if not isinstance(k, int) or (s not in (None, k)) or self.padding != 0 or self.dilation != 1:
            raise NotImplementedError("ExactMaxPool2d: square kernel, stride == kernel_size, no padding")
        if self.ceil_mode or self.return_indices:
            raise NotImplementedError("ExactMaxPool2d: no ceil_mode / return_indices")
        return RF.max_pool2d(x, k)


_SWAPS: tuple[tuple[type, type], ...] = (
    (nn.Linear, ExactLinear),
    (nn.Conv2d, ExactConv2d),
    (nn.LayerNorm, ExactLayerNorm),
    (nn.Embedding, ExactEmbedding),
    (nn.GELU, ExactGELU),
    (nn.Tanh, ExactTanh),
    (nn.ReLU, ExactReLU),
    (nn.Softmax, ExactSoftmax),
    (nn.LogSoftmax, ExactLogSoftmax),
    (nn.CrossEntropyLoss, ExactCrossEntropyLoss),
    (nn.MaxPool2d, ExactMaxPool2d),
)


def exactify(model: nn.Module) -> nn.Module:
    """Convert, in place, every supported ``torch.nn`` submodule of ``model`` (and itself) to its Exact twin.

    Only the class changes (parameters and buffers stay). Raises for a GELU
    with the erf form, which exact mode does not offer.
    """
    for mod in model.modules():
        for base, exact in _SWAPS:
            if type(mod) is base:
                if base is nn.GELU and mod.approximate != "tanh":
                    raise NotImplementedError("exactify: nn.GELU(approximate='none') has no exact twin; use 'tanh'")
                mod.__class__ = exact
                break
    return model
