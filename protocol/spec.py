"""The job spec: what to train, on what data, how, and how replay is judged (DESIGN §3 "Job spec", §4).

A spec is a JSON document validated by :class:`JobSpec` (pydantic v2). ``spec_hash`` is the SHA-256 of its
canonical JSON (sorted keys, no spaces, ASCII; the version-1 fields with their defaults included, so two
documents that mean the same spec hash the same). The spec and the dataset live in the blob store; only
``spec_hash``, the dataset digest and ``init_state_root`` go on-chain (in the signed ``JobOrder``).

Versions. ``version`` 1 is the original field set. ``version`` 2 adds what fine-tuning jobs need — initial
weights (``init``), a learning-rate ``schedule``, gradient clipping (``clip_grad_norm``), gradient accumulation
(``grad_accumulation``), frozen parameters (``freeze``), LoRA adapters (``lora``), held-out ``evaluation`` at
every checkpoint, and for datasets ``parquet`` files, declared ``columns`` and a byte-level ``tokenizer``.
A field added in version 2 is written into the canonical JSON only when it differs from its default, so every
version-1 document keeps the bytes, hash and state roots it always had; using any of them needs
``"version": 2`` (a version-1 reader rejects the unknown fields instead of silently ignoring them).

Invalid specs raise :class:`SpecError`, whose message lists every wrong field by its JSON path and why.
"""

from __future__ import annotations

import hashlib
import json
import re
from fnmatch import fnmatchcase
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from protocol.errors import VeritrainError
from protocol.state import canonical_json

SPEC_VERSION: Final = 1
#: The newest spec version this code reads (see the module docstring).
LATEST_SPEC_VERSION: Final = 2
MAX_TOTAL_STEPS = 10_000_000
_HEX32 = re.compile(r"^0x[0-9a-f]{64}$")


class SpecError(VeritrainError, ValueError):
    """A job spec that does not validate; ``errors`` holds (json path, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        lines = "\n".join(f"  - {path}: {msg}" for path, msg in errors)
        super().__init__(f"invalid job spec ({len(errors)} problem{'s' if len(errors) != 1 else ''}):\n{lines}")


def _hex32(value: str) -> str:
    if not isinstance(value, str) or not _HEX32.match(value):
        raise ValueError("must be 0x followed by 64 lowercase hex digits (a 32-byte SHA-256 digest)")
    return value


Hex32 = Annotated[str, Field(examples=["0x" + "ab" * 32])]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Fields added in spec version 2, with the default a version-1 document implies: they are left out of the
    #: dump (and so of the canonical JSON and every hash) while they hold that default.
    _V2_DEFAULTS: ClassVar[dict[str, Any]] = {}

    @model_serializer(mode="wrap")
    def _omit_v2_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        doc = handler(self)
        for name, default in self._V2_DEFAULTS.items():
            if getattr(self, name) == default:
                doc.pop(name, None)
        return doc

    def v2_fields_set(self) -> list[str]:
        """The version-2 fields of this object (not nested ones) that differ from their defaults."""
        return [name for name, default in self._V2_DEFAULTS.items() if getattr(self, name) != default]


# ------------------------------------------------------------------ models


class MLPConfig(_Strict):
    """Fully connected classifier: input → hidden layers (activation) → logits."""

    kind: Literal["mlp"] = "mlp"
    input_dim: int = Field(gt=0, le=1 << 20)
    hidden: list[Annotated[int, Field(gt=0, le=1 << 16)]] = Field(min_length=0, max_length=16)
    num_classes: int = Field(gt=1, le=1 << 16)
    activation: Literal["relu", "gelu", "tanh"] = "relu"


class CNNConfig(_Strict):
    """Small convolutional classifier: [conv k×k (same padding) → relu → 2×2 max-pool] per channel entry,
    then a linear head."""

    kind: Literal["cnn"] = "cnn"
    in_channels: int = Field(gt=0, le=64)
    image_size: int = Field(gt=1, le=512, description="height = width, pixels")
    channels: list[Annotated[int, Field(gt=0, le=1024)]] = Field(min_length=1, max_length=8)
    kernel_size: int = Field(3, gt=0, le=11)
    num_classes: int = Field(gt=1, le=1 << 16)

    @model_validator(mode="after")
    def _fits(self) -> CNNConfig:
        if self.image_size >> len(self.channels) < 1:
            raise ValueError(f"image_size {self.image_size} is too small for {len(self.channels)} 2x2 poolings")
        if self.kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd (same padding)")
        return self


class TransformerLMConfig(_Strict):
    """Decoder-only transformer language model (pre-norm, learned positions, GELU MLP, tied embeddings)."""

    kind: Literal["transformer_lm"] = "transformer_lm"
    vocab_size: int = Field(gt=1, le=1 << 17)
    context: int = Field(gt=1, le=4096)
    d_model: int = Field(gt=0, le=4096)
    n_heads: int = Field(gt=0, le=64)
    n_layers: int = Field(gt=0, le=48)
    d_ff: int = Field(gt=0, le=16384)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerLMConfig:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        return self


ModelConfig = Annotated[MLPConfig | CNNConfig | TransformerLMConfig, Field(discriminator="kind")]


# ------------------------------------------------------------------ data


class DatasetColumns(_Strict):
    """Which fields of a tabular or archive dataset are what (version 2).

    * ``csv`` (with a header row) and ``parquet``, classification: ``features`` (numeric columns, in this order)
      and ``label`` (an integer column);
    * ``parquet``, text: ``text`` (a string column; rows are joined with one newline);
    * ``npz``: ``x`` and ``y``, the array names (default ``x`` and ``y``).
    """

    features: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = Field(
        None, min_length=1, max_length=1 << 16
    )
    label: str | None = Field(None, min_length=1, max_length=256)
    text: str | None = Field(None, min_length=1, max_length=256)
    x: str | None = Field(None, min_length=1, max_length=256)
    y: str | None = Field(None, min_length=1, max_length=256)

    @model_validator(mode="after")
    def _one_kind(self) -> DatasetColumns:
        tabular = self.features is not None or self.label is not None
        if tabular and (self.features is None or self.label is None):
            raise ValueError("tabular columns need both 'features' and 'label'")
        if sum((tabular, self.text is not None, self.x is not None or self.y is not None)) != 1:
            raise ValueError("name either 'features' + 'label', or 'text', or the npz arrays 'x' / 'y'")
        return self


class DatasetRef(_Strict):
    """The training data. ``digest`` is the SHA-256 blob address of the dataset bytes, also for builtin
    datasets (their generated bytes), so replay can prove it used the same data."""

    format: Literal["builtin", "npz", "csv", "text", "parquet"]
    digest: Hex32
    builtin: str | None = Field(None, description="name of a bundled dataset when format is 'builtin'")
    holdout_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="tail share of examples kept for evaluation")
    columns: DatasetColumns | None = Field(None, description="declared schema of csv/parquet/npz data (version 2)")
    tokenizer: Literal["char", "byte"] = Field(
        "char", description="text data: 'char' (sorted code points of the text) or 'byte' (UTF-8 bytes, 0..255)"
    )

    _V2_DEFAULTS: ClassVar[dict[str, Any]] = {"columns": None, "tokenizer": "char"}
    _check_digest = field_validator("digest")(classmethod(lambda cls, v: _hex32(v)))

    @model_validator(mode="after")
    def _builtin_named(self) -> DatasetRef:
        if (self.format == "builtin") != (self.builtin is not None):
            raise ValueError("'builtin' names the dataset exactly when format is 'builtin'")
        c = self.columns
        if c is not None:
            if self.format in ("builtin", "text"):
                raise ValueError(f"'columns' does not apply to {self.format} data")
            if self.format == "npz" and (c.x is None and c.y is None):
                raise ValueError("npz columns name the arrays 'x' and/or 'y'")
            if self.format == "csv" and c.features is None:
                raise ValueError("csv columns name 'features' and 'label' (the header's column names)")
            if self.format == "parquet" and c.x is not None:
                raise ValueError("parquet columns name 'features' + 'label', or 'text'")
        if self.format == "parquet" and c is None:
            raise ValueError("parquet data needs 'columns' ('features' + 'label', or 'text')")
        return self

    @property
    def is_text(self) -> bool:
        """Whether the data is a token stream (for a language model) rather than labelled examples."""
        return self.format == "text" or (
            self.format == "parquet" and self.columns is not None and bool(self.columns.text)
        )


# ------------------------------------------------------------- optimizer


class SGDConfig(_Strict):
    kind: Literal["sgd"] = "sgd"
    lr: float = Field(gt=0.0, le=10.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0, lt=1.0)


class AdamWConfig(_Strict):
    kind: Literal["adamw"] = "adamw"
    lr: float = Field(gt=0.0, le=10.0)
    beta1: float = Field(0.9, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    eps: float = Field(1e-8, gt=0.0, le=1.0)
    weight_decay: float = Field(0.01, ge=0.0, lt=1.0)


OptimizerConfig = Annotated[SGDConfig | AdamWConfig, Field(discriminator="kind")]


# ------------------------------------------------------- fine-tuning (version 2)


class SeededInit(_Strict):
    """Parameters drawn from the counter RNG keyed by the job seed (:mod:`protocol.engine.models`)."""

    kind: Literal["seeded"] = "seeded"


class WeightsInit(_Strict):
    """Start from given weights: a canonical *weights state* (``veritrain state import``: tensors
    ``param/<name>``, step 0, meta ``{"kind": "weights"}``) stored in the blob store under its state root.

    The job's initial state (whose root is ``C_init``) is those parameter values plus the job's metadata; a
    parameter whose name matches a ``fresh`` pattern (e.g. a new classification head) and every LoRA adapter
    not in the weights is drawn from the seed instead, and weights tensors matching ``fresh`` are ignored.
    """

    kind: Literal["weights"] = "weights"
    state_root: Hex32
    fresh: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(default_factory=list, max_length=256)

    _check_root = field_validator("state_root")(classmethod(lambda cls, v: _hex32(v)))


InitConfig = Annotated[SeededInit | WeightsInit, Field(discriminator="kind")]


class ScheduleConfig(_Strict):
    """Learning rate of optimizer step ``s`` (0-based) = the optimizer's ``lr`` × a multiplier
    (:mod:`protocol.engine.schedule` computes it exactly):

    * warm-up, ``s < warmup_steps``: ``(s + 1) / warmup_steps``;
    * then ``decay`` over ``D = decay_steps`` (default ``total_steps``) with ``t = (s - warmup) / (D - warmup)``
      clamped to [0, 1] and ``f = final_lr_fraction``: ``constant`` 1; ``linear`` ``1 - (1 - f)·t``; ``cosine``
      ``f + (1 - f)·(1 + cos(π·t))/2``.
    """

    warmup_steps: int = Field(0, ge=0, le=MAX_TOTAL_STEPS)
    decay: Literal["constant", "linear", "cosine"] = "constant"
    decay_steps: int | None = Field(None, gt=0, le=MAX_TOTAL_STEPS)
    final_lr_fraction: float = Field(0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _steps(self) -> ScheduleConfig:
        if self.decay_steps is not None and self.decay_steps <= self.warmup_steps:
            raise ValueError(f"decay_steps ({self.decay_steps}) must exceed warmup_steps ({self.warmup_steps})")
        return self


class LoRAConfig(_Strict):
    """Low-rank adapters on linear layers: ``y = x·Wᵀ + b + scale·((x·Aᵀ)·Bᵀ)`` with ``A`` (rank × in), ``B``
    (out × rank), ``scale = f32(alpha / rank)``; ``A`` from the seed (uniform, bound ``1/sqrt(in)``), ``B`` zero.
    Every other parameter is frozen except those matching ``train`` (e.g. a classification head)."""

    rank: int = Field(gt=0, le=1024)
    alpha: float = Field(gt=0.0, le=1 << 16)
    targets: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(min_length=1, max_length=256)
    train: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(default_factory=list, max_length=256)


class EvalConfig(_Strict):
    """Held-out evaluation at every checkpoint, recorded in the checkpoint's ``meta.metrics`` (so the leaf
    commits to it and a replay proves it): mean loss (per token for a language model), accuracy for
    classifiers, the segment's mean training loss and the last learning rate."""

    max_examples: int | None = Field(None, gt=0, le=1 << 24, description="evaluate the first N held-out examples")


# ------------------------------------------------------------------ modes


class ExactMode(_Strict):
    """Bitwise replay with veritrain's reproducible kernels; disputes are binding on-chain."""

    kind: Literal["exact"] = "exact"
    kernel_set: str = Field(min_length=1, max_length=64, description="kernel-set version, e.g. 'repro-cpu-v1'")


class ToleranceMode(_Strict):
    """Native torch; a replayed segment is accepted when its distance to the claimed leaf is within bounds
    (Proof-of-Learning style); disputes end in committee arbitration with the same thresholds."""

    kind: Literal["tolerance"] = "tolerance"
    l2: float = Field(1e-3, gt=0.0, description="max relative L2 distance of all parameters")
    linf: float = Field(1e-2, gt=0.0, description="max absolute difference of any parameter")
    cosine: float = Field(0.9999, gt=0.0, le=1.0, description="min cosine similarity of the parameter vectors")


ExecutionMode = Annotated[ExactMode | ToleranceMode, Field(discriminator="kind")]


# -------------------------------------------------------------------- spec


class JobSpec(_Strict):
    """A complete, hashable description of one training job."""

    version: Literal[1, 2] = SPEC_VERSION
    model: ModelConfig
    dataset: DatasetRef
    optimizer: OptimizerConfig
    batch_size: int = Field(gt=0, le=1 << 16)
    total_steps: int = Field(gt=0, le=MAX_TOTAL_STEPS)
    checkpoint_interval: int = Field(gt=0, le=MAX_TOTAL_STEPS)
    seed: int = Field(ge=0, lt=1 << 64)
    mode: ExecutionMode
    init_state_root: Hex32 | None = Field(
        None, description="C_init, the state root of the initial model; filled in by `veritrain` before signing"
    )
    # ---- version 2
    init: InitConfig = Field(default_factory=SeededInit, description="where the initial parameters come from")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="learning-rate schedule")
    clip_grad_norm: float | None = Field(None, gt=0.0, le=1e6, description="clip the global gradient L2 norm")
    grad_accumulation: int = Field(1, ge=1, le=1 << 12, description="micro-batches per optimizer step")
    freeze: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=256, description="parameter-name patterns (fnmatch) that do not train"
    )
    lora: LoRAConfig | None = None
    evaluation: EvalConfig | None = None

    _V2_DEFAULTS: ClassVar[dict[str, Any]] = {
        "init": SeededInit(),
        "schedule": ScheduleConfig(),
        "clip_grad_norm": None,
        "grad_accumulation": 1,
        "freeze": [],
        "lora": None,
        "evaluation": None,
    }

    @field_validator("init_state_root")
    @classmethod
    def _check_root(cls, v: str | None) -> str | None:
        return None if v is None else _hex32(v)

    @model_validator(mode="after")
    def _schedule(self) -> JobSpec:
        if self.total_steps % self.checkpoint_interval:
            raise ValueError(
                f"total_steps ({self.total_steps}) must be a multiple of checkpoint_interval "
                f"({self.checkpoint_interval})"
            )
        newer = self.v2_fields_set() + [f"dataset.{n}" for n in self.dataset.v2_fields_set()]
        if self.dataset.format == "parquet":
            newer.append("dataset.format 'parquet'")
        if newer and self.version < 2:
            raise ValueError(f'{", ".join(newer)} need "version": 2')
        if self.batch_size % self.grad_accumulation:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be a multiple of grad_accumulation ({self.grad_accumulation})"
            )
        if self.lora is not None and self.freeze:
            raise ValueError("'freeze' and 'lora' do not combine: with LoRA only the adapters (and lora.train) train")
        if self.evaluation is not None and self.dataset.holdout_fraction == 0.0:
            raise ValueError("evaluation needs held-out data: set dataset.holdout_fraction above 0")
        if self.dataset.tokenizer == "byte" and isinstance(self.model, TransformerLMConfig):
            if self.model.vocab_size < 256:
                raise ValueError(f"a byte tokenizer needs model.vocab_size >= 256, not {self.model.vocab_size}")
        return self

    def trainable(self, name: str) -> bool:
        """Whether parameter ``name`` (a ``named_parameters`` name of the model, adapters included) trains."""
        if self.lora is not None:
            return name.endswith((".lora_A", ".lora_B")) or any(fnmatchcase(name, p) for p in self.lora.train)
        return not any(fnmatchcase(name, p) for p in self.freeze)

    @property
    def num_segments(self) -> int:
        """N, the number of leaves / segments."""
        return self.total_steps // self.checkpoint_interval

    def canonical_json(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    def spec_hash(self) -> bytes:
        """SHA-256 of the canonical JSON (32 raw bytes)."""
        return hashlib.sha256(self.canonical_json()).digest()

    def with_init_root(self, root: bytes) -> JobSpec:
        return self.model_copy(update={"init_state_root": "0x" + root.hex()})


def _format_errors(exc: ValidationError) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(spec)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        out.append((path, msg))
    return out


def parse_spec(data: bytes | str | dict[str, Any]) -> JobSpec:
    """Validate a spec from JSON bytes/text or a dict; raises SpecError naming every wrong field."""
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise SpecError([("(document)", f"not valid JSON: {exc}")]) from None
    if not isinstance(data, dict):
        raise SpecError([("(document)", "a job spec is a JSON object")])
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_errors(exc)) from None


def spec_hash(spec: JobSpec) -> bytes:
    return spec.spec_hash()
