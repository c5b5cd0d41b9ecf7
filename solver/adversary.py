"""Cheating solvers for tests and the demo: ``fake``, ``noise``, ``lazy``, ``withhold``, ``stall``, and the
three that cut a fine-tuning spec's corners: ``noclip``, ``constlr``, ``unfreeze``.

Never on by default: ``veritrain solver --adversary NAME`` picks one and the node prints a loud warning. Each
adversary is a small strategy object that the node (:mod:`solver.node`, through :mod:`solver.training`)
consults at four well-defined points, so every lie goes through the real code paths (real training, real
checkpoints, real commits, the real checkpoint server and mirror):

* :meth:`Adversary.prepare` — how the job's trainer is set up (once, before its initial state is built);
* :meth:`Adversary.run_segment` — what state a segment produces and which leaf is recorded for it;
* :meth:`Adversary.needs_state` — whether segment ``i`` needs the true pre-state loaded (a made-up leaf has no
  checkpoint behind it);
* :meth:`Adversary.withheld` — which checkpoint blobs of a job are never served (neither by the solver's HTTP
  server nor pushed to the marketplace mirror);
* :attr:`Adversary.answers_disputes` — whether the node makes its dispute moves at all.

The adversaries:

``fake``      trains honestly up to ``after_step`` (default: a quarter of the job, rounded down to a segment
              boundary), then records made-up leaves for the remaining segments without training (no
              checkpoint exists for them).
``noise``     trains honestly, but after segment ``segment`` (default: drawn from the job id) adds Gaussian
              noise (``scale``) to the weights before the checkpoint; later segments train honestly on top, so
              exactly that one segment fails replay.
``lazy``      each segment trains only ``interval - skip`` of its steps (default: half of them) and then
              claims the full step count, so every segment fails replay.
``withhold``  trains honestly and commits the true root, but never serves the pre-state checkpoints (``C_init``
              and every leaf but the last, or only the pre-states of ``segments``): a replay or an arbitration
              of such a segment cannot get its pre-state and votes UNAVAILABLE.
``stall``     trains honestly, commits, and never answers a dispute: it loses on its chess clock.
``malformed`` trains honestly, but stores the checkpoint of segment ``segment`` (default: drawn from the job id)
              with a manifest the replay code does not expect (``flavor``: ``loss`` a string that is no float,
              ``overflow`` an integer loss beyond any float, ``step`` a step counter of 2^62, ``tensor`` an
              extra tensor, ``shape`` a parameter of another shape); the bytes hash to the committed leaf and
              are served and mirrored like any checkpoint.
``trickle``   lies like ``noise`` and serves every blob and leaf list at a few bytes a second.
``hang``      lies like ``noise``; its server accepts every connection and never sends a byte.
``bomb``      lies like ``noise``; its server answers every request with an endless body.
``baitswitch`` lies like ``noise``, withholds every pre-state from everyone, and publishes one on chain only when
              an availability challenge names it (then the verifier replays it and disputes the lie).

The last three mirror their data honestly, so a verifier that gives up on the solver in time finds it on the
marketplace mirror; together with ``withhold`` they are what DESIGN §8.5 calls evidence against the solver
when no copy can be had.
``noclip``    ignores the spec's ``clip_grad_norm`` (trains with raw gradients).
``constlr``   ignores the spec's ``schedule``: every step at the optimizer's peak ``lr`` (no warm-up, no decay).
``unfreeze``  trains every parameter, the spec's frozen ones (``freeze``; a LoRA spec's base weights) too.

``noclip``, ``constlr`` and ``unfreeze`` record the spec's hash in their checkpoints like an honest solver and
serve every checkpoint: only a replay that follows the spec tells them apart.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from protocol.engine.runner import Trainer
from protocol.state import TrainingState

__all__ = [
    "ADVERSARIES",
    "Adversary",
    "ConstLR",
    "Fake",
    "Honest",
    "Bomb",
    "Hang",
    "Lazy",
    "Malformed",
    "NoClip",
    "Noise",
    "SegmentOutput",
    "Stall",
    "Trickle",
    "UnknownAdversary",
    "Unfreeze",
    "Withhold",
    "make_adversary",
]


#: Called after every optimizer step with (step, loss).
OnStep = Callable[[int, float], None] | None


class UnknownAdversary(ValueError):
    """``--adversary`` named something that is not an adversary."""


@dataclass
class SegmentOutput:
    """What one segment produced. By default: the trainer's current state is the checkpoint (the runner
    exports, hashes and stores it, timed as checkpoint work). ``made_up``: ``root`` is recorded as the leaf
    and no checkpoint exists behind it."""

    root: bytes | None = None
    made_up: bool = False


def _digest_int(*parts: bytes) -> int:
    return int.from_bytes(hashlib.sha256(b"".join(parts)).digest(), "big")


class Adversary:
    """The honest strategy; subclasses override the points they lie at."""

    name = "honest"
    #: Whether the node makes its dispute moves.
    answers_disputes = True

    @property
    def honest(self) -> bool:
        return self.name == "honest"

    def describe(self) -> str:
        return self.name

    def prepare(self, trainer: Trainer) -> None:
        """Sets up the job's trainer (before its initial state); the honest strategy keeps the spec's."""

    def needs_state(self, job_id: bytes, index: int, trainer: Trainer) -> bool:
        """Whether segment ``index`` must start from the true pre-state (loaded from its checkpoint)."""
        return True

    def run_segment(self, job_id: bytes, index: int, trainer: Trainer, on_step: OnStep = None) -> SegmentOutput:
        """Runs segment ``index`` on ``trainer`` (which holds its pre-state) and returns the leaf to record.
        ``on_step(step, loss)`` is called after every optimizer step (the node's duties between steps)."""
        trainer.train_steps(trainer.spec.checkpoint_interval, on_step)
        return SegmentOutput()

    def withheld(self, job_id: bytes, init_root: bytes, leaves: Sequence[bytes]) -> set[bytes]:
        """The state roots of the job's checkpoints this solver never serves or mirrors."""
        return set()

    def checkpoint(self, job_id: bytes, index: int, trainer: Trainer, state: TrainingState) -> TrainingState:
        """The state stored (and committed) as segment ``index``'s checkpoint; by default the trained one."""
        return state

    #: How the solver's checkpoint server answers reads (``None``: honestly; see :mod:`solver.server`).
    serve_mode: str | None = None
    #: Whether an availability challenge of a withheld checkpoint is answered (its bytes published on chain); a
    #: withholder that also refuses that loses its stake on its clock.
    publishes_withheld = False


class Honest(Adversary):
    pass


class Fake(Adversary):
    """Made-up leaves from ``after_step`` on (no training, no checkpoints behind them)."""

    name = "fake"

    def __init__(self, after_step: int | None = None) -> None:
        if after_step is not None and after_step < 0:
            raise ValueError("fake: after_step must be >= 0")
        self.after_step = after_step

    def first_fake(self, trainer: Trainer) -> int:
        spec = trainer.spec
        after = spec.total_steps // 4 if self.after_step is None else self.after_step
        return min(after // spec.checkpoint_interval, spec.num_segments - 1)

    def describe(self) -> str:
        return f"fake (made-up leaves after step {'total/4' if self.after_step is None else self.after_step})"

    def needs_state(self, job_id: bytes, index: int, trainer: Trainer) -> bool:
        return index < self.first_fake(trainer)

    def run_segment(self, job_id: bytes, index: int, trainer: Trainer, on_step: OnStep = None) -> SegmentOutput:
        if index < self.first_fake(trainer):
            return super().run_segment(job_id, index, trainer, on_step)
        made_up = hashlib.sha256(b"veritrain/fake-leaf" + job_id + index.to_bytes(8, "big")).digest()
        return SegmentOutput(made_up, made_up=True)


class Noise(Adversary):
    """Perturbs the weights at the end of one segment, then trains honestly on top."""

    name = "noise"

    def __init__(self, segment: int | None = None, scale: float = 1e-2) -> None:
        if segment is not None and segment < 0:
            raise ValueError("noise: segment must be >= 0")
        self.segment = segment
        self.scale = scale

    def target(self, job_id: bytes, num_segments: int) -> int:
        if self.segment is not None:
            return min(self.segment, num_segments - 1)
        return _digest_int(b"veritrain/noise-segment", job_id) % num_segments

    def describe(self) -> str:
        which = "drawn from the job id" if self.segment is None else str(self.segment)
        return f"noise (perturbs the weights in segment {which}, scale {self.scale})"

    def run_segment(self, job_id: bytes, index: int, trainer: Trainer, on_step: OnStep = None) -> SegmentOutput:
        trainer.train_steps(trainer.spec.checkpoint_interval, on_step)
        if index == self.target(job_id, trainer.spec.num_segments):
            gen = torch.Generator().manual_seed(_digest_int(b"veritrain/noise", job_id) % 2**63)
            with torch.no_grad():
                for _, p in trainer.named_params:
                    noise = torch.randn(p.shape, generator=gen, dtype=p.dtype) * self.scale
                    p.add_(noise.to(p.device))
        return SegmentOutput()


class Lazy(Adversary):
    """Trains ``interval - skip`` steps per segment and claims the full count."""

    name = "lazy"

    def __init__(self, skip: int | None = None) -> None:
        if skip is not None and skip < 1:
            raise ValueError("lazy: skip must be >= 1")
        self.skip = skip

    def describe(self) -> str:
        return f"lazy (skips {'half' if self.skip is None else self.skip} of the steps of every segment)"

    def run_segment(self, job_id: bytes, index: int, trainer: Trainer, on_step: OnStep = None) -> SegmentOutput:
        interval = trainer.spec.checkpoint_interval
        skip = max(1, interval // 2) if self.skip is None else min(self.skip, interval)
        start = trainer.step
        assert start is not None
        trainer.train_steps(interval - skip, on_step)
        trainer.step = start + interval  # claim the steps it did not take
        return SegmentOutput()


class Withhold(Adversary):
    """Honest training and commitment; never serves the pre-state checkpoints."""

    name = "withhold"

    def __init__(self, segments: Iterable[int] | None = None) -> None:
        self.segments = None if segments is None else sorted(set(int(s) for s in segments))
        if self.segments is not None and any(s < 0 for s in self.segments):
            raise ValueError("withhold: segments must be >= 0")

    def describe(self) -> str:
        which = "every segment" if self.segments is None else f"segments {self.segments}"
        return f"withhold (never serves the pre-state checkpoints of {which})"

    def withheld(self, job_id: bytes, init_root: bytes, leaves: Sequence[bytes]) -> set[bytes]:
        pre = [init_root, *leaves[:-1]]  # pre-state of segment i
        which = range(len(leaves)) if self.segments is None else [s for s in self.segments if s < len(leaves)]
        return {pre[i] for i in which if i < len(pre)}


class Malformed(Adversary):
    """One checkpoint whose manifest hashes to the committed leaf but is no state of the job."""

    name = "malformed"
    FLAVORS = ("loss", "overflow", "step", "tensor", "shape")

    def __init__(self, segment: int | None = None, flavor: str = "loss") -> None:
        if segment is not None and segment < 0:
            raise ValueError("malformed: segment must be >= 0")
        if flavor not in self.FLAVORS:
            raise ValueError(f"malformed: flavor must be one of {', '.join(self.FLAVORS)}")
        self.segment, self.flavor = segment, flavor

    def target(self, job_id: bytes, num_segments: int) -> int:
        if self.segment is not None:
            return min(self.segment, num_segments - 1)
        return _digest_int(b"veritrain/malformed-segment", job_id) % num_segments

    def describe(self) -> str:
        which = "drawn from the job id" if self.segment is None else str(self.segment)
        return f"malformed (checkpoint of segment {which} has a bad manifest: {self.flavor})"

    def checkpoint(self, job_id: bytes, index: int, trainer: Trainer, state: TrainingState) -> TrainingState:
        if index != self.target(job_id, trainer.spec.num_segments):
            return state
        tensors, meta, step = dict(state.tensors), dict(state.meta), state.step
        if self.flavor == "loss":
            meta["loss"] = "0.1 (trust me)"
        elif self.flavor == "overflow":
            meta["loss"] = 10**400
        elif self.flavor == "step":
            step = 2**62
        elif self.flavor == "tensor":
            tensors["param/zz_backdoor"] = torch.zeros(3)
        else:
            name = sorted(k for k in tensors if k.startswith("param/"))[0]
            tensors[name] = tensors[name].reshape(-1)[:-1].clone() if tensors[name].numel() > 1 else torch.zeros(2)
        return TrainingState(tensors=tensors, step=step, meta=meta)


class _LyingServer(Noise):
    """Lies like ``noise`` (one perturbed segment) and answers reads of its server in ``serve_mode``."""

    def describe(self) -> str:
        return f"{self.name} (serves {self.serve_mode}; {super().describe()})"


class Trickle(_LyingServer):
    name = "trickle"
    serve_mode = "trickle"


class Hang(_LyingServer):
    name = "hang"
    serve_mode = "hang"


class Bomb(_LyingServer):
    name = "bomb"
    serve_mode = "bomb"


class BaitSwitch(Noise):
    """Lies like ``noise`` and withholds every pre-state checkpoint from everyone (no server, no mirror), but
    publishes one on chain when an availability challenge names it: it hopes a verifier disputes a segment it
    could not check, then serves that pre-state to the committee, which finds the segment honest."""

    name = "baitswitch"
    publishes_withheld = True

    def describe(self) -> str:
        return f"baitswitch (withholds every pre-state, publishes when challenged; {super().describe()})"

    def withheld(self, job_id: bytes, init_root: bytes, leaves: Sequence[bytes]) -> set[bytes]:
        return set(leaves[:-1])  # every checkpoint but the final model (C_init is the submitter's)


class Stall(Adversary):
    """Honest training and commitment; never answers a dispute."""

    name = "stall"
    answers_disputes = False

    def describe(self) -> str:
        return "stall (never answers a dispute)"


class NoClip(Adversary):
    """Trains without the spec's gradient clipping."""

    name = "noclip"

    def describe(self) -> str:
        return "noclip (ignores clip_grad_norm)"

    def prepare(self, trainer: Trainer) -> None:
        trainer.clip_norm = None


class ConstLR(Adversary):
    """Trains at the optimizer's peak learning rate on every step, ignoring the schedule."""

    name = "constlr"

    def describe(self) -> str:
        return "constlr (ignores the learning-rate schedule)"

    def prepare(self, trainer: Trainer) -> None:
        peak = float(trainer.spec.optimizer.lr)
        trainer.lr_of = lambda s: peak


class Unfreeze(Adversary):
    """Trains every parameter, the frozen ones too."""

    name = "unfreeze"

    def describe(self) -> str:
        return "unfreeze (trains the frozen parameters too)"

    def prepare(self, trainer: Trainer) -> None:
        trainer.set_trainable({n for n, _ in trainer.named_params})


#: ``--adversary`` name → class.
ADVERSARIES: dict[str, type[Adversary]] = {
    "fake": Fake,
    "noise": Noise,
    "lazy": Lazy,
    "withhold": Withhold,
    "stall": Stall,
    "malformed": Malformed,
    "trickle": Trickle,
    "hang": Hang,
    "bomb": Bomb,
    "baitswitch": BaitSwitch,
    "noclip": NoClip,
    "constlr": ConstLR,
    "unfreeze": Unfreeze,
}


def make_adversary(name: str | None, **params: object) -> Adversary:
    """The strategy for ``--adversary NAME`` (None or ``"honest"``: the honest one). Raises UnknownAdversary."""
    if name is None or name == "honest":
        return Honest()
    cls = ADVERSARIES.get(name)
    if cls is None:
        raise UnknownAdversary(f"unknown adversary {name!r}; choose one of: {', '.join(ADVERSARIES)}")
    takes = [
        n
        for n, p in inspect.signature(cls.__init__).parameters.items()
        if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    unknown = sorted(set(params) - set(takes))
    if unknown:
        raise ValueError(f"{name} has no parameter {', '.join(unknown)} (it takes: {', '.join(takes) or 'none'})")
    return cls(**params)  # type: ignore[arg-type]
