"""Training data: bundled and uploaded datasets, their canonical bytes, the held-out split and the batch order.

Canonical bytes and digests
---------------------------
Every dataset is a byte string whose SHA-256 is the spec's ``dataset.digest`` (DESIGN §3: only that hash goes
on-chain). Loading always recomputes it and refuses data that does not match
(:class:`DatasetDigestMismatch`).

========  ==========================================================================================
format    canonical bytes → examples
========  ==========================================================================================
builtin   ``digits``: the gunzipped ``data/digits.csv.gz`` (1,797 rows of 64 pixels 0..16 and a label),
          decoded as ``csv``, pixels scaled by 1/16 (exact). ``alice``: ``data/alice29.txt``, decoded as
          ``text``. See ``data/README.md`` for provenance and licences.
csv       UTF-8 text, one example per line, comma-separated numbers; the last column is the integer class
          label, the others the features (float32, parsed as binary64 then rounded). A first line with a
          non-numeric field is a header and skipped. Blank lines are ignored. With declared ``columns``
          (spec version 2) the first line must be the header, and ``features`` (in that order) and ``label``
          are picked from it by name.
npz       a numpy ``.npz`` archive (no pickles) with arrays ``x`` (n, …) → float32 and ``y`` (n,) integer
          labels (``columns.x`` / ``columns.y`` rename them).
text      UTF-8 text; character-level tokens: the vocabulary is the sorted set of code points in the text,
          token = rank in that order. With ``tokenizer: "byte"``: tokens are the UTF-8 bytes (0..255).
parquet   an Apache Parquet file read with pyarrow. ``columns.features`` + ``columns.label``: numeric
          feature columns (→ binary64 → float32) and an integer label column, one example per row.
          ``columns.text``: a string column; the rows joined with newlines are the text (tokenised as above).
          Nulls are refused.
========  ==========================================================================================

Examples, split, order
----------------------
A classification dataset has one example per row. A text dataset, for a model with context ``T``, has
``n = (len(tokens) - 1) // T`` examples: window ``i`` is tokens ``[i·T, i·T + T + 1)`` (inputs the first
``T``, targets the last ``T``).

The held-out split is the tail: ``n_hold = floor(n · holdout_fraction)`` (binary64 product), training examples
are ``0 … n - n_hold - 1``.

Batch order (counter-based, :mod:`protocol.engine.rng`): the training examples are consumed epoch by epoch,
each epoch in the order of ``permutation(seed, "data/order", epoch, n_train)``. The batch of optimizer step
``s`` (0-based: the step that turns state ``s`` into state ``s+1``) holds the examples at global positions
``p = s·B + j`` for ``j = 0 … B-1``: ``perm(epoch = p // n_train)[p % n_train]``. Any step's batch is
computable on its own; the *data cursor* after ``s`` steps is ``s·B``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from protocol.errors import VeritrainError
from protocol.spec import DatasetColumns, DatasetRef, JobSpec, TransformerLMConfig

from .rng import permutation

DATA_DIR = Path(__file__).resolve().parent / "data"

__all__ = [
    "BUILTINS",
    "Batches",
    "DATA_DIR",
    "Dataset",
    "DatasetDigestMismatch",
    "DatasetError",
    "DatasetMissing",
    "builtin_bytes",
    "builtin_digest",
    "decode",
    "load_dataset",
    "sha256_hex",
]


class DatasetError(VeritrainError, ValueError):
    """Dataset bytes that cannot be decoded, or that do not fit the model the spec describes."""


class DatasetMissing(VeritrainError, FileNotFoundError):
    """The dataset a spec names could not be found (not builtin, not in the blob store, no file given)."""


class DatasetDigestMismatch(DatasetError):
    """Dataset bytes whose SHA-256 differs from the digest the spec names."""


def sha256_hex(data: bytes) -> str:
    return "0x" + hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------------------------- datasets


@dataclass
class Dataset:
    """Decoded examples. Classification: ``x`` (n, …) float32, ``y`` (n,) int64. Text: ``tokens`` (L,) int64
    and ``vocab`` (the characters, in token order)."""

    digest: str
    name: str
    x: torch.Tensor | None = None
    y: torch.Tensor | None = None
    tokens: torch.Tensor | None = None
    vocab: list[str] = field(default_factory=list)

    @property
    def is_text(self) -> bool:
        return self.tokens is not None

    def text_tokens(self) -> torch.Tensor:
        """``tokens`` of a text dataset."""
        if self.tokens is None:
            raise DatasetError(f"{self.name} is a classification dataset, not text")
        return self.tokens

    def features_labels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of a classification dataset."""
        if self.x is None or self.y is None:
            raise DatasetError(f"{self.name} is a text dataset, not a classification dataset")
        return self.x, self.y

    def num_examples(self, context: int | None = None) -> int:
        if self.is_text:
            if not context:
                raise ValueError("a text dataset needs the model's context to count examples")
            return max(0, (self.text_tokens().numel() - 1) // context)
        return int(self.features_labels()[0].shape[0])

    def describe(self) -> str:
        if self.is_text:
            return f"{self.name}: {self.text_tokens().numel()} characters, vocabulary {len(self.vocab)}"
        x = self.features_labels()[0]
        return f"{self.name}: {x.shape[0]} examples of shape {tuple(x.shape[1:])}"


def _decode_csv(data: bytes, name: str, columns: DatasetColumns | None = None) -> tuple[np.ndarray, np.ndarray]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{name}: a csv dataset must be UTF-8 text ({exc})") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DatasetError(f"{name}: the csv file has no rows")
    pick = None
    if columns is not None:
        header = [h.strip() for h in lines[0].split(",")]
        want = [*(columns.features or []), columns.label]
        missing = [c for c in want if c not in header]
        if missing:
            raise DatasetError(f"{name}: the csv header has no column {missing[0]!r} (it has {header[:20]})")
        pick = [header.index(c) for c in want if c is not None]  # an undeclared label is reported missing above
        lines = lines[1:]
        if not lines:
            raise DatasetError(f"{name}: the csv file has a header but no rows")
    try:
        [float(v) for v in lines[0].split(",")]
    except ValueError:
        lines = lines[1:]  # header
    rows = []
    width = None
    for lineno, ln in enumerate(lines, start=1):
        parts = ln.split(",")
        if width is None:
            width = len(parts)
            if width < 2:
                raise DatasetError(f"{name}: a csv row needs at least one feature and a label")
        elif len(parts) != width:
            raise DatasetError(f"{name}: row {lineno} has {len(parts)} columns, the first row has {width}")
        try:
            rows.append([float(v) for v in parts])
        except ValueError:
            raise DatasetError(f"{name}: row {lineno} has a value that is not a number: {ln[:80]!r}") from None
    arr = np.asarray(rows, dtype=np.float64)
    if pick is not None:
        arr = arr[:, pick]
    if not np.isfinite(arr).all():
        raise DatasetError(f"{name}: the csv holds NaN or infinite values")
    return arr[:, :-1], arr[:, -1]


def _labels(y: np.ndarray, name: str) -> np.ndarray:
    if y.ndim != 1:
        raise DatasetError(f"{name}: labels must be a 1-D array, got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DatasetError(f"{name}: class labels must be integers")
    elif y.dtype.kind not in "iu":
        raise DatasetError(f"{name}: class labels must be integers, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise DatasetError(f"{name}: class labels must be >= 0")
    return y


def _decode_npz(data: bytes, name: str, columns: DatasetColumns | None = None) -> tuple[np.ndarray, np.ndarray]:
    xn = (columns.x if columns is not None else None) or "x"
    yn = (columns.y if columns is not None else None) or "y"
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            if xn not in z.files or yn not in z.files:
                raise DatasetError(f"{name}: an npz dataset needs arrays {xn!r} and {yn!r}, found {sorted(z.files)}")
            x, y = z[xn], z[yn]
    except DatasetError:
        raise
    except Exception as exc:  # numpy raises ValueError/OSError/BadZipFile for bad archives
        raise DatasetError(f"{name}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    if x.dtype.kind not in "fiub":
        raise DatasetError(f"{name}: 'x' must be numeric, got dtype {x.dtype}")
    if x.ndim < 1 or x.shape[0] != y.shape[0]:
        raise DatasetError(f"{name}: 'x' has {x.shape[0] if x.ndim else 0} rows, 'y' has {y.shape[0]}")
    x = x.astype(np.float64) if x.dtype.kind != "f" else x
    if not np.isfinite(x).all():
        raise DatasetError(f"{name}: 'x' holds NaN or infinite values")
    return x, y


def _text_tokens(text: str, name: str, digest: str, tokenizer: str) -> Dataset:
    if len(text) < 2:
        raise DatasetError(f"{name}: the text is too short to train on")
    if tokenizer == "byte":
        raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)
        vocab = [chr(i) for i in range(256)]  # token i is the byte i (shown as the Latin-1 character)
        return Dataset(digest=digest, name=name, tokens=torch.from_numpy(raw), vocab=vocab)
    vocab = sorted(set(text))
    lookup = np.zeros(max(map(ord, vocab)) + 1, dtype=np.int64)
    lookup[[ord(c) for c in vocab]] = np.arange(len(vocab))
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int64)
    return Dataset(digest=digest, name=name, tokens=torch.from_numpy(lookup[codes]), vocab=vocab)


def _read_parquet(data: bytes, name: str, wanted: list[str]):
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - a dependency
        raise DatasetError(f"{name}: reading parquet needs pyarrow ({exc})") from None
    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for bad files
        raise DatasetError(f"{name}: not a readable parquet file ({type(exc).__name__}: {exc})") from None
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        raise DatasetError(f"{name}: the parquet file has no column {missing[0]!r} (it has {table.column_names[:20]})")
    for c in wanted:
        if table.column(c).null_count:
            raise DatasetError(f"{name}: column {c!r} holds {table.column(c).null_count} nulls")
    return table


def _decode_parquet(data: bytes, name: str, digest: str, columns: DatasetColumns, tokenizer: str):
    if columns.text is not None:
        import pyarrow as pa

        table = _read_parquet(data, name, [columns.text])
        col = table.column(columns.text)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            raise DatasetError(f"{name}: text column {columns.text!r} is {col.type}, not a string column")
        return _text_tokens("\n".join(col.to_pylist()), name, digest, tokenizer)
    feats = list(columns.features or [])
    table = _read_parquet(data, name, [*feats, columns.label or ""])
    try:
        x = np.stack([table.column(c).to_numpy().astype(np.float64) for c in feats], axis=1)
        y = table.column(columns.label).to_numpy()
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{name}: the feature and label columns must be numeric ({exc})") from None
    if not np.isfinite(x).all():
        raise DatasetError(f"{name}: the feature columns hold NaN or infinite values")
    return x, y


def decode(
    fmt: str,
    data: bytes,
    name: str = "dataset",
    digest: str | None = None,
    columns: DatasetColumns | None = None,
    tokenizer: str = "char",
) -> Dataset:
    """Decode canonical bytes of format ``csv``, ``npz``, ``text`` or ``parquet`` (see the module docstring)."""
    digest = digest or sha256_hex(data)
    if fmt == "text":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{name}: a text dataset must be UTF-8 ({exc})") from None
        return _text_tokens(text, name, digest, tokenizer)
    if fmt == "csv":
        x, y = _decode_csv(data, name, columns)
    elif fmt == "npz":
        x, y = _decode_npz(data, name, columns)
    elif fmt == "parquet":
        if columns is None:
            raise DatasetError(f"{name}: parquet data needs declared columns")
        got = _decode_parquet(data, name, digest, columns, tokenizer)
        if isinstance(got, Dataset):
            return got
        x, y = got
    else:
        raise DatasetError(f"{name}: unknown dataset format {fmt!r}")
    y = _labels(np.asarray(y), name)
    if x.shape[0] == 0:
        raise DatasetError(f"{name}: the dataset has no examples")
    return Dataset(
        digest=digest,
        name=name,
        x=torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        y=torch.from_numpy(y),
    )


# ----------------------------------------------------------------------------------------------- builtins

#: name → (file under data/, format of the canonical bytes, description)
BUILTINS: dict[str, tuple[str, str, str]] = {
    "digits": ("digits.csv.gz", "csv", "UCI optdigits 8x8 handwritten digits, 1797 images, 10 classes"),
    "alice": ("alice29.txt", "text", "Lewis Carroll, Alice's Adventures in Wonderland (public domain)"),
}


def builtin_bytes(name: str) -> bytes:
    """The canonical bytes of a bundled dataset."""
    if name not in BUILTINS:
        raise DatasetMissing(f"unknown builtin dataset {name!r}; bundled datasets: {', '.join(sorted(BUILTINS))}")
    path = DATA_DIR / BUILTINS[name][0]
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


_BUILTIN_CACHE: dict[str, tuple[str, Dataset]] = {}


def builtin_digest(name: str) -> str:
    """``0x`` + SHA-256 of the bundled dataset's canonical bytes (what a spec's ``dataset.digest`` must say)."""
    return _load_builtin(name).digest


def _load_builtin(name: str) -> Dataset:
    if name in _BUILTIN_CACHE:
        return _BUILTIN_CACHE[name][1]
    data = builtin_bytes(name)
    fmt = BUILTINS[name][1]
    ds = decode(fmt, data, name=f"builtin '{name}'")
    if name == "digits":
        ds.x = ds.features_labels()[0] * (1.0 / 16.0)  # power of two: exact
    _BUILTIN_CACHE[name] = (ds.digest, ds)
    return ds


def load_dataset(ref: DatasetRef, store=None, path: str | os.PathLike[str] | None = None) -> Dataset:
    """Load the dataset ``ref`` names and check its digest.

    ``builtin`` datasets come from this package; the others from ``path`` (a file, when given) or else from
    ``store`` (a blob store with ``get(address)``, e.g. :class:`protocol.blobstore.LocalBlobStore`, which
    verifies the SHA-256 itself).
    """
    if ref.format == "builtin":
        if ref.builtin is None:  # pragma: no cover - DatasetRef's validator requires it
            raise DatasetError("dataset.format is 'builtin' but dataset.builtin names no dataset")
        ds = _load_builtin(ref.builtin)
        if ds.digest != ref.digest:
            raise DatasetDigestMismatch(
                f"dataset digest mismatch: the spec names builtin '{ref.builtin}' with digest {ref.digest}, but "
                f"the bundled data hashes to {ds.digest}; put that digest in the spec's dataset.digest"
            )
        return ds
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise DatasetMissing(f"dataset file {p} does not exist")
        data = p.read_bytes()
        source = str(p)
    elif store is not None:
        from protocol.errors import BlobNotFound

        try:
            data = store.get(ref.digest)
        except BlobNotFound:
            raise DatasetMissing(
                f"dataset {ref.digest} ({ref.format}) is not in the blob store {store}; upload it there first "
                f"or pass the file with --data"
            ) from None
        source = f"blob {ref.digest}"
    else:
        raise DatasetMissing(
            f"the spec's dataset is a {ref.format} upload ({ref.digest}); give its file (--data) or a blob store "
            f"that holds it (--store)"
        )
    got = sha256_hex(data)
    if got != ref.digest:
        raise DatasetDigestMismatch(
            f"dataset digest mismatch: {source} hashes to {got}, the spec's dataset.digest is {ref.digest}"
        )
    return decode(ref.format, data, name=source, digest=got, columns=ref.columns, tokenizer=ref.tokenizer)


# ----------------------------------------------------------------------------------------------- batches


def check_fits(spec: JobSpec, ds: Dataset) -> None:
    """Raise DatasetError when the dataset cannot feed the spec's model."""
    cfg = spec.model
    if isinstance(cfg, TransformerLMConfig):
        if not ds.is_text:
            raise DatasetError(f"a transformer_lm trains on a text dataset; {ds.name} is a classification dataset")
        if len(ds.vocab) > cfg.vocab_size:
            raise DatasetError(
                f"model.vocab_size is {cfg.vocab_size} but {ds.name} has {len(ds.vocab)} distinct characters"
            )
        n = ds.num_examples(cfg.context)
    else:
        if ds.is_text:
            raise DatasetError(f"a {cfg.kind} model trains on a classification dataset (csv/npz); {ds.name} is text")
        x, y = ds.features_labels()
        feat = int(np.prod(x.shape[1:])) if x.dim() > 1 else 1
        want = cfg.input_dim if cfg.kind == "mlp" else cfg.in_channels * cfg.image_size**2
        if feat != want:
            what = "model.input_dim" if cfg.kind == "mlp" else "in_channels x image_size^2"
            raise DatasetError(f"{ds.name} has {feat} features per example but the model's {what} is {want}")
        top = int(y.max())
        if top >= cfg.num_classes:
            raise DatasetError(f"{ds.name} has class label {top} but model.num_classes is {cfg.num_classes}")
        n = ds.num_examples()
    n_hold = math.floor(n * spec.dataset.holdout_fraction)
    if n - n_hold < 1:
        raise DatasetError(f"{ds.name}: no training examples left after holding out {n_hold} of {n}")


class Batches:
    """The split and batch order of one job (see the module docstring)."""

    PURPOSE = "data/order"

    def __init__(self, spec: JobSpec, ds: Dataset, device: str | torch.device = "cpu") -> None:
        check_fits(spec, ds)
        self.ds = ds
        self.seed = spec.seed
        self.batch_size = spec.batch_size
        self.context = spec.model.context if isinstance(spec.model, TransformerLMConfig) else None
        self.n = ds.num_examples(self.context)
        self.n_hold = math.floor(self.n * spec.dataset.holdout_fraction)
        self.n_train = self.n - self.n_hold
        self.device = torch.device(device)
        self._perms: OrderedDict[int, np.ndarray] = OrderedDict()
        if ds.is_text:
            T = self.context
            if T is None:  # pragma: no cover - check_fits allows text only for a transformer_lm
                raise DatasetError(f"{ds.name} is text but the model has no context length")
            L = self.n * T + 1
            # windows[i] = tokens[i*T : i*T + T + 1], as a strided view
            base = ds.text_tokens()[:L].contiguous()
            self._windows = base.as_strided((self.n, T + 1), (T, 1))

    def _perm(self, epoch: int) -> np.ndarray:
        p = self._perms.get(epoch)
        if p is None:
            p = permutation(self.seed, self.PURPOSE, epoch, self.n_train)
            self._perms[epoch] = p
            while len(self._perms) > 3:
                self._perms.popitem(last=False)
        return p

    def indices(self, step: int) -> np.ndarray:
        """Example indices (int64, length B) of optimizer step ``step`` (0-based)."""
        first = step * self.batch_size
        e0, w0 = divmod(first, self.n_train)
        if w0 + self.batch_size <= self.n_train:  # the whole batch lies in one epoch
            return self._perm(e0)[w0 : w0 + self.batch_size]
        pos = first + np.arange(self.batch_size, dtype=np.int64)
        epochs = pos // self.n_train
        within = pos % self.n_train
        out = np.empty(self.batch_size, dtype=np.int64)
        for e in np.unique(epochs):
            sel = epochs == e
            out[sel] = self._perm(int(e))[within[sel]]
        return out

    def examples(self, idx: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets for example indices ``idx``, on the job's device."""
        idx = torch.as_tensor(idx, dtype=torch.int64)
        if self.ds.is_text:
            w = self._windows.index_select(0, idx)
            x, y = w[:, :-1], w[:, 1:]
        else:
            xs, ys = self.ds.features_labels()
            x, y = xs.index_select(0, idx), ys.index_select(0, idx)
        return x.contiguous().to(self.device), y.contiguous().to(self.device)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.examples(self.indices(step))

    def heldout_indices(self) -> np.ndarray:
        return np.arange(self.n_train, self.n, dtype=np.int64)

    def cursor(self, step: int) -> dict[str, int]:
        """The data cursor after ``step`` optimizer steps (recorded in checkpoints)."""
        consumed = step * self.batch_size
        return {"examples_consumed": consumed, "epoch": consumed // self.n_train, "position": consumed % self.n_train}
