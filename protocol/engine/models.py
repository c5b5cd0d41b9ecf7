"""The models a job spec can name — MLP, small CNN, tiny decoder-only transformer LM — and their initialisation.

Each model is written once with plain ``torch.nn`` modules plus the :mod:`protocol.repro.functional`
operators for what has no module (broadcast adds, attention matmuls, softmax, loss). In exact mode
:func:`build_model` converts the modules in place with :func:`protocol.repro.nn.exactify` and the functional
operators take their exact path; in native (tolerance) mode everything is plain torch. The architecture,
parameter names and initial values are the same in both modes.

Rules the forward passes follow so exact mode stays exact (see :mod:`protocol.repro.functional`): every
broadcast add with a trainable operand goes through ``RF.add``; one fused QKV projection instead of three;
scalar factors are multiplications (never divisions by a Python scalar, which CUDA turns into a reciprocal);
dropout is a same-shape multiplication by a mask from :mod:`protocol.engine.rng`.

Initialisation (:func:`init_parameters`) draws from the counter RNG, stream ``(seed, "init/<parameter name>",
0)``, uniform values only (no transcendental functions): ``w = f32((2u - 1) · bound)`` in binary64, with

* MLP / CNN: ``bound = 1 / sqrt(fan_in)`` for weights and biases (torch's default ``Linear``/``Conv2d`` range);
* transformer: weights and embeddings ``bound = 0.02 · sqrt(3)`` (standard deviation 0.02), the residual
  output projections ``0.02 · sqrt(3) / sqrt(2 · n_layers)``, biases 0, LayerNorm weight 1 and bias 0;
* LoRA adapters (any model): ``lora_A`` ``bound = 1 / sqrt(in_features)``, ``lora_B`` 0 (so an adapted model
  starts out computing what the base model does).

LoRA (spec ``lora``): :func:`build_model` turns every ``nn.Linear`` whose module name matches one of
``lora.targets`` (fnmatch) into a :class:`protocol.repro.nn.LoRALinear`, in module order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fnmatch import fnmatchcase

import numpy as np
import torch
from torch import nn

from protocol.repro import functional as RF
from protocol.repro.nn import add_lora, exactify
from protocol.spec import CNNConfig, LoRAConfig, MLPConfig, TransformerLMConfig

from .rng import Stream

__all__ = ["CNN", "MLP", "TransformerLM", "LoRAError", "build_model", "init_parameters"]


class LoRAError(ValueError):
    """A LoRA config whose targets match no linear layer of the model."""


class DropoutContext:
    """Where a model's dropout masks come from: the job seed and the optimizer step being computed.

    ``step is None`` means evaluation (no dropout). Mask of site ``name`` at step ``s``: stream
    ``(seed, "dropout/<name>", s)``, :meth:`protocol.engine.rng.Stream.bernoulli_keep` over the activation's
    elements in row-major order; kept elements are multiplied by ``f32(1 / (1 - p))``. With gradient
    accumulation, micro-batch ``k`` (``micro``) of a step takes draws ``k·n … (k+1)·n - 1`` (``n`` = its
    activation's elements): the slice of the whole batch's mask that its rows would get, so the masks are the
    ones the step would draw without accumulation.
    """

    def __init__(self) -> None:
        self.seed: int = 0
        self.step: int | None = None
        self.micro: int = 0


def _dropout(x: torch.Tensor, p: float, ctx: DropoutContext, site: str) -> torch.Tensor:
    if p == 0.0 or ctx.step is None:
        return x
    n = x.numel()
    keep = Stream(ctx.seed, f"dropout/{site}", ctx.step).bernoulli_keep(n, p, start=ctx.micro * n)
    scale = np.float32(1.0 / (1.0 - p))
    mask = torch.from_numpy(keep.astype(np.float32) * scale).reshape(x.shape).to(x.device)
    return x * mask


_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": lambda: nn.GELU(approximate="tanh"),
}


class MLP(nn.Module):
    """input (flattened) → [Linear → activation] per hidden width → Linear → logits."""

    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        dims = [cfg.input_dim, *cfg.hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.acts = nn.ModuleList(_ACTIVATIONS[cfg.activation]() for _ in cfg.hidden)
        self.head = nn.Linear(dims[-1], cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(x.shape[0], -1)
        for layer, act in zip(self.layers, self.acts, strict=True):
            h = act(layer(h))
        return self.head(h)


class CNN(nn.Module):
    """[Conv k×k (same padding) → ReLU → 2×2 max-pool] per channel entry → flatten → Linear → logits."""

    def __init__(self, cfg: CNNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        convs = []
        prev = cfg.in_channels
        for c in cfg.channels:
            convs.append(nn.Conv2d(prev, c, cfg.kernel_size, padding=cfg.kernel_size // 2))
            prev = c
        self.convs = nn.ModuleList(convs)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        side = cfg.image_size >> len(cfg.channels)
        self.head = nn.Linear(prev * side * side, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        h = x.reshape(x.shape[0], c.in_channels, c.image_size, c.image_size)
        for conv in self.convs:
            h = self.pool(self.relu(conv(h)))
        return self.head(h.reshape(h.shape[0], -1))


class Block(nn.Module):
    """Pre-norm transformer block: x + drop(proj(attn(ln1 x))), then x + drop(fc2(gelu(fc1(ln2 x))))."""

    def __init__(self, cfg: TransformerLMConfig, index: int, ctx: DropoutContext) -> None:
        super().__init__()
        d = cfg.d_model
        self.n_heads, self.d_head, self.p = cfg.n_heads, d // cfg.n_heads, cfg.dropout
        self.name = f"blocks.{index}"
        self.ctx = ctx
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, cfg.d_ff)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(cfg.d_ff, d)
        self.scale = float(np.float32(1.0 / math.sqrt(self.d_head)))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        H, dh = self.n_heads, self.d_head
        q, k, v = self.qkv(x).split(D, dim=-1)
        q = q.reshape(B, T, H, dh).transpose(1, 2).contiguous()
        kt = k.reshape(B, T, H, dh).permute(0, 2, 3, 1).contiguous()  # (B, H, dh, T)
        v = v.reshape(B, T, H, dh).transpose(1, 2).contiguous()
        scores = RF.matmul(q, kt) * self.scale
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        att = RF.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)
        att = _dropout(att, self.p, self.ctx, f"{self.name}.attn")
        y = RF.matmul(att, v)  # (B, H, T, dh)
        return y.transpose(1, 2).reshape(B, T, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + _dropout(self.proj(self.attention(self.ln1(x))), self.p, self.ctx, f"{self.name}.resid1")
        return x + _dropout(self.fc2(self.act(self.fc1(self.ln2(x)))), self.p, self.ctx, f"{self.name}.resid2")


class TransformerLM(nn.Module):
    """Decoder-only LM: token + learned position embeddings → blocks → final LayerNorm → tied output head."""

    def __init__(self, cfg: TransformerLMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.dropout_ctx = DropoutContext()
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(cfg.context, cfg.d_model))
        self.blocks = nn.ModuleList(Block(cfg, i, self.dropout_ctx) for i in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        if T > self.cfg.context:
            raise ValueError(f"sequence length {T} exceeds the model context {self.cfg.context}")
        h = RF.add(self.tok(idx), self.pos[:T])
        h = _dropout(h, self.cfg.dropout, self.dropout_ctx, "embed")
        for block in self.blocks:
            h = block(h)
        return RF.linear(self.ln_f(h), self.tok.weight)  # tied embeddings, no bias


def build_model(
    cfg: MLPConfig | CNNConfig | TransformerLMConfig, exact: bool, lora: LoRAConfig | None = None
) -> nn.Module:
    """The model for ``cfg`` (with LoRA adapters when ``lora``); its modules converted to exact-mode modules
    when ``exact``. Not initialised."""
    if isinstance(cfg, MLPConfig):
        model: nn.Module = MLP(cfg)
    elif isinstance(cfg, CNNConfig):
        model = CNN(cfg)
    elif isinstance(cfg, TransformerLMConfig):
        model = TransformerLM(cfg)
    else:  # pragma: no cover - the spec's discriminated union admits nothing else
        raise TypeError(f"unknown model config {type(cfg).__name__}")
    if lora is not None:
        targets = [
            name
            for name, mod in model.named_modules()
            if isinstance(mod, nn.Linear) and any(fnmatchcase(name, pat) for pat in lora.targets)
        ]
        if not targets:
            linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
            raise LoRAError(f"lora.targets {lora.targets} match no linear layer; the model's are {linears}")
        for name in targets:
            add_lora(model.get_submodule(name), lora.rank, lora.alpha)
    return exactify(model) if exact else model


def _uniform(seed: int, name: str, shape: tuple[int, ...], bound: float) -> torch.Tensor:
    n = int(np.prod(shape, dtype=np.int64))
    u = Stream(seed, f"init/{name}", 0).uniform(n)
    vals = (u * 2.0 - 1.0) * bound  # binary64, each operation correctly rounded
    return torch.from_numpy(vals.astype(np.float32).reshape(shape))


def _bound(model: nn.Module, name: str, p: torch.Tensor) -> float | tuple[str, float]:
    if name.endswith(".lora_B"):
        return ("const", 0.0)
    if name.endswith(".lora_A"):
        return 1.0 / math.sqrt(p.shape[1])
    if isinstance(model, TransformerLM):
        cfg = model.cfg
        std = 0.02
        if any(part.startswith("ln") for part in name.split(".")[:-1]):  # LayerNorm: weight 1, bias 0
            return ("const", 1.0 if name.endswith("weight") else 0.0)
        if name.endswith(".bias"):
            return ("const", 0.0)
        if name.endswith(("proj.weight", "fc2.weight")):
            std = 0.02 / math.sqrt(2 * cfg.n_layers)
        return std * math.sqrt(3.0)
    # MLP / CNN: torch's default range, fan_in of the owning layer
    owner = model.get_submodule(name.rsplit(".", 1)[0])
    w = owner.weight
    if not isinstance(w, torch.Tensor):  # pragma: no cover - every MLP/CNN parameter's owner has a weight
        raise TypeError(f"{name}: its module {type(owner).__name__} has no weight tensor")
    fan_in = int(np.prod(w.shape[1:]))
    return 1.0 / math.sqrt(fan_in)


@torch.no_grad()
def init_parameters(model: nn.Module, seed: int, only: set[str] | None = None) -> None:
    """Set every parameter (or those named in ``only``) from the counter RNG (see the module docstring)."""
    for name, p in model.named_parameters():
        if only is not None and name not in only:
            continue
        b = _bound(model, name, p)
        if isinstance(b, tuple):
            p.fill_(b[1])
        else:
            p.copy_(_uniform(seed, name, tuple(p.shape), b))
