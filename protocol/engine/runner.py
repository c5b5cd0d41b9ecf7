"""Training state, segments and jobs (DESIGN §3 "Trajectory").

A :class:`Trainer` owns one job's model, optimizer and batch order. Its complete state is a
:class:`protocol.state.TrainingState`:

* tensors ``param/<name>`` (the model's parameters, ``named_parameters`` order irrelevant: the serialisation
  sorts names) and ``optim/<name>/<buffer>`` (``momentum_buffer`` for SGD with momentum; ``step``,
  ``exp_avg``, ``exp_avg_sq`` for AdamW; absent before the first step);
* ``step``: optimizer steps taken;
* ``meta``: ``engine`` (:data:`ENGINE_VERSION`), ``kernel_set`` (the spec's exact kernel set, or ``"native"``
  in tolerance mode), ``spec_hash`` (see :func:`job_hash`), ``rng`` (generator name, seed, the step the next
  batch and dropout masks are keyed by), ``data`` (the data cursor) and ``loss`` (the training loss of the
  last step taken, ``null`` before the first); with ``evaluation`` in the spec, every checkpoint after step 0
  also has ``metrics`` (:meth:`Trainer.metrics`), so the leaf commits to them and a replay proves them.

Randomness is keyed by ``(seed, step)`` (:mod:`protocol.engine.rng`), so this state is all a replay needs.
``C_init`` is the state root of the initial state (step 0): parameters from the seed, or from given weights
(spec ``init``: a weights state, see :meth:`Trainer.init`).

One optimizer step ``s`` (spec version 2 adds the middle items; version-1 specs take the defaults, which are
the steps they always took):

1. the learning rate of every parameter group is set to :func:`protocol.engine.schedule.lr_at` ``(spec, s)``;
2. the step's batch (``batch_size`` examples, :class:`~protocol.engine.data.Batches`) is split into
   ``grad_accumulation = A`` micro-batches of consecutive rows; for ``k = 0 … A-1`` in order: forward, loss
   ``L_k`` (the mean over the micro-batch), backward of ``L_k`` (``A = 1``) or of ``fl(L_k / A)`` (a division
   by a float32 tensor), which autograd adds into each gradient elementwise in that order;
3. with ``clip_grad_norm``: :func:`protocol.repro.functional.clip_grad_norm_` over the trainable parameters
   in ``named_parameters`` order (fixed-order norm, correctly rounded sqrt);
4. the optimizer step, over the trainable parameters only (``freeze`` / ``lora``: the others have no gradient,
   no optimizer buffers, and keep their values).

The step's training loss is ``L_0`` (``A = 1``) or the binary64 mean of the ``L_k``.

:func:`run_segment` turns segment ``i``'s pre-state into its leaf state; :func:`run_job` runs a whole job into
a blob store and a :class:`protocol.trajectory.Trajectory`, resuming from the last leaf it holds.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import numpy as np
import torch

from protocol.errors import VeritrainError
from protocol.repro import KERNEL_SET_VERSION, set_threads
from protocol.repro import functional as RF
from protocol.repro import mode as repro_mode
from protocol.spec import ExactMode, JobSpec, SGDConfig, TransformerLMConfig, WeightsInit
from protocol.state import (
    DTYPE_NAMES,
    StateLayout,
    TrainingState,
    canonical_json,
    deserialize,
    serialize,
    state_root,
)

from .data import Batches, Dataset
from .models import LoRAError, build_model, init_parameters
from .rng import GENERATOR
from .schedule import lr_at
from .weights import WEIGHTS_KIND

__all__ = [
    "ENGINE_VERSION",
    "DeviceUnavailable",
    "check_device",
    "compute_clock",
    "configure_threads",
    "EngineError",
    "JobResult",
    "StateMismatch",
    "Trainer",
    "WEIGHTS_KIND",
    "WeightsMismatch",
    "initial_parameters",
    "initial_state",
    "job_hash",
    "run_job",
    "run_segment",
]

#: Version of everything in this package that decides the bytes of a state besides the kernels: model
#: definitions, initialisation, batch order, dropout, state layout. Recorded in every checkpoint.
ENGINE_VERSION = "veritrain-engine/1"


class EngineError(VeritrainError, ValueError):
    """A job the engine cannot run as specified (kernel set, schedule, initial state)."""


class StateMismatch(EngineError):
    """A training state that does not belong to this job (other spec, model, kernel set or step)."""


class DeviceUnavailable(EngineError):
    """A device the engine was asked to run on that this machine does not have (or that it does not support)."""


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device the engine can train on here: ``cpu`` or an existing ``cuda[:N]``.

    Raises :class:`DeviceUnavailable` with the reason (a CPU-only torch build, no GPU, an index past the last).
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceUnavailable(f"device {device!r} is not a device torch knows ({exc})") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise DeviceUnavailable(f"the engine trains on cpu or cuda[:N], not {device!r}")
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise DeviceUnavailable(
            f"device {device}: torch {torch.__version__} ({build}) sees no CUDA device on this machine; training on "
            "a GPU needs an NVIDIA GPU and a CUDA build of torch"
        )
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceUnavailable(f"device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


class WeightsMismatch(EngineError):
    """Initial weights that do not fit the job's model (names, shapes, dtypes), or that are missing."""


def compute_clock() -> float:
    """A clock of the compute the engine spends, in CPU seconds: the calling thread's CPU time when the engine
    runs on one thread (torch and the exact kernels both), else the whole process's. Unlike wall-clock time it
    does not count the time a busy machine's other processes hold the cores, so a solver's training and a
    verifier's replay of the same steps cost the same however they were scheduled."""
    return time.thread_time() if torch.get_num_threads() == 1 else time.process_time()


def configure_threads(n: int | None = None) -> int:
    """Use ``n`` threads (torch's default when None) for torch and the exact kernels; returns the count.

    numba's thread pool is started first: starting it later resets the OpenMP thread count torch reads.
    """
    from protocol.repro._config import numba_ready

    n = torch.get_num_threads() if n is None else n
    numba_ready()
    set_threads(n)
    return torch.get_num_threads()


def job_hash(spec: JobSpec) -> str:
    """``0x`` + SHA-256 of the spec's canonical JSON with ``init_state_root`` set to null.

    This is what checkpoints record as ``spec_hash``: the spec's own hash covers ``init_state_root``, which is
    the root of the initial state, so the state cannot contain it.
    """
    doc = spec.model_dump(mode="json")
    doc["init_state_root"] = None
    return "0x" + hashlib.sha256(canonical_json(doc)).hexdigest()


def _kernel_set(spec: JobSpec) -> str:
    if isinstance(spec.mode, ExactMode):
        if spec.mode.kernel_set != KERNEL_SET_VERSION:
            raise EngineError(
                f"the spec asks for exact kernel set {spec.mode.kernel_set!r}, this engine runs "
                f"{KERNEL_SET_VERSION!r}; replays under another kernel set are not bit-identical"
            )
        return KERNEL_SET_VERSION
    return "native"


def _optimizer(spec: JobSpec, params: list[torch.nn.Parameter], exact: bool) -> torch.optim.Optimizer:
    o = spec.optimizer
    if isinstance(o, SGDConfig):
        if exact:
            from protocol.repro.optim import ExactSGD

            return ExactSGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    if exact:
        from protocol.repro.optim import ExactAdamW

        return ExactAdamW(params, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps, weight_decay=o.weight_decay)
    return torch.optim.AdamW(params, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps, weight_decay=o.weight_decay)


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatchcase(name, p) for p in patterns)


def _optim_buffers(spec: JobSpec, step: int) -> tuple[str, ...]:
    """The optimizer buffers every parameter has after ``step`` steps."""
    if step == 0:
        return ()
    if isinstance(spec.optimizer, SGDConfig):
        return ("momentum_buffer",) if spec.optimizer.momentum != 0 else ()
    return ("exp_avg", "exp_avg_sq", "step")


def _json_float(x: float | None) -> float | str | None:
    """A loss for the manifest: canonical JSON has no NaN/inf, so those are written as strings."""
    if x is None or math.isfinite(x):
        return x
    return repr(x)


_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _loss_from_meta(value: object) -> float | None:
    """The inverse of :func:`_json_float` for bytes from another party: ``None``, a finite JSON number, or one of
    the strings it writes for NaN/inf; anything else is :class:`StateMismatch`."""
    if value is None:
        return None
    if isinstance(value, str) and value in _NONFINITE:
        return _NONFINITE[value]
    if type(value) in (int, float):
        try:
            loss = float(value)  # type: ignore[arg-type]
        except OverflowError:
            loss = math.inf
        if math.isfinite(loss):
            return loss
    raise StateMismatch(f"state meta 'loss' is {str(value)[:60]!r}, not a loss this engine writes")


def _lr_from_meta(metrics: object) -> float | None:
    """The last learning rate a checkpoint's ``meta.metrics`` records (None without metrics); anything but a
    JSON object with a finite ``lr`` number (or null) is :class:`StateMismatch`."""
    if metrics is None:
        return None
    if not isinstance(metrics, dict):
        raise StateMismatch(f"state meta 'metrics' is {str(metrics)[:60]!r}, not an object")
    lr = metrics.get("lr")
    if lr is None:
        return None
    if type(lr) not in (int, float) or not math.isfinite(float(lr)):
        raise StateMismatch(f"state meta 'metrics.lr' is {str(lr)[:60]!r}, not a learning rate")
    return float(lr)


class Trainer:
    """One job's model, optimizer and data order, in the spec's mode, on one device.

    Call :meth:`init` or :meth:`load` before training; :meth:`state` exports the current complete state.
    """

    def __init__(
        self,
        spec: JobSpec,
        dataset: Dataset,
        device: str | torch.device = "cpu",
        weights: TrainingState | None = None,
    ) -> None:
        self.spec = spec
        self.exact = isinstance(spec.mode, ExactMode)
        self.mode = "exact" if self.exact else "native"
        self.kernel_set = _kernel_set(spec)
        self.spec_hash = job_hash(spec)
        self.device = check_device(device)
        self.batches = Batches(spec, dataset, self.device)
        self.is_lm = isinstance(spec.model, TransformerLMConfig)
        try:
            self.model = build_model(spec.model, self.exact, spec.lora).to(self.device)
        except LoRAError as exc:
            raise EngineError(str(exc)) from None
        self.named_params = list(self.model.named_parameters())
        names = [n for n, _ in self.named_params]
        for what, patterns in (("freeze", spec.freeze), ("lora.train", spec.lora.train if spec.lora else [])):
            for pat in patterns:
                if not any(fnmatchcase(n, pat) for n in names):
                    raise EngineError(f"{what} pattern {pat!r} matches no parameter; the model's are {names}")
        self.set_trainable({n for n in names if spec.trainable(n)})
        #: The clipping threshold and the learning rate of a step; adversaries (tests, demo) replace them.
        self.clip_norm: float | None = spec.clip_grad_norm
        self.lr_of: Callable[[int], float] = lambda s: lr_at(spec, s)
        self.weights = weights
        self.step: int | None = None
        self.last_loss: float | None = None
        self.last_lr: float | None = None
        self._losses: list[tuple[int, float]] = []  # (step after, loss) since the last init/load
        self._metrics: dict[int, dict] = {}

    def set_trainable(self, names: set[str]) -> None:
        """Train exactly the parameters ``names`` (the spec's choice at construction): the others get no
        gradient and no optimizer state. Rebuilds the optimizer, keeping the buffers of parameters that stay."""
        if not names:
            raise EngineError("no parameter of the model trains (check freeze / lora)")
        old = getattr(self, "opt", None)
        self.trainable = set(names)
        params = []
        for n, p in self.named_params:
            p.requires_grad_(n in self.trainable)
            if n in self.trainable:
                params.append(p)
        self.opt = _optimizer(self.spec, params, self.exact)
        if old is not None:
            for p in params:
                if p in old.state:
                    self.opt.state[p] = old.state[p]

    # ------------------------------------------------------------------------------------------ state

    def init(self) -> TrainingState:
        """The initial state (step 0, no optimizer buffers): parameters from the counter RNG, or from the given
        weights (spec ``init``); returns it. Raises WeightsMismatch for weights that do not fit."""
        values = initial_parameters(self.spec, self.weights)
        with torch.no_grad():
            for name, p in self.named_params:
                p.copy_(values[name])
        self.opt.state.clear()
        self.step, self.last_loss, self.last_lr = 0, None, None
        self._losses, self._metrics = [], {}
        return self.state()

    @property
    def current_step(self) -> int:
        """Optimizer steps taken so far (``step``); an EngineError before init() or load()."""
        if self.step is None:
            raise EngineError("the trainer has no state yet: call init() or load()")
        return self.step

    def _meta(self, step: int) -> dict:
        meta = {
            "engine": ENGINE_VERSION,
            "kernel_set": self.kernel_set,
            "spec_hash": self.spec_hash,
            "rng": {"generator": GENERATOR, "seed": self.spec.seed, "next_step": step},
            "data": self.batches.cursor(step),
            "loss": _json_float(self.last_loss),
        }
        if self.spec.evaluation is not None and step:
            meta["metrics"] = self.metrics()
        return meta

    def metrics(self) -> dict:
        """The checkpoint metrics at the current step (spec ``evaluation``), cached per step:

        * ``train_loss``: binary64 mean (``math.fsum`` / count) of the step losses of the steps this trainer
          took since the last checkpoint boundary (the whole segment, for an honest run);
        * ``lr``: the learning rate of the last step;
        * ``heldout_loss`` (mean per example, per token for a language model; ``math.fsum`` of the float32
          per-example losses of the exact forward pass), ``heldout_accuracy`` (classifiers: share of argmax
          hits, first maximum on ties) and ``heldout_examples``: :meth:`evaluate` over the first
          ``evaluation.max_examples`` held-out examples.
        """
        if self.step is None:
            raise EngineError("the trainer has no state yet: call init() or load()")
        cached = self._metrics.get(self.step)
        if cached is not None:
            return cached
        lo = (self.step - 1) // self.spec.checkpoint_interval * self.spec.checkpoint_interval
        window = [loss for st, loss in self._losses if lo < st <= self.step]
        ev = self.evaluate("heldout", self.spec.evaluation.max_examples if self.spec.evaluation else None)
        out = {
            "train_loss": _json_float(math.fsum(window) / len(window)) if window else None,
            "lr": self.last_lr,
            "heldout_examples": ev["examples"],
            "heldout_loss": _json_float(ev.get("loss")),
        }
        if "accuracy" in ev:
            out["heldout_accuracy"] = ev["accuracy"]
        self._metrics[self.step] = out
        return out

    def state(self) -> TrainingState:
        """The complete current state (tensors copied to CPU, safe to keep while training goes on)."""
        if self.step is None:
            raise EngineError("the trainer has no state yet: call init() or load()")
        tensors: dict[str, torch.Tensor] = {}
        for name, p in self.named_params:
            tensors[f"param/{name}"] = p.detach().to("cpu", copy=True)
            for key, v in self.opt.state.get(p, {}).items():
                if isinstance(v, torch.Tensor):
                    tensors[f"optim/{name}/{key}"] = v.detach().to("cpu", copy=True)
        return TrainingState(tensors=tensors, step=self.step, meta=self._meta(self.step))

    def expected_tensors(self, step: int) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
        out = {}
        buffers = _optim_buffers(self.spec, step)
        for name, p in self.named_params:
            out[f"param/{name}"] = (torch.float32, tuple(p.shape))
            if name not in self.trainable:
                continue
            for b in buffers:
                out[f"optim/{name}/{b}"] = (torch.float32, () if b == "step" else tuple(p.shape))
        return out

    def max_state_bytes(self, step: int) -> int:
        """An upper bound on the serialised size of this job's state after ``step`` steps: its tensors' bytes
        plus a manifest allowance. A download of a state blob never needs more (:mod:`protocol.budget`)."""
        tensors = self.expected_tensors(step)
        data = sum(torch.empty((), dtype=dtype).element_size() * math.prod(shape) for dtype, shape in tensors.values())
        return data + 65_536 + 512 * len(tensors)

    def check_layout(self, layout: StateLayout) -> None:
        """Checks a validated manifest (:func:`protocol.state.read_layout`) against what this job's states look
        like, before a single tensor byte is read: the step within the job, exactly the tensors of this model
        and optimizer at that step (names, dtypes, shapes), the engine/kernel set/spec in its meta and a
        well-formed loss. Raises :class:`StateMismatch` (a state another party served that this job cannot
        have produced)."""
        meta = layout.meta
        for key, want in (("engine", ENGINE_VERSION), ("kernel_set", self.kernel_set), ("spec_hash", self.spec_hash)):
            if meta.get(key) != want:
                raise StateMismatch(
                    f"state is not from this job: its meta {key} is {str(meta.get(key))[:80]!r}, expected {want!r}"
                )
        known = {"engine", "kernel_set", "spec_hash", "rng", "data", "loss"}
        if self.spec.evaluation is not None and layout.step > 0:
            known.add("metrics")  # checkpoints of a job with evaluation record them (checked by replay)
        extra = sorted(set(meta) - known)
        if extra:
            raise StateMismatch(f"state meta has keys this engine never writes: {extra[:5]}")
        _loss_from_meta(meta.get("loss"))
        _lr_from_meta(meta.get("metrics"))
        if not 0 <= layout.step <= self.spec.total_steps:
            raise StateMismatch(f"state step {layout.step} is outside the job's 0..{self.spec.total_steps}")
        expected = {k: (DTYPE_NAMES[d], s) for k, (d, s) in self.expected_tensors(layout.step).items()}
        got = {e.name: (e.dtype, e.shape) for e in layout.tensors}
        if got != expected:
            missing = sorted(set(expected) - set(got))
            unexpected = sorted(set(got) - set(expected))
            wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
            raise StateMismatch(
                f"state tensors do not fit this job's model at step {layout.step}: missing {missing[:5]}, "
                f"unexpected {[u[:60] for u in unexpected[:5]]}, wrong dtype/shape {wrong[:5]}"
            )

    def load(self, state: TrainingState) -> None:
        """Load a complete state; raises StateMismatch if it is not a state of this job."""
        meta = state.meta or {}
        for key, want in (("engine", ENGINE_VERSION), ("kernel_set", self.kernel_set), ("spec_hash", self.spec_hash)):
            if meta.get(key) != want:
                raise StateMismatch(
                    f"state is not from this job: its meta {key} is {meta.get(key)!r}, expected {want!r}"
                )
        step = int(state.step)
        if not 0 <= step <= self.spec.total_steps:
            raise StateMismatch(f"state step {step} is outside the job's 0..{self.spec.total_steps}")
        expected = self.expected_tensors(step)
        got = {k: (t.dtype, tuple(t.shape)) for k, t in state.tensors.items()}
        if got != expected:
            missing = sorted(set(expected) - set(got))
            extra = sorted(set(got) - set(expected))
            wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
            raise StateMismatch(
                f"state tensors do not fit this job's model at step {step}: missing {missing[:5]}, "
                f"unexpected {extra[:5]}, wrong dtype/shape {wrong[:5]}"
            )
        self.opt.state.clear()
        buffers = _optim_buffers(self.spec, step)
        with torch.no_grad():
            for name, p in self.named_params:
                p.copy_(state.tensors[f"param/{name}"].to(self.device))
                if buffers and name in self.trainable:
                    st = {}
                    for b in buffers:
                        t = state.tensors[f"optim/{name}/{b}"]
                        # AdamW keeps its step counter on the CPU (torch's non-capturable layout)
                        st[b] = t.clone() if b == "step" else t.to(self.device, copy=True)
                    self.opt.state[p] = st
        self.step = step
        self.last_loss = _loss_from_meta(meta.get("loss"))
        self.last_lr = _lr_from_meta(meta.get("metrics"))
        self._losses, self._metrics = [], {}

    # ------------------------------------------------------------------------------------------ training

    def _loss(self, out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        if self.is_lm:
            return RF.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction=reduction)
        return RF.cross_entropy(out, y, reduction=reduction)

    def _set_dropout(self, step: int | None, micro: int = 0) -> None:
        ctx = getattr(self.model, "dropout_ctx", None)
        if ctx is not None:
            ctx.seed, ctx.step, ctx.micro = self.spec.seed, step, micro

    def _one_step(self, s: int) -> float:
        """Optimizer step ``s`` (the numbered list in the module docstring); returns its training loss."""
        lr = self.lr_of(s)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.last_lr = lr
        x, y = self.batches.batch(s)
        self.opt.zero_grad(set_to_none=True)
        acc = self.spec.grad_accumulation
        if acc == 1:
            self._set_dropout(s)
            loss = self._loss(self.model(x), y)
            loss.backward()
            value = float(loss.detach().to("cpu"))
        else:
            mb = x.shape[0] // acc
            div = torch.tensor(float(acc), dtype=torch.float32, device=self.device)
            parts = []
            for k in range(acc):
                self._set_dropout(s, k)
                lk = self._loss(self.model(x[k * mb : (k + 1) * mb]), y[k * mb : (k + 1) * mb])
                (lk / div).backward()
                parts.append(float(lk.detach().to("cpu")))
            value = math.fsum(parts) / acc
        if self.clip_norm is not None:
            RF.clip_grad_norm_([p for n, p in self.named_params if n in self.trainable], self.clip_norm)
        self.opt.step()
        return value

    def train_steps(self, n: int, on_step: Callable[[int, float], None] | None = None) -> float | None:
        """Take ``n`` optimizer steps; ``on_step(step_after, loss)`` after each. Returns the last loss."""
        if self.step is None:
            raise EngineError("the trainer has no state yet: call init() or load()")
        if self.step + n > self.spec.total_steps:
            raise EngineError(f"{n} more steps from step {self.step} would pass total_steps {self.spec.total_steps}")
        self.model.train()
        with repro_mode(self.mode):
            for _ in range(n):
                s = self.step
                self.last_loss = self._one_step(s)
                self.step = s + 1
                self._losses.append((self.step, self.last_loss))
                if on_step is not None:
                    on_step(self.step, self.last_loss)
        self._set_dropout(None)
        return self.last_loss

    def run_segment(self, pre_state: TrainingState) -> TrainingState:
        """Load ``pre_state`` (a checkpoint boundary) and run one segment; returns the post-state."""
        interval = self.spec.checkpoint_interval
        if pre_state.step % interval or pre_state.step >= self.spec.total_steps:
            raise StateMismatch(
                f"pre-state step {pre_state.step} is not the start of a segment "
                f"(multiples of {interval} below {self.spec.total_steps})"
            )
        self.load(pre_state)
        self.train_steps(interval)
        return self.state()

    @torch.no_grad()
    def evaluate(self, which: str = "heldout", max_examples: int | None = None, chunk: int = 256) -> dict:
        """Mean loss (per token for the LM) and, for classifiers, accuracy over the held-out examples
        (``which="heldout"``, the default; falls back to nothing when the split is empty) or the training set.

        In exact mode the result is the same on every machine: each example's loss is computed by the exact
        kernels (independent of ``chunk``: rows never mix), the total is ``math.fsum`` of those float32
        values (correctly rounded, so in no particular order), the accuracy an integer count."""
        b = self.batches
        idx = b.heldout_indices() if which == "heldout" else np.arange(b.n_train, dtype=np.int64)
        if max_examples is not None:
            idx = idx[:max_examples]
        if idx.size == 0:
            return {"examples": 0}
        self.model.eval()
        self._set_dropout(None)
        losses: list[float] = []
        correct = 0
        with repro_mode(self.mode):
            for lo in range(0, idx.size, chunk):
                x, y = b.examples(idx[lo : lo + chunk])
                out = self.model(x)
                nll = self._loss(out, y, reduction="none").to("cpu", torch.float64)
                losses.extend(nll.reshape(-1).tolist())
                if not self.is_lm:
                    correct += int((out.argmax(dim=-1) == y).cpu().numpy().sum())  # an integer count
        self.model.train()
        res = {"examples": int(idx.size), "loss": math.fsum(losses) / len(losses)}
        if not self.is_lm:
            res["accuracy"] = correct / idx.size
        return res


# ---------------------------------------------------------------------------------------------- functions


def initial_parameters(spec: JobSpec, weights: TrainingState | None = None) -> dict[str, torch.Tensor]:
    """Parameter values of a job's initial state (CPU float32, by ``named_parameters`` name): the seeded init, or
    the given ``weights`` (with ``init.fresh`` parameters and LoRA adapters the weights lack drawn from the seed).
    Raises WeightsMismatch for weights that are missing or do not fit the model."""
    cpu_model = build_model(spec.model, False, spec.lora)
    names = {n: tuple(p.shape) for n, p in cpu_model.named_parameters()}
    if not isinstance(spec.init, WeightsInit):
        init_parameters(cpu_model, spec.seed)
        return {n: p.detach() for n, p in cpu_model.named_parameters()}
    w = weights
    if w is None:
        raise WeightsMismatch(
            f"this job starts from given weights (state root {spec.init.state_root}); load them first"
        )
    fresh = {n for n in names if _matches(n, spec.init.fresh)}
    given: dict[str, torch.Tensor] = {}
    is_checkpoint = "engine" in (w.meta or {})
    if not is_checkpoint and (w.meta or {}).get("kind") != WEIGHTS_KIND:
        raise WeightsMismatch(
            f"the initial weights are not a weights state (meta kind {(w.meta or {}).get('kind')!r}) nor a "
            "veritrain checkpoint; convert them with `veritrain state import`"
        )
    for key, t in w.tensors.items():
        if not key.startswith("param/"):
            if is_checkpoint and key.startswith("optim/"):
                continue  # a finished job's optimizer state: a fine-tune starts a fresh optimizer
            raise WeightsMismatch(f"initial weights hold {key!r}, which is not a parameter ('param/<name>')")
        name = key.removeprefix("param/")
        if name in fresh or _matches(name, spec.init.fresh):
            continue
        if name not in names:
            raise WeightsMismatch(
                f"initial weights hold {name!r}, which the model does not have (list it in init.fresh to "
                f"ignore it); the model's parameters are {sorted(names)[:12]}"
            )
        if t.dtype != torch.float32 or tuple(t.shape) != names[name]:
            raise WeightsMismatch(
                f"initial weight {name!r} is {t.dtype} {tuple(t.shape)}, the model needs float32 {names[name]}"
            )
        given[name] = t
    adapters = {n for n in names if n.endswith((".lora_A", ".lora_B"))}
    seeded = fresh | (adapters - set(given))
    missing = sorted(set(names) - set(given) - seeded)
    if missing:
        raise WeightsMismatch(
            f"initial weights lack {missing[:8]} (name them in init.fresh to draw them from the seed)"
        )
    init_parameters(cpu_model, spec.seed, only=seeded)
    return {n: (given[n] if n in given else p.detach()) for n, p in cpu_model.named_parameters()}


def initial_state(spec: JobSpec, dataset: Dataset, weights: TrainingState | None = None) -> TrainingState:
    """The job's initial state (from ``weights`` when the spec's ``init`` names them); its root is ``C_init``."""
    return Trainer(spec, dataset, weights=weights).init()


def run_segment(
    spec: JobSpec,
    pre_state: TrainingState,
    dataset: Dataset,
    device: str | torch.device = "cpu",
) -> TrainingState:
    """Run the segment that starts at ``pre_state`` (``checkpoint_interval`` optimizer steps); the post-state."""
    return Trainer(spec, dataset, device).run_segment(pre_state)


@dataclass
class JobResult:
    """What a job run produced; roots are 32 raw bytes."""

    init_state_root: bytes
    trajectory_root: bytes
    final_state_root: bytes
    leaves: list[bytes]
    final_loss: float | None
    seconds: float
    steps_run: int
    spec: JobSpec
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "trajectory_root": "0x" + self.trajectory_root.hex(),
            "final_state_root": "0x" + self.final_state_root.hex(),
            "init_state_root": "0x" + self.init_state_root.hex(),
            "leaves": len(self.leaves),
            "seconds": round(self.seconds, 3),
            "final_loss": self.final_loss,
            "steps_run": self.steps_run,
            **self.extra,
        }


class SegmentDone:
    """Passed to ``on_segment`` after each leaf is stored and appended."""

    def __init__(self, index: int, root: bytes, state: TrainingState) -> None:
        self.index, self.root, self.state = index, root, state


def run_job(
    spec: JobSpec,
    dataset: Dataset,
    store,
    trajectory,
    *,
    device: str | torch.device = "cpu",
    on_step: Callable[[int, float], None] | None = None,
    on_segment: Callable[[SegmentDone], None] | None = None,
    trainer: Trainer | None = None,
    weights: TrainingState | None = None,
) -> JobResult:
    """Run (or finish) a job: every checkpoint into ``store`` (``put_state``, addressed by its state root, the
    initial state included), every leaf appended to ``trajectory``.

    If ``trajectory`` already holds ``k`` leaves (a crashed or interrupted run), training resumes from leaf
    ``k-1``'s stored checkpoint and reaches the same roots as an uninterrupted run. Raises EngineError if the
    spec's ``init_state_root`` is set and differs from the computed ``C_init``.
    """
    t0 = time.perf_counter()
    t = trainer or Trainer(spec, dataset, device, weights=weights)
    init = t.init()
    init_buffers = serialize(init)
    init_root = state_root(init)
    if spec.init_state_root is not None and spec.init_state_root != "0x" + init_root.hex():
        raise EngineError(
            f"the spec's init_state_root is {spec.init_state_root} but this engine's initial state hashes to "
            f"0x{init_root.hex()} (different model, seed, data or engine version)"
        )
    store.put_state(init_buffers, expected=init_root)
    n = spec.num_segments
    done = len(trajectory)
    if done > n:
        raise EngineError(f"the trajectory holds {done} leaves but the job has only {n} segments")
    if done:
        root = trajectory.leaf(done - 1)
        pre = deserialize(store.get(root, "state"), expected_root=root)
        if pre.step != done * spec.checkpoint_interval:
            raise StateMismatch(
                f"leaf {done - 1} is a state at step {pre.step}, expected {done * spec.checkpoint_interval}"
            )
        t.load(pre)
    steps_before = t.current_step
    for i in range(done, n):
        t.train_steps(spec.checkpoint_interval, on_step)
        st = t.state()
        buffers = serialize(st)
        root = state_root(st)
        store.put_state(buffers, expected=root)
        trajectory.append(root)
        if on_segment is not None:
            on_segment(SegmentDone(i, root, st))
    leaves = trajectory.leaves()
    return JobResult(
        init_state_root=init_root,
        trajectory_root=trajectory.root(),
        final_state_root=leaves[-1],
        leaves=leaves,
        final_loss=t.last_loss,
        seconds=time.perf_counter() - t0,
        steps_run=t.current_step - steps_before,
        spec=spec if spec.init_state_root else spec.with_init_root(init_root),
    )
