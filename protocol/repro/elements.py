"""One output element of one trace record, computed from the input elements it depends on: what the contract will
do at the bottom of an exact-mode dispute (DESIGN §8, "The element of a record").

A record of :mod:`protocol.repro.trace` names an ATen operation, its input references and its structural
arguments. :func:`element` computes output ``j``'s element at flat (C-order) position ``o`` by asking a ``read``
callback for input elements — ``read(k, i)`` is element ``i`` (C order) of the record's ``k``-th tensor input —
so the reads it makes are exactly the input elements a checker must have proven against their commitments.
Every operation is defined on scalars of the output's dtype, with numpy's IEEE binary32 arithmetic (round to
nearest even, no fused multiply-add): :func:`scalar`, which ``contracts/src/libraries/ElementOps.sol`` equals bit
for bit. The kinds:

* *moves* (views, ``index``/``gather``/``index_select``, ``copy_``, casts of the same bits): one read, at a
  position computed from the output position (and, for indexing, from an index element read first);
* *constants* (``zeros``, ``full_like``, ``scalar_tensor``…): no read;
* *elementwise* float, integer and bit operations, comparisons and ``where``, with broadcasting: one read per
  operand (a Python scalar argument is cast to the output's dtype, as ATen does for a wrapped number);
* *reductions* (``amax``, ``max``, ``min``): every element of the reduced slice, folded in ascending order
  (the dispute will descend through the fold's partial results).

:data:`VOCABULARY` lists the operations defined here (each exercised over edge values against ATen by
``tests/test_elements.py``); :func:`unsupported` names the ones of a trace that are not, and
:func:`protocol.repro.trace.trace_step` refuses such a step. :func:`check` recomputes a record's elements from a
``keep_values`` trace. A float32 NaN compares as NaN whatever its payload: every NaN is committed as the canonical
NaN (:func:`protocol.repro.trace.commitment`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ElementError", "Operand", "VOCABULARY", "check", "element", "operands", "unsupported"]

Scalar = Any  # a numpy scalar: np.float32, np.int32, np.int64 or np.bool_
Read = Callable[[int, int], Scalar]

DTYPES: dict[str, Any] = {
    "torch.float32": np.float32,
    "torch.int32": np.int32,
    "torch.int64": np.int64,
    "torch.int8": np.int8,
    "torch.uint8": np.uint8,
    "torch.bool": np.bool_,
}
#: The quiet NaN every NaN-producing primitive of protocol/repro writes (Float32.sol's canonical NaN).
CANONICAL_NAN = np.uint32(0x7FC00000).view(np.float32)


class ElementError(ValueError):
    """The element is not defined (an allocation, an index out of range, a cast of a value it cannot hold) or
    the record is outside the vocabulary."""


@dataclass(frozen=True)
class Operand:
    """What a checker knows of a tensor input without its values: dtype, shape and, for ``as_strided``, where
    its elements sit in their storage (storage offset, strides)."""

    dtype: str
    shape: tuple[int, ...]
    offset: int = 0
    strides: tuple[int, ...] = ()


# ------------------------------------------------------------------------------------------------ positions


def unravel(o: int, shape: Sequence[int]) -> list[int]:
    out = [0] * len(shape)
    for d in range(len(shape) - 1, -1, -1):
        n = shape[d]
        out[d] = o % n if n else 0
        o = o // n if n else 0
    return out


def ravel(mi: Sequence[int], shape: Sequence[int]) -> int:
    o = 0
    for i, n in zip(mi, shape, strict=True):
        o = o * n + i
    return o


def numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def broadcast_index(mi: Sequence[int], out_shape: Sequence[int], in_shape: Sequence[int]) -> int:
    """The flat index in an input of ``in_shape`` that broadcasts to output position ``mi``."""
    lead = len(out_shape) - len(in_shape)
    if lead < 0:
        raise ElementError(f"an input of shape {tuple(in_shape)} does not broadcast to {tuple(out_shape)}")
    sub = [0 if n == 1 else mi[lead + d] for d, n in enumerate(in_shape)]
    return ravel(sub, in_shape)


def _dim(d: int, rank: int) -> int:
    if not -max(rank, 1) <= d < max(rank, 1):
        raise ElementError(f"dimension {d} out of range for rank {rank}")
    return d % max(rank, 1)


def _storage_to_logical(p: int, op: Operand) -> int:
    """The flat (C-order) index of the element of ``op`` stored at storage position ``p``."""
    rel = p - op.offset
    mi = [0] * len(op.shape)
    for d in sorted(range(len(op.shape)), key=lambda d: -op.strides[d]):
        if op.shape[d] <= 1 or op.strides[d] == 0:
            continue
        mi[d], rel = divmod(rel, op.strides[d]) if rel >= 0 else (-1, rel)
        if not 0 <= mi[d] < op.shape[d]:
            raise ElementError(f"storage position {p} holds no element of the input")
    if rel != 0:
        raise ElementError(f"storage position {p} holds no element of the input")
    return ravel(mi, op.shape)


# ------------------------------------------------------------------------------------------------ scalars


def _cast(v: Any, dtype: Any) -> Scalar:
    """``v`` (a Python or numpy scalar) as a scalar of ``dtype``, as ATen casts: floats to integers truncate
    toward zero (undefined out of range: refused), integers wrap, integers to float32 round to nearest even."""
    if dtype is np.bool_:
        return np.bool_(bool(v))
    if dtype is np.float32:
        if isinstance(v, np.floating | float):
            return np.float32(v)
        # one rounding, straight from the integer (np.float32(int) would round through binary64 first)
        return np.array(_cast(v, np.int64), dtype=np.int64).astype(np.float32)[()]
    if isinstance(v, np.floating | float):
        f = float(v)
        info = np.iinfo(dtype)
        if not math.isfinite(f) or not info.min <= math.trunc(f) <= info.max:
            raise ElementError(f"{f!r} does not fit {np.dtype(dtype).name}")
        return dtype(math.trunc(f))
    bits = np.dtype(dtype).itemsize * 8
    i = int(v) & ((1 << bits) - 1)
    signed = np.issubdtype(dtype, np.signedinteger)
    return dtype(i - (1 << bits) if signed and i >> (bits - 1) else i)


def _bitcast(v: Scalar, dtype: Any) -> Scalar:
    src = np.asarray(v)
    if src.dtype.itemsize != np.dtype(dtype).itemsize or np.bool_ in (src.dtype.type, dtype):
        raise ElementError(f"a bit cast from {src.dtype} to {np.dtype(dtype).name} changes the element size")
    return src.view(dtype)[()]


def _isnan(v: Scalar) -> bool:
    return isinstance(v, np.floating) and bool(np.isnan(v))


def _max(a: Scalar, b: Scalar) -> Scalar:
    """NaN-propagating maximum (a NaN result is the canonical NaN, as ATen's reductions write it); of equal
    values (+0 and −0) the first."""
    if _isnan(a) or _isnan(b):
        return CANONICAL_NAN
    return b if b > a else a


def _min(a: Scalar, b: Scalar) -> Scalar:
    if _isnan(a) or _isnan(b):
        return CANONICAL_NAN
    return b if b < a else a


def _int_op(f: Callable[[int, int], int], dtype: Any) -> Callable[[Scalar, Scalar], Scalar]:
    return lambda a, b: _cast(f(int(a), int(b)), dtype)


def _binary(name: str, dtype: Any) -> Callable[[Scalar, Scalar], Scalar]:
    if dtype is np.float32:
        table: dict[str, Callable[[Scalar, Scalar], Scalar]] = {
            "add": lambda a, b: a + b,
            "sub": lambda a, b: a - b,
            "rsub": lambda a, b: b - a,
            "mul": lambda a, b: a * b,
            "div": lambda a, b: a / b,
        }
    elif dtype is np.bool_:
        table = {
            "bitwise_and": lambda a, b: np.bool_(a and b),
            "bitwise_or": lambda a, b: np.bool_(a or b),
            "bitwise_xor": lambda a, b: np.bool_(a != b),
        }
    else:
        bits = np.dtype(dtype).itemsize * 8

        def shift_left(a: int, s: int) -> int:
            return a << s if 0 <= s < bits else 0

        def shift_right(a: int, s: int) -> int:
            return a >> s if 0 <= s < bits else (-1 if a < 0 else 0)

        table = {
            "add": _int_op(lambda a, b: a + b, dtype),
            "sub": _int_op(lambda a, b: a - b, dtype),
            "rsub": _int_op(lambda a, b: b - a, dtype),
            "mul": _int_op(lambda a, b: a * b, dtype),
            "bitwise_and": _int_op(lambda a, b: a & b, dtype),
            "bitwise_or": _int_op(lambda a, b: a | b, dtype),
            "bitwise_xor": _int_op(lambda a, b: a ^ b, dtype),
            "bitwise_left_shift": _int_op(shift_left, dtype),
            "bitwise_right_shift": _int_op(shift_right, dtype),
        }
    if name not in table:
        raise ElementError(f"{name} is not defined on {np.dtype(dtype).name}")
    return table[name]


_COMPARE: dict[str, Callable[[Scalar, Scalar], bool]] = {
    "lt": lambda a, b: bool(a < b),
    "le": lambda a, b: bool(a <= b),
    "gt": lambda a, b: bool(a > b),
    "ge": lambda a, b: bool(a >= b),
    "eq": lambda a, b: bool(a == b),
    "ne": lambda a, b: bool(a != b),
}


def _unary(name: str, dtype: Any) -> Callable[[Scalar], Scalar]:
    f32 = dtype is np.float32
    if name == "neg":
        return (lambda a: -a) if f32 else (lambda a: _cast(-int(a), dtype))
    if name == "relu":  # x < 0 gives +0; NaN and −0 stay what they are
        return lambda a: dtype(0) if a < 0 else a
    if name == "abs":
        return (
            (lambda a: _bitcast(_bitcast(a, np.uint32) & np.uint32(0x7FFFFFFF), np.float32))
            if f32
            else (lambda a: _cast(abs(int(a)), dtype))
        )
    if name == "round" and f32:
        return lambda a: np.rint(a)
    raise ElementError(f"{name} is not defined on {np.dtype(dtype).name}")


# ------------------------------------------------------------------------------------------------ scalar operations

#: The scalar operations every element is made of, in the opcode order of ``contracts/src/libraries/ElementOps.sol``
#: (``tests/test_elements_onchain.py`` checks the two agree).
SCALAR_OPS = (
    "add", "sub", "rsub", "mul", "div", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
    "bitwise_right_shift", "lt", "le", "gt", "ge", "eq", "ne", "neg", "abs", "relu", "round", "sqrt", "isnan",
    "copysign", "max", "min", "where", "nan_to_num", "threshold_backward", "cast", "bitcast",
)  # fmt: skip
#: The element dtypes, in the code order of ``ElementOps.sol``.
DTYPE_CODES = ("torch.float32", "torch.int32", "torch.int64", "torch.bool", "torch.int8", "torch.uint8")


def _sqrt_scalar(x: Scalar) -> Scalar:
    """The correctly rounded square root; ±0 and +inf are their own roots, x < 0 and NaN give the canonical NaN
    (``fmath.sqrt_reference``)."""
    if _isnan(x) or x < 0:
        return CANONICAL_NAN
    return np.sqrt(x) if x > 0 else x


def _copysign_scalar(a: Scalar, b: Scalar) -> Scalar:
    ua, ub = _bitcast(a, np.uint32), _bitcast(b, np.uint32)
    return _bitcast((ua & np.uint32(0x7FFFFFFF)) | (ub & np.uint32(0x80000000)), np.float32)


def _nan_to_num_scalar(x: Scalar, nan: Scalar, posinf: Scalar, neginf: Scalar) -> Scalar:
    if _isnan(x):
        return nan
    if np.isposinf(x):
        return posinf
    if np.isneginf(x):
        return neginf
    return x


def scalar(op: str, dtype: Any, *v: Scalar) -> Scalar:
    """Scalar operation ``op`` (one of :data:`SCALAR_OPS`) on operands ``v`` of numpy type ``dtype`` (comparisons,
    ``max``/``min``: the operands'; ``cast``/``bitcast``: the result's, from the operand's own type)."""
    with np.errstate(all="ignore"):
        if op == "cast":
            return _cast(v[0], dtype)
        if op == "bitcast":
            return _bitcast(v[0], dtype)
        if op == "where":
            return _cast(v[1] if v[0] else v[2], dtype)
        x = [_cast(a, dtype) for a in v]
        if op in _COMPARE:
            return np.bool_(_COMPARE[op](x[0], x[1]))
        if op in ("neg", "abs", "relu", "round"):
            return _unary(op, dtype)(x[0])
        if op == "isnan":
            return np.bool_(_isnan(x[0]))
        if op == "max":
            return _max(x[0], x[1])
        if op == "min":
            return _min(x[0], x[1])
        if op == "threshold_backward":  # (grad, x, threshold)
            return dtype(0) if x[1] <= x[2] else x[0]
        if dtype is np.float32 and op == "sqrt":
            return _sqrt_scalar(x[0])
        if dtype is np.float32 and op == "copysign":
            return _copysign_scalar(x[0], x[1])
        if dtype is np.float32 and op == "nan_to_num":
            return _nan_to_num_scalar(x[0], x[1], x[2], x[3])
        if op in SCALAR_OPS:
            return _binary(op, dtype)(x[0], x[1])
        raise ElementError(f"{op} is not a scalar operation")


# ------------------------------------------------------------------------------------------------ the element


class _Args:
    """A record's structural arguments (the canonical JSON list) with its floats put back in place."""

    def __init__(self, record: Any) -> None:
        floats = iter(record.floats)
        self.items = [next(floats) if a == "F" else a for a in json.loads(record.args)]

    def after_tensors(self) -> list[Any]:
        """The arguments after the leading tensor placeholders."""
        i = 0
        while i < len(self.items) and self.items[i] == "T":
            i += 1
        return self.items[i:]

    def scalars(self) -> list[Any]:
        """Every argument that is not a tensor placeholder, in order."""
        return [a for a in self.items if a != "T"]


def _scalar_operand(args: _Args, dtype: Any) -> Scalar:
    rest = [a for a in args.scalars() if a is not None]
    if not rest:
        raise ElementError("no scalar operand")
    return _cast(rest[0], dtype)


def element(record: Any, inputs: Sequence[Operand], j: int, o: int, read: Read) -> Scalar:
    """Element ``o`` (C order) of output ``j`` of ``record``, reading input elements through ``read``."""
    fn, c = _context(record, inputs, j, o, read)
    with np.errstate(all="ignore"):
        return fn(c)


def _context(
    record: Any, inputs: Sequence[Operand], j: int, o: int, read: Read
) -> tuple[Callable[[_Ctx], Scalar], _Ctx]:
    op = record.op
    out_dtype_name, out_shape = record.outputs[j]
    if out_dtype_name not in DTYPES:
        raise ElementError(f"output dtype {out_dtype_name} is outside the vocabulary")
    if not 0 <= o < numel(out_shape):
        raise ElementError(f"element {o} of an output of shape {out_shape}")
    base, _, overload = op.removeprefix("aten.").partition(".")
    fn = _ELEMENT.get(op) or _ELEMENT.get(base)
    if fn is None or op not in VOCABULARY:
        raise ElementError(f"{op} is outside the element vocabulary")
    mi = unravel(o, out_shape)
    ctx = _Ctx(record, inputs, j, o, mi, tuple(out_shape), DTYPES[out_dtype_name], _Args(record), read, base, overload)
    return fn, ctx


@dataclass
class _Ctx:
    record: Any
    inputs: Sequence[Operand]
    j: int
    o: int
    mi: list[int]
    shape: tuple[int, ...]
    dtype: Any
    args: _Args
    read: Read
    base: str
    overload: str

    def operand(self, k: int) -> Scalar:
        """Input ``k``'s element broadcast to this output position."""
        return self.read(k, broadcast_index(self.mi, self.shape, self.inputs[k].shape))


def _undefined(c: _Ctx) -> Scalar:
    raise ElementError(f"{c.record.op} allocates: its contents are only written by a later record")


def _zero(c: _Ctx) -> Scalar:
    return c.dtype(0)


def _one(c: _Ctx) -> Scalar:
    return c.dtype(1)


def _full_like(c: _Ctx) -> Scalar:
    return _cast(c.args.after_tensors()[0], c.dtype)


def _scalar_tensor(c: _Ctx) -> Scalar:
    return _cast(c.args.items[0], c.dtype)


def _same_position(c: _Ctx) -> Scalar:  # view, _unsafe_view, unsqueeze, squeeze, reshape, clone, contiguous
    if numel(c.inputs[0].shape) != numel(c.shape):
        raise ElementError(f"{c.record.op} changes the element count")
    return c.read(0, c.o)


def _view_dtype(c: _Ctx) -> Scalar:
    if tuple(c.inputs[0].shape) != c.shape:
        raise ElementError("a dtype view that changes the shape")
    return scalar("bitcast", c.dtype, c.read(0, c.o))


def _to_copy(c: _Ctx) -> Scalar:
    if tuple(c.inputs[0].shape) != c.shape:
        raise ElementError("a copy that changes the shape")
    return scalar("cast", c.dtype, c.read(0, c.o))


def _copy_(c: _Ctx) -> Scalar:
    return scalar("cast", c.dtype, c.operand(1))


def _t(c: _Ctx) -> Scalar:
    if len(c.shape) < 2:
        return c.read(0, c.o)
    return c.read(0, ravel([c.mi[1], c.mi[0]], c.inputs[0].shape))


def _permute_like(c: _Ctx, perm: Sequence[int]) -> Scalar:
    src = [0] * len(perm)
    for d, p in enumerate(perm):
        src[p] = c.mi[d]
    return c.read(0, ravel(src, c.inputs[0].shape))


def _permute(c: _Ctx) -> Scalar:
    rank = len(c.shape)
    return _permute_like(c, [_dim(d, rank) for d in c.args.after_tensors()[:rank]])


def _transpose(c: _Ctx) -> Scalar:
    rank = len(c.shape)
    a, b = (_dim(d, rank) for d in c.args.after_tensors()[:2])
    perm = list(range(rank))
    perm[a], perm[b] = perm[b], perm[a]
    return _permute_like(c, perm)


def _expand(c: _Ctx) -> Scalar:
    return c.operand(0)


def _slice(c: _Ctx) -> Scalar:
    rest = c.args.after_tensors()
    dim = _dim(rest[0] if rest else 0, len(c.shape))
    n = c.inputs[0].shape[dim]
    start = rest[1] if len(rest) > 1 and rest[1] is not None else 0
    step = rest[3] if len(rest) > 3 else 1
    start = min(max(start + n if start < 0 else start, 0), n)
    src = list(c.mi)
    src[dim] = start + c.mi[dim] * step
    return c.read(0, ravel(src, c.inputs[0].shape))


def _select(c: _Ctx) -> Scalar:
    dim, index = c.args.after_tensors()[:2]
    shape = c.inputs[0].shape
    dim = _dim(dim, len(shape))
    index = index + shape[dim] if index < 0 else index
    if not 0 <= index < shape[dim]:
        raise ElementError(f"select index {index} out of range")
    src = list(c.mi)
    src.insert(dim, index)
    return c.read(0, ravel(src, shape))


def _as_strided(c: _Ctx) -> Scalar:
    rank = len(c.shape)
    rest = c.args.after_tensors()
    strides = rest[rank : 2 * rank]
    src = c.inputs[0]
    offset = rest[2 * rank] if len(rest) > 2 * rank and rest[2 * rank] is not None else src.offset
    if len(src.strides) != len(src.shape):
        raise ElementError("as_strided needs its input's storage geometry (Record.geometry)")
    p = offset + sum(i * s for i, s in zip(c.mi, strides, strict=True))
    return c.read(0, _storage_to_logical(p, src))


def _checked_index(v: Scalar, n: int, negative: bool = False) -> int:
    """An index element as a position in a dimension of size ``n`` (from the end if ``negative`` allows it, as
    ``x[idx]`` does; gather, scatter and index_select refuse negative indices, as ATen does)."""
    i = int(v)
    i = i + n if (i < 0 and negative) else i
    if not 0 <= i < n:
        raise ElementError(f"index {int(v)} out of range for a dimension of size {n}")
    return i


def _index(c: _Ctx) -> Scalar:  # x[idx_0, …, idx_{k-1}], index tensors on the leading dimensions
    x = c.inputs[0]
    k = len(c.inputs) - 1
    lead = len(c.shape) - (len(x.shape) - k)
    idx_shape = c.shape[:lead]
    src = [
        _checked_index(c.read(1 + d, broadcast_index(c.mi[:lead], idx_shape, c.inputs[1 + d].shape)), x.shape[d], True)
        for d in range(k)
    ]
    return c.read(0, ravel(src + list(c.mi[lead:]), x.shape))


def _index_select(c: _Ctx) -> Scalar:
    x = c.inputs[0]
    dim = _dim(c.args.after_tensors()[0], len(x.shape))
    src = list(c.mi)
    src[dim] = _checked_index(c.read(1, c.mi[dim]), x.shape[dim])
    return c.read(0, ravel(src, x.shape))


def _gather(c: _Ctx) -> Scalar:
    x, idx = c.inputs[0], c.inputs[1]
    dim = _dim(c.args.after_tensors()[0], len(x.shape))
    src = list(c.mi)
    src[dim] = _checked_index(c.read(1, ravel(c.mi, idx.shape)), x.shape[dim])
    return c.read(0, ravel(src, x.shape))


def _scatter_value(c: _Ctx) -> Scalar:
    """``self.scatter_(dim, idx, value)``: the value where some index of the slice names this position."""
    idx = c.inputs[1]
    rest = c.args.after_tensors()
    dim = _dim(rest[0], len(c.shape))
    value = [a for a in rest[1:] if not isinstance(a, str)][0]
    if all(c.mi[d] < idx.shape[d] for d in range(len(c.shape)) if d != dim):
        for k in range(idx.shape[dim]):
            at = list(c.mi)
            at[dim] = k
            if _checked_index(c.read(1, ravel(at, idx.shape)), c.shape[dim]) == c.mi[dim]:
                return _cast(value, c.dtype)
    return c.read(0, c.o)


def _binary_op(c: _Ctx) -> Scalar:
    name = c.base.removesuffix("_")
    tensors = sum(1 for a in c.args.items if a == "T")
    if name in ("add", "sub", "rsub") and len([a for a in c.args.scalars() if a is not None]) > (
        0 if tensors == 2 else 1
    ):
        alpha = c.args.scalars()[-1]
        if alpha != 1:
            raise ElementError(f"{c.record.op} with alpha {alpha}: not in the vocabulary (ATen fuses it)")
    a = c.operand(0)
    b = c.operand(1) if tensors == 2 else _scalar_operand(c.args, c.dtype)
    return scalar(name, c.dtype, a, b)


def _compare(c: _Ctx) -> Scalar:
    a = c.operand(0)
    if sum(1 for x in c.args.items if x == "T") == 2:
        b = c.operand(1)
        common = np.float32 if np.float32 in (type(a), type(b)) else type(a)
    else:
        common = type(a)
        b = _scalar_operand(c.args, common)
    return scalar(c.base, common, a, b)


def _unary_op(c: _Ctx) -> Scalar:  # neg, abs, relu, round
    return scalar(c.base, c.dtype, c.read(0, c.o))


def _isnan_op(c: _Ctx) -> Scalar:
    x = c.read(0, c.o)
    return scalar("isnan", type(x), x)


def _sqrt(c: _Ctx) -> Scalar:
    """``fmath.sqrt``: one IEEE square root."""
    return scalar("sqrt", np.float32, c.read(0, c.o))


def _copysign(c: _Ctx) -> Scalar:
    return scalar("copysign", np.float32, c.operand(0), c.operand(1))


def _masked_fill(c: _Ctx) -> Scalar:
    value = [a for a in c.args.after_tensors() if a is not None][0] if c.args.after_tensors() else None
    if value is None:
        value = c.operand(2)
    mask = c.operand(1)
    return scalar("where", c.dtype, mask, _cast(value, c.dtype), None if mask else c.read(0, c.o))


def _triu(c: _Ctx) -> Scalar:
    rest = c.args.after_tensors()
    diagonal = rest[0] if rest else 0
    i, k = c.mi[-2], c.mi[-1]
    return c.read(0, c.o) if k - i >= diagonal else c.dtype(0)


def _split(c: _Ctx) -> Scalar:
    rest = c.args.after_tensors()
    size, dim = rest[0], _dim(rest[1] if len(rest) > 1 else 0, len(c.shape))
    src = list(c.mi)
    src[dim] += c.j * size
    return c.read(0, ravel(src, c.inputs[0].shape))


def _cat(c: _Ctx) -> Scalar:
    rest = c.args.after_tensors()
    dim = _dim(rest[0] if rest else 0, len(c.shape))
    at = c.mi[dim]
    for k, x in enumerate(c.inputs):
        if at < x.shape[dim]:
            src = list(c.mi)
            src[dim] = at
            return c.read(k, ravel(src, x.shape))
        at -= x.shape[dim]
    raise ElementError("cat: position past the last input")


def _slice_backward(c: _Ctx) -> Scalar:
    rank = len(c.shape)
    dim, start, end, step = c.args.after_tensors()[rank : rank + 4]
    dim = _dim(dim, rank)
    g = c.inputs[0]
    i = c.mi[dim] - start
    if i < 0 or i % step or i // step >= g.shape[dim] or c.mi[dim] >= end:
        return c.dtype(0)
    src = list(c.mi)
    src[dim] = i // step
    return c.read(0, ravel(src, g.shape))


def _constant_pad_nd(c: _Ctx) -> Scalar:
    rest = c.args.after_tensors()
    pads = [a for a in rest if isinstance(a, int) and not isinstance(a, bool)]
    value = [a for a in rest if isinstance(a, float)]
    x = c.inputs[0]
    src = list(c.mi)
    for p in range(len(pads) // 2):
        d = len(c.shape) - 1 - p
        src[d] = c.mi[d] - pads[2 * p]
        if not 0 <= src[d] < x.shape[d]:
            return _cast(value[0] if value else 0, c.dtype)
    return c.read(0, ravel(src, x.shape))


def _where(c: _Ctx) -> Scalar:
    cond = c.operand(0)
    return scalar("where", c.dtype, cond, c.operand(1) if cond else None, None if cond else c.operand(2))


def _clamp(c: _Ctx) -> Scalar:
    """``min(max(x, lo), hi)``, either bound absent: one or two scalar operations."""
    lo, hi = (c.args.after_tensors() + [None, None])[:2]
    x = c.read(0, c.o)
    if lo is not None:
        x = scalar("max", c.dtype, x, lo)
    if hi is not None:
        x = scalar("min", c.dtype, x, hi)
    return x


def _nan_to_num(c: _Ctx) -> Scalar:
    nan, posinf, neginf = (c.args.after_tensors() + [None, None, None])[:3]
    info = np.finfo(np.float32)
    return scalar(
        "nan_to_num", np.float32, c.read(0, c.o), 0.0 if nan is None else nan,
        info.max if posinf is None else posinf, info.min if neginf is None else neginf,
    )  # fmt: skip


def _threshold_backward(c: _Ctx) -> Scalar:
    return scalar("threshold_backward", c.dtype, c.operand(0), c.operand(1), c.args.after_tensors()[0])


def _reduce(c: _Ctx, fold: Callable[[Scalar, Scalar], Scalar]) -> Scalar:
    """A fold in ascending order over the reduced dimensions (all of them without a ``dim`` argument)."""
    positions = _slice_positions(c)
    if not positions:
        raise ElementError("a reduction over no elements")
    acc = None
    for i in positions:
        v = c.read(0, i)
        acc = v if acc is None else fold(acc, v)
    return acc


def _slice_positions(c: _Ctx) -> list[int]:
    """The C-order positions in input 0 of the reduced slice of this output element, ascending."""
    x = c.inputs[0]
    rest = c.args.after_tensors()
    dims_arg = [a for a in rest if isinstance(a, int) and not isinstance(a, bool)]
    keepdim = bool(rest and isinstance(rest[-1], bool) and rest[-1])
    dims = sorted({_dim(d, len(x.shape)) for d in dims_arg}) if dims_arg else list(range(len(x.shape)))
    kept = [d for d in range(len(x.shape)) if d not in dims]
    fixed = dict(zip(kept, (c.mi[d] for d in kept) if keepdim else c.mi, strict=False))
    reduced_shape = [x.shape[d] for d in dims]
    out = []
    for r in range(numel(reduced_shape)):
        at = dict(fixed)
        at.update(zip(dims, unravel(r, reduced_shape), strict=True))
        out.append(ravel([at[d] for d in range(len(x.shape))], x.shape))
    return out


def _amax(c: _Ctx) -> Scalar:
    return _reduce(c, lambda a, b: scalar("max", type(a), a, b))


def _amin(c: _Ctx) -> Scalar:
    return _reduce(c, lambda a, b: scalar("min", type(a), a, b))


def _index_add_rows(c: _Ctx) -> Scalar:
    """``kernels.index_add_rows(idx, G, V)``: row ``v`` is ``acc = fl(acc + G[n, :])`` over the ``n`` with
    ``idx[n] == v``, ascending ``n``, from +0 (every index is read; the matching rows' elements are added)."""
    idx, g = c.inputs
    v, d = c.mi
    acc = np.float32(0.0)
    for n in range(idx.shape[0]):
        if _checked_index(c.read(0, n), c.shape[0]) == v:
            acc = scalar("add", np.float32, acc, c.read(1, n * g.shape[1] + d))
    return acc


#: The reductions a dispute descends through one term at a time (DESIGN §8 "Long reductions"), by their element
#: function: the scalar operation of a term and the float32 identity the partial results start from (a term
#: folded into the identity gives the term itself, NaN canonical).
_FOLDS: dict[Any, tuple[str, int]] = {
    _amax: ("max", 0xFF800000), _amin: ("min", 0x7F800000), _index_add_rows: ("add", 0x00000000),
}  # fmt: skip


def fold_of(record: Any, j: int = 0) -> tuple[str, int] | None:
    """(scalar operation, identity bits) of a float32 reduction whose element is a fold of terms, else None."""
    base = record.op.removeprefix("aten.").partition(".")[0]
    fn = _ELEMENT.get(record.op) or _ELEMENT.get(base)
    if fn not in _FOLDS or record.outputs[j][0] != "torch.float32":
        return None
    return _FOLDS[fn]


def fold_terms(record: Any, inputs: Sequence[Operand], j: int = 0) -> int:
    """The number of terms of each element of output ``j`` of a fold record (:func:`fold_of`)."""
    if fold_of(record, j) is None:
        raise ElementError(f"{record.op} is not a fold")
    if record.op == "veritrain.index_add_rows":
        return inputs[0].shape[0]
    return numel(inputs[0].shape) // numel(record.outputs[j][1])


def fold_term(record: Any, inputs: Sequence[Operand], j: int, o: int, n: int, acc: Scalar, read: Read) -> Scalar:
    """The partial result after term ``n`` of element ``o``, from the partial result ``acc`` before it: ``max``/
    ``min`` of ``acc`` and the slice's ``n``-th element, or for ``index_add_rows`` ``acc + G[n, d]`` when
    ``idx[n]`` is the element's row (``acc`` otherwise; ``idx[n]`` is always read)."""
    fold = fold_of(record, j)
    if fold is None:
        raise ElementError(f"{record.op} is not a fold")
    fn, c = _context(record, inputs, j, o, read)
    with np.errstate(all="ignore"):
        if fn is _index_add_rows:
            v, d = c.mi
            if _checked_index(read(0, n), c.shape[0]) != v:
                return acc
            return scalar("add", np.float32, acc, read(1, n * inputs[1].shape[1] + d))
        return scalar(fold[0], np.float32, acc, read(0, _slice_positions(c)[n]))


def fold_partials(record: Any, inputs: Sequence[Operand], j: int, o: int, read: Read) -> list[Scalar]:
    """Every partial result of element ``o``: the identity, then the result after each term (the last is the
    element)."""
    fold = fold_of(record, j)
    if fold is None:
        raise ElementError(f"{record.op} is not a fold")
    acc = np.uint32(fold[1]).view(np.float32)
    out = [acc]
    for n in range(fold_terms(record, inputs, j)):
        acc = fold_term(record, inputs, j, o, n, acc, read)
        out.append(acc)
    return out


def _foreach(c: _Ctx) -> Scalar:
    """``_foreach_<op>`` over lists: output ``j`` is ``<op>`` of the ``j``-th tensor of each list."""
    name = c.base.removeprefix("_foreach_").removesuffix("_")
    n = len(c.record.outputs)
    lists = len(c.inputs) // n
    a = _cast(c.read(c.j, broadcast_index(c.mi, c.shape, c.inputs[c.j].shape)), c.dtype)
    if lists == 2:
        k = n + c.j
        b = _cast(c.read(k, broadcast_index(c.mi, c.shape, c.inputs[k].shape)), c.dtype)
        if [s for s in c.args.scalars() if s is not None and s != 1]:
            raise ElementError(f"{c.record.op} with alpha: not in the vocabulary (ATen fuses it)")
    else:
        b = _scalar_operand(c.args, c.dtype)
    return scalar(name, c.dtype, a, b)


_ELEMENT: dict[str, Callable[[_Ctx], Scalar]] = {
    # allocations and constants
    "empty": _undefined, "empty_strided": _undefined, "new_empty_strided": _undefined, "new_empty": _undefined,
    "empty_like": _undefined,
    "zeros": _zero, "zeros_like": _zero, "new_zeros": _zero, "ones": _one, "ones_like": _one, "triu": _triu,
    "masked_fill": _masked_fill, "split": _split, "cat": _cat, "slice_backward": _slice_backward,
    "constant_pad_nd": _constant_pad_nd, "veritrain.sqrt": _sqrt, "copysign": _copysign, "abs": _unary_op,
    "full_like": _full_like, "scalar_tensor": _scalar_tensor,
    # moves
    "view": _same_position, "_unsafe_view": _same_position, "unsqueeze": _same_position, "squeeze": _same_position,
    "clone": _same_position, "aten.view.dtype": _view_dtype, "_to_copy": _to_copy, "copy_": _copy_, "t": _t,
    "permute": _permute, "transpose": _transpose, "expand": _expand, "slice": _slice, "select": _select,
    "as_strided": _as_strided, "index": _index, "index_select": _index_select, "gather": _gather,
    "aten.scatter_.value": _scatter_value,
    # elementwise
    "add": _binary_op, "add_": _binary_op, "sub": _binary_op, "sub_": _binary_op, "rsub": _binary_op,
    "mul": _binary_op, "mul_": _binary_op, "div": _binary_op, "div_": _binary_op,
    "bitwise_and": _binary_op, "bitwise_or": _binary_op, "bitwise_xor": _binary_op,
    "bitwise_left_shift": _binary_op, "bitwise_right_shift": _binary_op,
    "lt": _compare, "le": _compare, "gt": _compare, "ge": _compare, "eq": _compare, "ne": _compare,
    "neg": _unary_op, "relu": _unary_op, "round": _unary_op, "isnan": _isnan_op, "where": _where,
    "clamp": _clamp, "nan_to_num": _nan_to_num, "threshold_backward": _threshold_backward,
    # reductions
    "amax": _amax, "amin": _amin, "max": _amax, "min": _amin, "veritrain.index_add_rows": _index_add_rows,
    # lists
    "_foreach_add": _foreach, "_foreach_add_": _foreach, "_foreach_sub": _foreach, "_foreach_sub_": _foreach,
    "_foreach_mul": _foreach, "_foreach_mul_": _foreach, "_foreach_div": _foreach, "_foreach_div_": _foreach,
}  # fmt: skip

#: The overloads whose elements are defined here, in opcode order (a record's encoded structure names its operation
#: by its index here: append, never reorder). Each is exercised over edge values against ATen in
#: ``tests/test_elements.py``.
OPCODES: tuple[str, ...] = (
        "aten.new_empty_strided.default", "aten.empty.memory_format", "aten.empty_strided.default",
        "aten.empty_like.default",
        "aten.zeros.default", "aten.zeros_like.default", "aten.ones.default", "aten.ones_like.default",
        "aten.full_like.default", "aten.triu.default", "aten.masked_fill.Scalar", "aten.split.Tensor",
        "aten.cat.default", "aten.slice_backward.default", "aten.constant_pad_nd.default", "veritrain.sqrt",
        "aten.copysign.Tensor", "aten.abs.default",
        "aten.scalar_tensor.default",
        "aten.view.default", "aten._unsafe_view.default", "aten.unsqueeze.default", "aten.squeeze.dim",
        "aten.clone.default", "aten.view.dtype", "aten._to_copy.default", "aten.copy_.default", "aten.t.default",
        "aten.permute.default", "aten.transpose.int", "aten.expand.default", "aten.slice.Tensor",
        "aten.select.int", "aten.as_strided.default", "aten.index.Tensor", "aten.index_select.default",
        "aten.gather.default", "aten.scatter_.value",
        "aten.add.Tensor", "aten.add_.Tensor", "aten.sub.Tensor", "aten.sub_.Tensor", "aten.rsub.Scalar",
        "aten.mul.Tensor", "aten.mul_.Tensor", "aten.div.Tensor", "aten.div_.Tensor",
        "aten.bitwise_and.Scalar", "aten.bitwise_and.Tensor", "aten.bitwise_or.Scalar", "aten.bitwise_or.Tensor",
        "aten.bitwise_xor.Scalar", "aten.bitwise_xor.Tensor",
        "aten.bitwise_left_shift.Tensor_Scalar", "aten.bitwise_right_shift.Tensor_Scalar",
        "aten.lt.Scalar", "aten.lt.Tensor", "aten.le.Scalar", "aten.le.Tensor", "aten.gt.Scalar",
        "aten.gt.Tensor", "aten.ge.Scalar", "aten.ge.Tensor", "aten.eq.Scalar", "aten.eq.Tensor",
        "aten.ne.Scalar", "aten.ne.Tensor",
        "aten.neg.default", "aten.relu.default", "aten.round.default", "aten.isnan.default", "aten.where.self",
        "aten.clamp.default", "aten.nan_to_num.default", "aten.threshold_backward.default",
        "aten.amax.default", "aten.amin.default", "aten.max.default", "aten.min.default", "veritrain.index_add_rows",
        "aten._foreach_add.List", "aten._foreach_add_.List", "aten._foreach_sub.List", "aten._foreach_sub_.List",
        "aten._foreach_mul.Scalar", "aten._foreach_mul_.Scalar", "aten._foreach_mul.List",
        "aten._foreach_mul_.List", "aten._foreach_div.Scalar", "aten._foreach_div_.Scalar",
        "aten._foreach_div.List", "aten._foreach_div_.List", "aten._foreach_add.Scalar", "aten._foreach_add_.Scalar",
)  # fmt: skip
VOCABULARY: frozenset[str] = frozenset(OPCODES)

#: How an output element's reads are placed, by kind, in the code order of ``contracts/src/libraries/ElementReads.sol``:
#: ``none`` reads nothing; ``same`` input 0 at the same position; ``broadcast`` every tensor input at its broadcast
#: position (``where`` and ``masked_fill`` then read the condition and one of them); ``copy`` input 1 broadcast;
#: ``indexed`` a position that depends on an index element (not static); ``reduce`` the reduced slice, ascending;
#: ``foreach`` input ``j`` (and ``n + j``); the others are the view or move of their name.
READ_KINDS = (
    "none", "same", "broadcast", "copy", "t", "permute", "transpose", "slice", "select", "as_strided", "split",
    "cat", "slice_backward", "pad", "triu", "indexed", "reduce", "foreach",
)  # fmt: skip


#: How an element's value is made from its reads, by kind, in the code order of ``ElementEval.sol``.
EVAL_KINDS = (
    "undefined", "zero", "one", "full_like", "scalar_tensor", "move", "bitcast", "cast", "copy", "binary",
    "compare", "unary", "isnan", "sqrt", "copysign", "masked_fill", "triu", "pad", "slice_backward", "where",
    "clamp", "nan_to_num", "threshold_backward", "max", "min", "index_add_rows", "foreach", "scatter",
)  # fmt: skip


def eval_tables() -> tuple[bytes, bytes]:
    """Per opcode (:data:`OPCODES`): its :data:`EVAL_KINDS` code, and the :data:`SCALAR_OPS` code its scalar
    operation has (0xff: none) — the two tables ``ElementEval.sol`` holds."""
    by_fn: dict[Any, str] = {
        _undefined: "undefined", _zero: "zero", _one: "one", _full_like: "full_like",
        _scalar_tensor: "scalar_tensor", _view_dtype: "bitcast", _to_copy: "cast", _copy_: "copy",
        _binary_op: "binary", _compare: "compare", _unary_op: "unary", _isnan_op: "isnan", _sqrt: "sqrt",
        _copysign: "copysign", _masked_fill: "masked_fill", _triu: "triu", _constant_pad_nd: "pad",
        _slice_backward: "slice_backward", _where: "where", _clamp: "clamp", _nan_to_num: "nan_to_num",
        _threshold_backward: "threshold_backward", _amax: "max", _amin: "min", _index_add_rows: "index_add_rows",
        _foreach: "foreach", _scatter_value: "scatter",
    }  # fmt: skip
    kinds, ops = bytearray(), bytearray()
    for op in OPCODES:
        base = op.removeprefix("aten.").split(".")[0]
        fn = _ELEMENT.get(op) or _ELEMENT[base]
        kinds.append(EVAL_KINDS.index(by_fn.get(fn, "move")))
        name = base.removeprefix("_foreach_").removesuffix("_")
        ops.append(SCALAR_OPS.index(name) if by_fn.get(fn) in ("binary", "compare", "unary", "foreach") else 0xFF)
    return bytes(kinds), bytes(ops)


def read_kind(op: str) -> str:
    """The :data:`READ_KINDS` entry of overload ``op``."""
    base = op.removeprefix("aten.").split(".")[0]
    fn = _ELEMENT.get(op) or _ELEMENT.get(base)
    by_fn: dict[Any, str] = {
        _undefined: "none", _zero: "none", _one: "none", _full_like: "none", _scalar_tensor: "none",
        _same_position: "same", _view_dtype: "same", _to_copy: "same", _unary_op: "same", _isnan_op: "same",
        _sqrt: "same", _clamp: "same", _nan_to_num: "same",
        _binary_op: "broadcast", _compare: "broadcast", _where: "broadcast", _masked_fill: "broadcast",
        _copysign: "broadcast", _threshold_backward: "broadcast", _expand: "broadcast",
        _copy_: "copy", _t: "t", _permute: "permute", _transpose: "transpose", _slice: "slice", _select: "select",
        _as_strided: "as_strided", _split: "split", _cat: "cat", _slice_backward: "slice_backward",
        _constant_pad_nd: "pad", _triu: "triu", _index: "indexed", _index_select: "indexed", _gather: "indexed",
        _scatter_value: "indexed", _index_add_rows: "indexed", _amax: "reduce", _amin: "reduce", _foreach: "foreach",
    }  # fmt: skip
    if fn not in by_fn:
        raise ElementError(f"{op} has no read kind")
    return by_fn[fn]


def unsupported(trace: Any) -> dict[str, int]:
    """The operations of ``trace`` outside :data:`VOCABULARY`, with their record counts."""
    out: dict[str, int] = {}
    for r in trace.records:
        if r.op not in VOCABULARY:
            out[r.op] = out.get(r.op, 0) + 1
    return out


def operands(trace: Any, record: Any) -> list[Operand]:
    """What a checker of ``record`` knows of its inputs: their dtypes and shapes (from the records, the state and
    the externals that produced them) and, for ``as_strided``, the geometry the record carries."""
    out = []
    geometry = dict(enumerate(record.geometry))
    for k, ref in enumerate(record.inputs):
        dtype, shape = trace.shape_of(ref)
        off, strides = geometry.get(k, (0, ()))
        out.append(Operand(dtype, tuple(shape), off, tuple(strides)))
    return out


def _flat(t: Any) -> np.ndarray:
    return t.detach().to("cpu").contiguous().reshape(-1).numpy()


def check(trace: Any, index: int, positions: Sequence[int] | None = None, sample: int = 32, seed: int = 0) -> int:
    """Computes elements of record ``index`` of a ``keep_values`` trace from the values its inputs name and
    compares them, bit for bit, with what the step computed: ``positions`` of every output (default: all of an
    output of at most ``sample`` elements, else its first, its last and ``sample`` drawn with ``seed``).
    Returns the number of elements checked; raises :class:`ElementError` on the first that differs."""
    from protocol.repro.trace import UNDEFINED

    record = trace.records[index]
    if not trace.values:
        raise ElementError("this trace kept no values: trace_step(..., keep_values=True)")
    ins = operands(trace, record)
    flats = [_flat(trace.values[ref]) for ref in record.inputs]

    def read(k: int, i: int) -> Scalar:
        return flats[k][i]

    checked = 0
    rng = np.random.default_rng(seed + index)
    for j, (_, shape) in enumerate(record.outputs):
        if record.commitments[j] == UNDEFINED:
            continue
        want = _flat(trace.values[f"r{index}.{j}"])
        n = numel(shape)
        if positions is not None:
            at: Sequence[int] = positions
        elif n <= sample:
            at = range(n)
        else:
            at = sorted({0, n - 1, *rng.integers(0, n, sample).tolist()})
        for o in at:
            got = element(record, ins, j, o, read)
            if _isnan(want[o]) and _isnan(got):
                pass  # every NaN is committed as the canonical NaN (trace.commitment)
            elif np.asarray(got, dtype=want.dtype).tobytes() != want[o : o + 1].tobytes():
                raise ElementError(
                    f"record {index} ({record.op}) output {j} element {o}: computed {got!r}, the step has {want[o]!r}"
                )
            checked += 1
    return checked
