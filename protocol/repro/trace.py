"""The trace of one optimizer step in exact mode: what the dispute descends through below a segment.

A training step in exact mode is a fixed sequence of tensor operations. Run on the reference path
(``backend("reference")``: the four order-fixed primitives and the fmath functions as elementwise torch
operations, the same bits as every other path), every floating-point operation of the step — forward,
backward, clipping, the optimizer update, batch selection — is one ATen operation. :func:`trace_step` records
them with an op-level hook (a ``TorchDispatchMode``), not a second implementation of the model: record ``t`` is

    (operation, input references, structural arguments, output dtypes and shapes)   ← the *structure*
    (float scalar arguments, output commitments)                                   ← the *values*

* operation — the ATen overload (``aten.add.Tensor``);
* input references — ``r<k>.<j>`` output ``j`` of record ``k``; ``s:<name>`` a tensor of the pre-state
  (``param/…``, ``optim/…``, as in the canonical state, DESIGN §3); ``x:<k>`` the ``k``-th external input (a
  tensor the step did not compute: the dataset, the batch indices, constants), whose dtype, shape and
  commitment are listed in :attr:`Trace.externals`;
* structural arguments — the canonical JSON of every argument that is not a tensor and not a float: ints,
  bools, dtypes, dims, sizes (float scalars such as the learning rate are values: they may change from step to
  step without changing the program);
* output commitment — the RFC 9162 root over the output's bytes (C order, little-endian) in ``LEAF_BYTES``-byte
  leaves (the last one short), so one element can later be proven with a short inclusion path; ``UNDEFINED``
  (32 zero bytes) for an allocation whose contents are only written by a later record.

The **program** of a step is the list of structure hashes; its RFC 9162 root (:attr:`Trace.program_root`) is
meant to depend only on the spec (and, where an optimizer creates its buffers on the first step, on whether the
step is the first): no weight, gradient, example or learning rate enters it. The one primitive whose reference
expansion depends on the data — ``index_add_rows`` (an embedding's backward) loops over the occurrence ranks of
the batch's indices and selects rows by masks — is therefore one record, ``veritrain.index_add_rows`` (its order:
ascending ``n``, DESIGN §4); a dispute over it will descend through its partial sums. The correctly rounded
square root (``fmath.sqrt``, Newton in binary64 on the reference path) is one record too, ``veritrain.sqrt``.
Each record's elements are defined in :mod:`protocol.repro.elements`. The **trace root** is
the root over the record hashes (structure and values). :attr:`Trace.final` names the record output each state
tensor holds after the step. Reads that leave the tensor world (``.item()``) are counted in :attr:`Trace.reads`:
they must never steer the computation, or the program would depend on values.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_unflatten

from protocol import merkle

TRACE_FORMAT = "veritrain.trace/1"
#: Bytes per leaf of an output commitment: eight float32 elements.
LEAF_BYTES = 32
#: Operations that neither compute nor move values (autograd and profiler bookkeeping): not records.
_SKIP = frozenset({"aten.detach.default", "aten.lift_fresh.default", "aten.alias.default"})
_READS = frozenset({"aten._local_scalar_dense.default", "aten.item.default"})
#: Operations whose output has no defined contents (an allocation written later): committed as UNDEFINED.
UNDEFINED_OUTPUT = frozenset(
    {"aten.empty.memory_format", "aten.empty_strided.default", "aten.new_empty_strided.default",
     "aten.new_empty.default", "aten.empty_like.default"}
)  # fmt: skip
#: Operations that address their input's storage rather than its elements: their records carry the geometry.
STORAGE_OPS = frozenset({"aten.as_strided.default"})
#: The commitment of an output with no defined contents.
UNDEFINED = bytes(32)
#: The record of the order-fixed scatter-add of rows (``kernels.index_add_rows``): one record, whatever the indices.
PRIMITIVE_INDEX_ADD_ROWS = "veritrain.index_add_rows"
#: The record of the correctly rounded square root (``fmath.sqrt``): one record, the IEEE operation (its reference
#: expansion is Newton in binary64, which no element of the dispute needs).
PRIMITIVE_SQRT = "veritrain.sqrt"

__all__ = [
    "LEAF_BYTES", "TRACE_FORMAT", "UNDEFINED", "Record", "Trace", "TraceError", "commitment", "committed_bytes",
    "element_proof", "trace_call",
    "trace_step",
]  # fmt: skip


class TraceError(RuntimeError):
    """The step could not be traced (an operation the trace format does not cover)."""


#: The quiet NaN a float32 NaN element is committed as (ATen's NaN payloads depend on the kernel path taken).
CANONICAL_NAN_BITS = 0x7FC00000


def committed_bytes(t: torch.Tensor) -> bytes:
    """The bytes a commitment is over: ``t`` in C order, little-endian, every float32 NaN as
    :data:`CANONICAL_NAN_BITS`, whatever its payload."""
    t = t.detach().to("cpu").contiguous()
    if t.dtype == torch.float32 and bool(torch.isnan(t).any()):
        t = torch.where(torch.isnan(t), torch.tensor(CANONICAL_NAN_BITS, dtype=torch.int32).view(torch.float32), t)
    return t.numpy().tobytes()


def _leaves(data: bytes) -> list[bytes]:
    sha = hashlib.sha256
    return [sha(merkle.LEAF_PREFIX + data[i : i + LEAF_BYTES]).digest() for i in range(0, len(data), LEAF_BYTES)]


def commitment(t: torch.Tensor) -> bytes:
    """RFC 9162 root over :func:`committed_bytes` of ``t`` in ``LEAF_BYTES``-byte leaves (the last one short)."""
    return merkle.rfc9162_root(_leaves(committed_bytes(t)))


def element_proof(t: torch.Tensor, i: int) -> tuple[bytes, list[bytes]]:
    """What proves element ``i`` (C order) of ``t`` against :func:`commitment`: the bytes of the leaf that holds it
    and that leaf's RFC 9162 audit path (``ElementProof.sol`` checks them)."""
    data = committed_bytes(t)
    leaf = i * t.element_size() // LEAF_BYTES
    return data[leaf * LEAF_BYTES : (leaf + 1) * LEAF_BYTES], merkle.rfc9162_path(_leaves(data), leaf)


_TENSOR = object()  # where a tensor argument goes in a kept call


def _copy(t: torch.Tensor) -> torch.Tensor:
    """A copy of ``t`` with a copy of its whole storage: same offset, sizes and strides."""
    with torch.utils._python_dispatch._disable_current_modes():
        storage = t.untyped_storage().clone()
        return torch.empty(0, dtype=t.dtype).set_(storage, t.storage_offset(), t.shape, t.stride())


def _written(func: Any, args: Any, kwargs: Any) -> list[torch.Tensor]:
    """What an in-place operation (ATen's convention: the name ends in "_", it writes its first argument) or an
    ``out=`` variant wrote: those tensors are its outputs. Empty for any other operation."""
    schema = getattr(func, "_schema", None)
    if schema is not None and schema.name.endswith("_") and args:
        return [a for a in tree_flatten(args[0])[0] if isinstance(a, torch.Tensor)]
    if "out" in kwargs:
        return [a for a in tree_flatten(kwargs["out"])[0] if isinstance(a, torch.Tensor)]
    return []


def _canonical(x: Any) -> Any:
    """The JSON form of a structural argument (floats are kept apart by the caller)."""
    if isinstance(x, bool | int | str) or x is None:
        return x
    if isinstance(x, torch.dtype):
        return str(x)
    if isinstance(x, torch.device):
        return "device"  # where it runs is not part of the program
    if isinstance(x, torch.memory_format | torch.layout):
        return str(x)
    if isinstance(x, list | tuple):
        return [_canonical(v) for v in x]
    raise TraceError(f"an argument of type {type(x).__name__} ({x!r}) has no trace form")


@dataclass(frozen=True)
class Record:
    """One operation of a traced step (see the module docstring)."""

    index: int
    op: str
    inputs: tuple[str, ...]
    args: str  # canonical JSON of the structural arguments, tensors as "T", floats as "F"
    outputs: tuple[tuple[str, tuple[int, ...]], ...]  # (dtype, shape) of each output
    floats: tuple[float, ...]  # float scalar arguments, in argument order
    commitments: tuple[bytes, ...]  # one per output
    #: For an operation that addresses its input's storage (``as_strided``): each tensor input's storage offset
    #: and strides, which its elements need (DESIGN §8); empty for every other operation.
    geometry: tuple[tuple[int, tuple[int, ...]], ...] = ()

    def structure(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "op": self.op,
            "inputs": list(self.inputs),
            "args": self.args,
            "outputs": [[d, list(s)] for d, s in self.outputs],
            "floats": len(self.floats),
        }
        if self.geometry:
            out["geometry"] = [[off, list(st)] for off, st in self.geometry]
        return out

    def encode_structure(self) -> bytes:
        """The structure as the contract reads it (ABI-encoded, :data:`STRUCTURE_ABI`): the opcode (its index in
        :data:`protocol.repro.elements.OPCODES`), the input references (kind 0 a record's output ``(k, j)``, 1 a
        pre-state tensor by name, 2 an external by index), the structural arguments as (tag, value) pairs
        (:data:`ARG_TAGS`; a dtype by its ``DTYPE_CODES`` index, a layout/format/device token by its
        :data:`ARG_TOKENS` index), the outputs' dtype codes and shapes, the number of float arguments and the
        storage geometry (offset, strides) of each input of an ``as_strided``."""
        return encode_structure(self)

    def structure_hash(self) -> bytes:
        """sha256 of :meth:`encode_structure`: the leaf of the program root."""
        return hashlib.sha256(self.encode_structure()).digest()

    def record_hash(self) -> bytes:
        """sha256(structure hash ‖ each float as its 8 binary64 bytes, big-endian ‖ each output commitment)."""
        floats = b"".join(struct.pack(">d", f) for f in self.floats)
        return hashlib.sha256(self.structure_hash() + floats + b"".join(self.commitments)).digest()


@dataclass
class Trace:
    """The records of one step, its external inputs and where each state tensor ends."""

    step: int
    records: list[Record]
    externals: list[tuple[str, tuple[int, ...], bytes]]  # (dtype, shape, commitment)
    final: dict[str, str]  # state tensor name → the reference holding it after the step
    reads: int
    #: dtype and shape of each pre-state tensor (``s:<name>``), by canonical state name
    state: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)
    #: With ``keep_values``: the value of every reference, in its storage layout (views keep their offsets and
    #: strides), and each record's call, so that a record can be evaluated again from its inputs alone.
    values: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    calls: list[tuple[Any, Any, list[Any]]] = field(default_factory=list, repr=False)

    @property
    def program_root(self) -> bytes:
        return merkle.rfc9162_root([merkle.leaf_hash(r.structure_hash()) for r in self.records])

    @property
    def root(self) -> bytes:
        return merkle.rfc9162_root([merkle.leaf_hash(r.record_hash()) for r in self.records])

    def evaluate(self, index: int) -> list[torch.Tensor]:
        """Record ``index`` computed again from the values its input references name (``keep_values`` traces):
        what a checker of one record does, and a test that the references are right and complete."""
        if not self.calls:
            raise TraceError("this trace kept no values: trace_step(..., keep_values=True)")
        r = self.records[index]
        func, spec, leaves = self.calls[index]
        refs = iter(r.inputs)
        # inputs are copied with their storage, so an in-place record writes the copy, never the trace's values
        flat = [_copy(self.values[next(refs)]) if x is _TENSOR else x for x in leaves]
        args, kwargs = tree_unflatten(flat, spec)
        out = func(*args, **kwargs)
        return _written(func, args, kwargs) or [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]

    def shape_of(self, ref: str) -> tuple[str, tuple[int, ...]]:
        """The dtype and shape of the tensor ``ref`` names."""
        if ref.startswith("s:"):
            return self.state[ref[2:]]
        if ref.startswith("x:"):
            dtype, shape, _ = self.externals[int(ref[2:])]
            return dtype, shape
        k, j = (int(x) for x in ref[1:].split("."))
        return self.records[k].outputs[j]

    def ops(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.records:
            out[r.op] = out.get(r.op, 0) + 1
        return out


class _Recorder(TorchDispatchMode):
    def __init__(
        self, state: Mapping[str, torch.Tensor], keep_values: bool | Collection[str], commit: bool = True
    ) -> None:
        super().__init__()
        self.records: list[Record] = []
        self.externals: list[tuple[str, tuple[int, ...], bytes]] = []
        self.reads = 0
        #: True: every reference's value and every call (a trace that can evaluate any record); a collection: the
        #: values of those references only (what a player of the game needs at one record, DESIGN §8).
        self.keep_values = keep_values is True
        self.keep_refs = frozenset(keep_values) if not isinstance(keep_values, bool) else frozenset()
        #: False: the structure only (the program root); every commitment is UNDEFINED, saving the hashing that is
        #: most of a trace's time (the default tiny LM's step: 17 s instead of 172 s).
        self.commit = commit
        self.values: dict[str, torch.Tensor] = {}
        self.calls: list[tuple[Any, Any, list[Any]]] = []
        #: The value a tensor holds is named by where it lives (storage, offset, sizes, strides, dtype); an in-place
        #: write rebinds it (and forgets every other view of that storage); the tensors are kept alive so no storage
        #: is reused.
        self._refs: dict[tuple, str] = {}
        self._alive: list[torch.Tensor] = []
        for name, t in state.items():
            self._bind(t, f"s:{name}")

    @staticmethod
    def _key(t: torch.Tensor) -> tuple:
        return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)

    def _bind(self, t: torch.Tensor, ref: str) -> None:
        self._refs[self._key(t)] = ref
        self._alive.append(t)
        if self.keep_values or ref in self.keep_refs:
            self.values[ref] = _copy(t)

    def ref_of(self, t: torch.Tensor) -> str:
        ref = self._refs.get(self._key(t))
        if ref is not None:
            return ref
        # not computed by the step: an external input (dataset, indices, a constant made outside the trace)
        with torch.utils._python_dispatch._disable_current_modes():
            c = commitment(t) if self.commit else UNDEFINED
            ref = f"x:{len(self.externals)}"
            self.externals.append((str(t.dtype), tuple(t.shape), c))
            self._bind(t, ref)
        return ref

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = str(func)
        if name.startswith("profiler."):
            return func(*args, **kwargs)
        if name in _SKIP:  # an alias of its input, same storage and geometry: the same reference
            return func(*args, **kwargs)
        if name in _READS:
            self.reads += 1
            return func(*args, **kwargs)
        return self.record(name, func, args, kwargs)

    def primitive(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` as one record named ``name`` (its inner operations are not recorded)."""

        def run(*args: Any, **kwargs: Any) -> Any:
            return self.record(name, func, args, kwargs, inner=False)

        return run

    def record(self, name: str, func: Any, args: Any, kwargs: Any, inner: bool = True) -> Any:
        """Runs ``func`` and appends its record; ``inner=False`` runs it unrecorded inside."""
        flat, spec = tree_flatten((args, kwargs))
        inputs: list[str] = []
        floats: list[float] = []
        shape_args: list[Any] = []
        for a in flat:
            if isinstance(a, torch.Tensor):
                inputs.append(self.ref_of(a))
                shape_args.append("T")
            elif isinstance(a, float):
                floats.append(a)
                shape_args.append("F")
            else:
                shape_args.append(_canonical(a))
        if inner:
            out = func(*args, **kwargs)
        else:
            with torch.utils._python_dispatch._disable_current_modes():
                out = func(*args, **kwargs)
        written = _written(func, args, kwargs)
        outs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)] if not written else written
        index = len(self.records)
        geometry = (
            tuple(
                (int(a.storage_offset()), tuple(int(s) for s in a.stride()))
                for a in flat
                if isinstance(a, torch.Tensor)
            )
            if name in STORAGE_OPS
            else ()
        )
        if self.keep_values:
            self.calls.append((func, spec, [_TENSOR if isinstance(a, torch.Tensor) else a for a in flat]))
        with torch.utils._python_dispatch._disable_current_modes():
            for w in written:
                ptr = w.untyped_storage().data_ptr()
                self._refs = {k: v for k, v in self._refs.items() if k[0] != ptr}
            commits = tuple(UNDEFINED if name in UNDEFINED_OUTPUT or not self.commit else commitment(o) for o in outs)
            for j, o in enumerate(outs):
                self._bind(o, f"r{index}.{j}")
        self.records.append(
            Record(
                index=index,
                op=name,
                inputs=tuple(inputs),
                args=json.dumps(shape_args, separators=(",", ":")),
                outputs=tuple((str(o.dtype), tuple(o.shape)) for o in outs),
                floats=tuple(floats),
                commitments=commits,
                geometry=geometry,
            )
        )
        return out

    def final_refs(self, state: Mapping[str, torch.Tensor]) -> dict[str, str]:
        return {name: self.ref_of(t) for name, t in state.items()}


@contextlib.contextmanager
def _primitives(rec: _Recorder) -> Iterator[None]:
    """While tracing, the primitives that are one record each (their reference expansions are not recorded):
    the scatter-add of rows, whose expansion loops over the occurrence ranks of the batch's indices and selects
    rows by masks, so it would make the program depend on the data (ascending n, DESIGN §4); the square root,
    whose expansion is Newton in binary64 for what is one IEEE operation."""
    from protocol.repro import fmath, kernels

    original, original_sqrt = kernels.index_add_rows, fmath.sqrt
    kernels.index_add_rows = rec.primitive(PRIMITIVE_INDEX_ADD_ROWS, original)
    fmath.sqrt = rec.primitive(PRIMITIVE_SQRT, original_sqrt)
    try:
        yield
    finally:
        kernels.index_add_rows, fmath.sqrt = original, original_sqrt


def trace_call(fn: Callable[..., Any], *tensors: torch.Tensor, keep_values: bool = True) -> Trace:
    """The trace of ``fn(*tensors)`` on the reference path (its tensors are externals ``x:0``, ``x:1``… in first
    use): a program of chosen operations on chosen values, for checking element semantics against ATen."""
    from protocol.repro import backend

    rec = _Recorder({}, keep_values)
    with backend("reference"), _primitives(rec), rec:
        fn(*tensors)
    return Trace(step=0, records=rec.records, externals=rec.externals, final={}, reads=rec.reads,
                 values=rec.values, calls=rec.calls)  # fmt: skip


#: How a structural argument is encoded: (tag, value).
ARG_TAGS = ("int", "tensor", "float", "none", "bool", "dtype", "token")
#: The string arguments a structure may carry besides dtypes (their value is their index here).
ARG_TOKENS = ("device", "torch.strided", "torch.contiguous_format", "torch.preserve_format", "torch.channels_last")
#: ABI types of an encoded structure (opcode, inputs, argument tags, argument values, output dtypes, output shapes,
#: float count, geometry offsets, geometry strides).
STRUCTURE_ABI = (
    "uint16", "(uint8,uint32,uint16,string)[]", "uint8[]", "int256[]", "uint8[]", "uint32[][]", "uint16",
    "uint256[]", "uint256[][]",
)  # fmt: skip


def _encode_ref(ref: str) -> tuple[int, int, int, str]:
    if ref.startswith("s:"):
        return (1, 0, 0, ref[2:])
    if ref.startswith("x:"):
        return (2, int(ref[2:]), 0, "")
    k, j = (int(x) for x in ref[1:].split("."))
    return (0, k, j, "")


def _encode_arg(a: Any) -> tuple[int, int]:
    from protocol.repro.elements import DTYPE_CODES

    if a == "T":
        return ARG_TAGS.index("tensor"), 0
    if a == "F":
        return ARG_TAGS.index("float"), 0
    if a is None:
        return ARG_TAGS.index("none"), 0
    if isinstance(a, bool):
        return ARG_TAGS.index("bool"), int(a)
    if isinstance(a, int):
        return ARG_TAGS.index("int"), a
    if a in DTYPE_CODES:
        return ARG_TAGS.index("dtype"), DTYPE_CODES.index(a)
    if a in ARG_TOKENS:
        return ARG_TAGS.index("token"), ARG_TOKENS.index(a)
    raise TraceError(f"a structural argument {a!r} has no encoding")


def encode_structure(r: Record) -> bytes:
    """See :meth:`Record.encode_structure`."""
    from eth_abi import encode

    from protocol.repro.elements import DTYPE_CODES, OPCODES

    if r.op not in OPCODES:
        raise TraceError(f"{r.op} is outside the element vocabulary (protocol/repro/elements.py)")
    args = []
    for a in json.loads(r.args):
        args.extend([a] if not isinstance(a, list) else a)
    tags, values = zip(*(_encode_arg(a) for a in args), strict=True) if args else ((), ())
    dtypes = []
    for d, _ in r.outputs:
        if d not in DTYPE_CODES:
            raise TraceError(f"output dtype {d} is outside the element dtypes")
        dtypes.append(DTYPE_CODES.index(d))
    return encode(
        list(STRUCTURE_ABI),
        [
            OPCODES.index(r.op), [_encode_ref(x) for x in r.inputs], list(tags), list(values), dtypes,
            [list(s) for _, s in r.outputs], len(r.floats), [off for off, _ in r.geometry],
            [list(st) for _, st in r.geometry],
        ],
    )  # fmt: skip


def _state_tensors(trainer: Any) -> dict[str, torch.Tensor]:
    """The live tensors of the trainer's state, by canonical state name (see ``Trainer.state``)."""
    out: dict[str, torch.Tensor] = {}
    for name, p in trainer.named_params:
        out[f"param/{name}"] = p
        for key, v in trainer.opt.state.get(p, {}).items():
            if isinstance(v, torch.Tensor):
                out[f"optim/{name}/{key}"] = v
    return out


def trace_step(trainer: Any, keep_values: bool | Collection[str] = False, commit: bool = True) -> Trace:
    """Runs the trainer's next optimizer step on the reference path and returns its trace; the trainer advances by
    one step exactly as ``train_steps(1)`` (same bits). ``keep_values`` keeps every reference's value, or (a
    collection of references) those only: a step too large to keep whole is traced once for its commitments and again
    for the values one record needs. ``commit=False`` traces the structure only: the program root is right, every
    commitment (so the trace root) is not. Raises
    :class:`TraceError` if the step used an operation whose elements are not defined
    (:data:`protocol.repro.elements.VOCABULARY`)."""
    from protocol.repro import backend

    step = trainer.step
    if step is None:
        raise TraceError("the trainer has no state yet: call init() or load()")
    state = _state_tensors(trainer)
    rec = _Recorder(state, keep_values, commit)
    with backend("reference"), _primitives(rec), rec:
        trainer.train_steps(1)
    after = _state_tensors(trainer)  # the optimizer may have created its buffers in this step
    final = rec.final_refs(after)
    shapes = {name: (str(t.dtype), tuple(t.shape)) for name, t in state.items()}
    trace = Trace(step=step, records=rec.records, externals=rec.externals, final=final, reads=rec.reads,
                  state=shapes, values=rec.values, calls=rec.calls)  # fmt: skip
    from protocol.repro.elements import unsupported

    missing = unsupported(trace)
    if missing:  # a step the dispute could not descend into: refused (the trainer has taken it)
        raise TraceError(f"operations outside the element vocabulary (protocol/repro/elements.py): {missing}")
    return trace


@dataclass(frozen=True)
class ProgramRoots:
    """The program roots of a job (DESIGN §8): step 0 creates the optimizer's buffers, so its program differs from
    that of every later step, which is one and the same (measured on every example)."""

    first: bytes
    first_records: int
    later: bytes | None  # None for a job of one step
    later_records: int


def program_roots(spec: Any, ds: Any = None) -> ProgramRoots:
    """The program roots of ``spec``'s steps 0 and 1, from structure-only traces of the job's first two steps (what
    an order can sign and a solver check before it bids)."""
    from protocol.engine.data import load_dataset
    from protocol.engine.runner import Trainer

    trainer = Trainer(spec, ds if ds is not None else load_dataset(spec.dataset))
    trainer.init()
    first = trace_step(trainer, commit=False)
    later = trace_step(trainer, commit=False) if spec.total_steps > 1 else None
    if later is None:
        return ProgramRoots(first.program_root, len(first.records), None, 0)
    return ProgramRoots(first.program_root, len(first.records), later.program_root, len(later.records))
