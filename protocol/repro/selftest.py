"""A fixed small training workload whose result hashes show whether this machine reproduces exact mode.

``python -m protocol.repro.selftest [--threads N] [--mode exact|native]``
prints JSON ``{"mode", "threads", "capability", "kernel_set", "digests": {...},
"all": sha256}``. In exact mode ``all`` must be the same on every machine,
thread count and ``ATEN_CPU_CAPABILITY`` (the ISA-matrix test runs it in
subprocesses); in native mode it usually is not.

The workload: three tiny models — an MLP (linear, GELU, tanh, cross-entropy,
AdamW), a CNN (conv2d with padding/stride, ReLU, max-pool, linear, SGD with
momentum) and an attention block (embedding, layer norm, matmul, softmax,
log-softmax, sum/mean, exp/log, AdamW with grad clipping) — trained a few
steps from parameters and data drawn with numpy's Philox generator (torch's
vectorised ``randn`` itself differs across ISAs).
"""

from __future__ import annotations

import argparse
import hashlib
import json

import numpy as np
import torch

from . import functional as RF
from . import nn as RN
from ._config import mode as mode_ctx
from ._config import set_threads
from .optim import ExactAdamW, ExactSGD
from .version import KERNEL_SET_VERSION


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(key=seed))


def _init(model: torch.nn.Module, seed: int) -> None:
    g = _rng(seed)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p.shape[1] if p.dim() > 1 else p.shape[0]
            if p.dim() > 2:
                fan_in = int(np.prod(p.shape[1:]))
            a = g.uniform(-1.0, 1.0, size=tuple(p.shape)) / np.sqrt(fan_in)
            p.copy_(torch.from_numpy(a.astype(np.float32)))


def _digest(tensors: list[torch.Tensor]) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def _state(model: torch.nn.Module, opt: torch.optim.Optimizer, losses: list[torch.Tensor]) -> list[torch.Tensor]:
    out: list[torch.Tensor] = [p for p in model.parameters()]
    for p in model.parameters():
        st = opt.state.get(p, {})
        for k in sorted(st):
            v = st[k]
            if isinstance(v, torch.Tensor):
                out.append(v)
    out.extend(losses)
    return out


class _MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1 = RN.ExactLinear(20, 33)
        self.act = RN.ExactGELU()
        self.l2 = RN.ExactLinear(33, 17)
        self.l3 = RN.ExactLinear(17, 5)

    def forward(self, x):
        return self.l3(RF.tanh(self.l2(self.act(self.l1(x)))))


class _CNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = RN.ExactConv2d(2, 4, 3, padding=1)
        self.pool = RN.ExactMaxPool2d(2)
        self.c2 = RN.ExactConv2d(4, 3, 3, stride=2, padding=1, dilation=1)
        self.fc = RN.ExactLinear(3 * 2 * 2, 4)

    def forward(self, x):
        h = self.pool(torch.relu(self.c1(x)))
        h = torch.relu(self.c2(h))
        return self.fc(h.reshape(h.shape[0], -1))


class _Attn(torch.nn.Module):
    def __init__(self, V: int = 11, D: int = 8) -> None:
        super().__init__()
        self.emb = RN.ExactEmbedding(V, D)
        self.ln = RN.ExactLayerNorm(D)
        self.qkv = RN.ExactLinear(D, 3 * D)
        self.out = RN.ExactLinear(D, V)
        self.D = D

    def forward(self, idx):
        h = self.ln(self.emb(idx))  # (B, T, D)
        q, k, v = self.qkv(h).split(self.D, dim=-1)
        att = RF.matmul(q.contiguous(), k.transpose(1, 2).contiguous()) * float(1.0 / np.sqrt(self.D))
        T = idx.shape[1]
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        att = RF.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
        h = h + RF.matmul(att, v.contiguous())
        return self.out(h)


def workload(steps: int = 3) -> dict[str, str]:
    """Run the three models in the current mode; return a sha256 per model of params, optimizer state, losses."""
    out: dict[str, str] = {}
    g = _rng(7)

    # --- MLP, AdamW --------------------------------------------------------------------------
    mlp = _MLP()
    _init(mlp, 1)
    opt = ExactAdamW(mlp.parameters(), lr=1e-2, weight_decay=0.1)
    x = torch.from_numpy(g.standard_normal((24, 20)).astype(np.float32))
    y = torch.from_numpy(g.integers(0, 5, size=24))
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = RF.cross_entropy(mlp(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    out["mlp"] = _digest(_state(mlp, opt, losses))

    # --- CNN, SGD momentum -------------------------------------------------------------------
    cnn = _CNN()
    _init(cnn, 2)
    opt2 = ExactSGD(cnn.parameters(), lr=5e-2, momentum=0.9, weight_decay=1e-4, nesterov=True)
    xi = torch.from_numpy(g.standard_normal((6, 2, 9, 9)).astype(np.float32))
    yi = torch.from_numpy(g.integers(0, 4, size=6))
    losses = []
    for _ in range(steps):
        opt2.zero_grad()
        loss = RF.cross_entropy(cnn(xi), yi)
        loss.backward()
        opt2.step()
        losses.append(loss.detach())
    out["cnn"] = _digest(_state(cnn, opt2, losses))

    # --- attention block: embedding, layer norm, softmax, log-softmax, AdamW + clipping ------
    att = _Attn()
    _init(att, 3)
    opt3 = ExactAdamW(att.parameters(), lr=3e-2, betas=(0.8, 0.95), weight_decay=0.01)
    tok = torch.from_numpy(g.integers(0, 11, size=(3, 7)))
    losses = []
    for _ in range(steps):
        opt3.zero_grad()
        logits = att(tok[:, :-1])
        lsm = RF.log_softmax(logits, dim=-1)
        tgt = tok[:, 1:]
        nll = -lsm.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
        aux = RF.mean(RF.exp(RF.log(RF.softmax(logits, dim=-1) + 1.0)))  # exercises exp/log/mean
        loss = RF.add(RF.sum(nll, dim=1), aux.reshape(1)).reshape(-1)
        loss = RF.mean(loss)
        loss.backward()
        RF.clip_grad_norm_(att.parameters(), 0.5)
        opt3.step()
        losses.append(loss.detach())
    out["attn"] = _digest(_state(att, opt3, losses))
    return out


def run(threads: int = 1, mode: str = "exact", steps: int = 3) -> dict:
    """Set threads, run :func:`workload` in ``mode``; the JSON-able report."""
    set_threads(threads)
    with mode_ctx(mode):
        digests = workload(steps)
    combined = hashlib.sha256("".join(digests[k] for k in sorted(digests)).encode()).hexdigest()
    return {
        "mode": mode,
        "threads": threads,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "kernel_set": KERNEL_SET_VERSION,
        "digests": digests,
        "all": combined,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mode", choices=("exact", "native", "both"), default="exact")
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args(argv)
    modes = ("exact", "native") if a.mode == "both" else (a.mode,)
    print(json.dumps([run(a.threads, m, a.steps) for m in modes]))


if __name__ == "__main__":
    main()
