// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {ElementOps} from "./ElementOps.sol";
import {ElementReads} from "./ElementReads.sol";

/// @title ElementEval
/// @notice The value of one output element of an exact-mode trace record from the input elements it reads, as
///         protocol/repro/elements.py `element` computes it (DESIGN §8 "The element of a record"): the reads are
///         consumed in the order `element` makes them (`ElementReads` says where each one is), the scalar work is
///         `ElementOps.compute`. `EVAL` and `SCALAR` are elements.py `eval_tables()`.
library ElementEval {
    /// @notice Per opcode, how its element is made (elements.EVAL_KINDS).
    bytes internal constant EVAL =
        hex"000000000101020203100f050512110d0e0b040505050505060708050505050505050505051b09090909090909090909090909090909090a0a0a0a0a0a0a0a0a0a0a0a0b0b0b0c1314151617181718191a1a1a1a1a1a1a1a1a1a1a1a1a1a";
    /// @notice Per opcode, the ElementOps opcode of its scalar operation (0xff: none).
    bytes internal constant SCALAR =
        hex"ffffffffffffffffffffffffffffffffff11ffffffffffffffffffffffffffffffffffffffff00000101020303040405050606070708090a0a0b0b0c0c0d0d0e0e0f0f101213ffffffffffffffffffff0000010103030303040404040000";

    uint256 internal constant UNDEFINED = 0;
    uint256 internal constant ZERO = 1;
    uint256 internal constant ONE = 2;
    uint256 internal constant FULL_LIKE = 3;
    uint256 internal constant SCALAR_TENSOR = 4;
    uint256 internal constant MOVE = 5;
    uint256 internal constant BITCAST = 6;
    uint256 internal constant CAST = 7;
    uint256 internal constant COPY = 8;
    uint256 internal constant BINARY = 9;
    uint256 internal constant COMPARE = 10;
    uint256 internal constant UNARY = 11;
    uint256 internal constant ISNAN = 12;
    uint256 internal constant SQRT = 13;
    uint256 internal constant COPYSIGN = 14;
    uint256 internal constant MASKED_FILL = 15;
    uint256 internal constant TRIU = 16;
    uint256 internal constant PAD = 17;
    uint256 internal constant SLICE_BACKWARD = 18;
    uint256 internal constant WHERE = 19;
    uint256 internal constant CLAMP = 20;
    uint256 internal constant NAN_TO_NUM = 21;
    uint256 internal constant THRESHOLD_BACKWARD = 22;
    uint256 internal constant MAX = 23;
    uint256 internal constant MIN = 24;
    uint256 internal constant INDEX_ADD_ROWS = 25;
    uint256 internal constant FOREACH = 26;
    uint256 internal constant SCATTER = 27;

    uint256 private constant F32 = 0;

    /// @notice The `EVAL_KINDS` code of opcode `op` (how its element is made; UNDEFINED: an allocation).
    function evalKind(uint256 op) internal pure returns (uint256) {
        return uint8(EVAL[op]);
    }

    uint256 private constant I64 = 2;
    uint256 private constant BOOL = 3;
    uint256 private constant F64 = 6;
    uint8 private constant TAG_INT = 0;
    uint8 private constant TAG_TENSOR = 1;
    uint8 private constant TAG_FLOAT = 2;
    uint8 private constant TAG_NONE = 3;
    uint8 private constant TAG_BOOL = 4;
    uint256 private constant ABSENT = type(uint256).max;

    /// @notice The element has no value (an allocation), or the reads given do not make one.
    error NoElement(uint256 opcode);

    /// @notice A record as the evaluation needs it: the fields `ElementReads` uses, the output's and the inputs'
    ///         dtype codes, and the record's float arguments (binary64 patterns, in argument order).
    struct Input {
        ElementReads.Record r;
        uint256 outDtype;
        uint256[] inDtypes;
        uint64[] floats;
    }

    /// @dev The reads, consumed in order.
    struct Cursor {
        uint256[] values;
        uint256 next;
    }

    function evaluate(Input memory x, uint256 j, uint256 o, uint256[] memory reads) internal pure returns (uint256) {
        uint256 op = x.r.opcode;
        if (op >= EVAL.length) revert NoElement(op);
        uint256 kind = uint8(EVAL[op]);
        Cursor memory c = Cursor(reads, 0);
        uint256 dt = x.outDtype;
        if (kind == UNDEFINED) revert NoElement(op);
        if (kind == ZERO) return 0;
        if (kind == ONE) return ElementOps.cast(1, BOOL, dt);
        if (kind == FULL_LIKE) return _argAs(x, 0, dt);
        if (kind == SCALAR_TENSOR) return _argAs(x, 0, dt);
        if (kind == MOVE) return _last(c);
        if (kind == BITCAST) return ElementOps.compute(ElementOps.BITCAST, dt, x.inDtypes[0], _next(c), 0, 0, 0);
        if (kind == CAST) return ElementOps.cast(_next(c), x.inDtypes[0], dt);
        if (kind == COPY) return ElementOps.cast(_next(c), x.inDtypes[1], dt);
        if (kind == BINARY || kind == FOREACH) return _binary(x, kind, j, c);
        if (kind == COMPARE) return _compare(x, c);
        if (kind == UNARY) return _op(uint8(SCALAR[op]), dt, ElementOps.cast(_next(c), x.inDtypes[0], dt), 0, 0);
        if (kind == ISNAN) return ElementOps.compute(ElementOps.ISNAN, BOOL, x.inDtypes[0], _next(c), 0, 0, 0);
        if (kind == SQRT) return _op(ElementOps.SQRT, F32, _next(c), 0, 0);
        return _evaluateMore(x, kind, o, c);
    }

    function _evaluateMore(Input memory x, uint256 kind, uint256 o, Cursor memory c) private pure returns (uint256) {
        uint256 dt = x.outDtype;
        if (kind == COPYSIGN) {
            uint256 a = ElementOps.cast(_next(c), x.inDtypes[0], F32);
            return _op(ElementOps.COPYSIGN, F32, a, ElementOps.cast(_next(c), x.inDtypes[1], F32), 0);
        }
        if (kind == WHERE) {
            bool cond = _next(c) != 0;
            return ElementOps.cast(_next(c), x.inDtypes[cond ? 1 : 2], dt);
        }
        if (kind == MASKED_FILL) {
            if (_next(c) != 0) return _argAs(x, 0, dt);
            return _next(c);
        }
        if (kind == TRIU || kind == SLICE_BACKWARD) return c.values.length > 0 ? _next(c) : 0;
        if (kind == PAD) {
            if (c.values.length > 0) return _next(c);
            uint256 f = _firstFloat(x);
            return f == ABSENT ? 0 : ElementOps.cast(x.floats[f], F64, dt);
        }
        if (kind == CLAMP) return _clamp(x, c);
        if (kind == NAN_TO_NUM) return _nanToNum(x, c);
        if (kind == THRESHOLD_BACKWARD) {
            uint256 g = ElementOps.cast(_next(c), x.inDtypes[0], dt);
            uint256 v = ElementOps.cast(_next(c), x.inDtypes[1], dt);
            return _op(ElementOps.THRESHOLD_BACKWARD, dt, g, v, _argAs(x, 0, dt));
        }
        if (kind == MAX || kind == MIN) {
            uint256 acc = _next(c);
            uint256 sop = kind == MAX ? ElementOps.MAX : ElementOps.MIN;
            while (c.next < c.values.length) {
                acc = _op(sop, x.inDtypes[0], acc, _next(c), 0);
            }
            return acc;
        }
        if (kind == INDEX_ADD_ROWS) return _indexAddRows(x, o, c);
        if (kind == SCATTER) return _scatter(x, o, c);
        revert NoElement(x.r.opcode);
    }

    function _binary(Input memory x, uint256 kind, uint256 j, Cursor memory c) private pure returns (uint256) {
        uint256 dt = x.outDtype;
        uint256 sop = uint8(SCALAR[x.r.opcode]);
        uint256 tensors = _tensors(x);
        uint256 a;
        uint256 b;
        if (kind == FOREACH) {
            uint256 n = x.r.outputs;
            a = ElementOps.cast(_next(c), x.inDtypes[j], dt);
            if (x.r.inShapes.length / n == 2) {
                b = ElementOps.cast(_next(c), x.inDtypes[n + j], dt);
                _noAlpha(x, 0);
            } else {
                b = _argAs(x, 0, dt);
            }
        } else {
            a = ElementOps.cast(_next(c), x.inDtypes[0], dt);
            if (tensors == 2) {
                b = ElementOps.cast(_next(c), x.inDtypes[1], dt);
                if (sop == ElementOps.ADD || sop == ElementOps.SUB) _noAlpha(x, 0);
            } else {
                b = _argAs(x, 0, dt);
                if (sop == ElementOps.ADD || sop == ElementOps.SUB || sop == ElementOps.RSUB) _noAlpha(x, 1);
            }
        }
        return _op(sop, dt, a, b, 0);
    }

    function _compare(Input memory x, Cursor memory c) private pure returns (uint256) {
        uint256 sop = uint8(SCALAR[x.r.opcode]);
        uint256 common = x.inDtypes[0];
        uint256 a = _next(c);
        uint256 b;
        if (_tensors(x) == 2) {
            if (x.inDtypes[1] == F32) common = F32;
            a = ElementOps.cast(a, x.inDtypes[0], common);
            b = ElementOps.cast(_next(c), x.inDtypes[1], common);
        } else {
            b = _argAs(x, 0, common);
        }
        return _op(sop, common, a, b, 0);
    }

    function _clamp(Input memory x, Cursor memory c) private pure returns (uint256 v) {
        uint256 dt = x.outDtype;
        v = _next(c);
        uint256 lo = _afterTensors(x, 0);
        uint256 hi = _afterTensors(x, 1);
        if (lo != ABSENT && !_isNone(x, lo)) v = _op(ElementOps.MAX, dt, v, _argAs(x, _scalarIndex(x, lo), dt), 0);
        if (hi != ABSENT && !_isNone(x, hi)) v = _op(ElementOps.MIN, dt, v, _argAs(x, _scalarIndex(x, hi), dt), 0);
    }

    function _nanToNum(Input memory x, Cursor memory c) private pure returns (uint256) {
        uint256 v = _next(c);
        uint256[3] memory fill = [uint256(0), 0x7f7fffff, 0xff7fffff]; // nan → 0, ±inf → ±FLT_MAX
        for (uint256 k = 0; k < 3; ++k) {
            uint256 a = _afterTensors(x, k);
            if (a != ABSENT && !_isNone(x, a)) fill[k] = _argAs(x, _scalarIndex(x, a), F32);
        }
        return ElementOps.compute(ElementOps.NAN_TO_NUM, F32, F32, v, fill[0], fill[1], fill[2]);
    }

    function _indexAddRows(Input memory x, uint256 o, Cursor memory c) private pure returns (uint256 acc) {
        uint256 row = o / x.r.outShape[1];
        uint256 n = x.r.inShapes[0][0];
        for (uint256 q = 0; q < n; ++q) {
            if (_pos(_next(c), x.inDtypes[0], x.r.outShape[0]) == row) {
                acc = _op(ElementOps.ADD, F32, acc, ElementOps.cast(_next(c), x.inDtypes[1], F32), 0);
            }
        }
    }

    function _scatter(Input memory x, uint256 o, Cursor memory c) private pure returns (uint256) {
        uint256[] memory mi = ElementReads.unravel(o, x.r.outShape);
        uint256 dim = _dimArg(x, mi.length);
        uint32[] memory idx = x.r.inShapes[1];
        bool inside = true;
        for (uint256 d = 0; d < mi.length; ++d) {
            if (d != dim && mi[d] >= idx[d]) inside = false;
        }
        if (inside) {
            for (uint256 q = 0; q < idx[dim]; ++q) {
                if (_pos(_next(c), x.inDtypes[1], x.r.outShape[dim]) == mi[dim]) {
                    return _argAs(x, 1, x.outDtype); // scalars: dim, then the value
                }
            }
        }
        return _next(c);
    }

    // ------------------------------------------------------------------ arguments

    function _tensors(Input memory x) private pure returns (uint256 n) {
        for (uint256 a = 0; a < x.r.tags.length; ++a) {
            if (x.r.tags[a] == TAG_TENSOR) ++n;
        }
    }

    /// @dev The argument index of the `k`-th argument after the leading tensor placeholders (ABSENT past the end).
    function _afterTensors(Input memory x, uint256 k) private pure returns (uint256) {
        uint256 a;
        while (a < x.r.tags.length && x.r.tags[a] == TAG_TENSOR) {
            ++a;
        }
        return a + k < x.r.tags.length ? a + k : ABSENT;
    }

    function _isNone(Input memory x, uint256 a) private pure returns (bool) {
        return x.r.tags[a] == TAG_NONE;
    }

    /// @dev Argument `a`'s position among the non-tensor arguments that are not None.
    function _scalarIndex(Input memory x, uint256 a) private pure returns (uint256 s) {
        for (uint256 q = 0; q < a; ++q) {
            uint8 t = x.r.tags[q];
            if (t != TAG_TENSOR && t != TAG_NONE) ++s;
        }
    }

    function _firstFloat(Input memory x) private pure returns (uint256) {
        return x.floats.length > 0 ? 0 : ABSENT;
    }

    function _dimArg(Input memory x, uint256 rank) private pure returns (uint256) {
        int256 d = x.r.values[_afterTensors(x, 0)];
        int256 r = int256(rank);
        return uint256(d < 0 ? d + r : d);
    }

    /// @dev An index element as a position in a dimension of `size` (negative or past the end: none).
    function _pos(uint256 bits, uint256 dtype, uint256 size) private pure returns (uint256) {
        int256 v = ElementOps.signed(bits, dtype);
        if (v < 0 || v >= int256(size)) revert ElementReads.IndexOutOfRange(v, size);
        return uint256(v);
    }

    /// @dev The `s`-th scalar argument (non-tensor, not None) as dtype `dt`: an int as int64, a float (its binary64
    ///      pattern from `floats`) as float64, a bool as bool, each cast to `dt` (ATen's wrapped-number rule).
    function _argAs(Input memory x, uint256 s, uint256 dt) private pure returns (uint256) {
        uint256 seen = 0;
        uint256 f = 0;
        for (uint256 a = 0; a < x.r.tags.length; ++a) {
            uint8 t = x.r.tags[a];
            if (t == TAG_TENSOR || t == TAG_NONE) continue;
            if (seen++ == s) {
                if (t == TAG_FLOAT) return ElementOps.cast(x.floats[f], F64, dt);
                if (t == TAG_BOOL) return ElementOps.cast(uint256(x.r.values[a]) & 1, BOOL, dt);
                if (t == TAG_INT) return ElementOps.cast(uint256(uint64(int64(x.r.values[a]))), I64, dt);
                revert NoElement(x.r.opcode);
            }
            if (t == TAG_FLOAT) ++f;
        }
        revert NoElement(x.r.opcode);
    }

    /// @dev An add/sub/rsub with a scalar `alpha` other than 1 is outside the vocabulary (ATen fuses it): every
    ///      scalar argument from the `first`-th on must be 1.
    function _noAlpha(Input memory x, uint256 first) private pure {
        uint256 s = 0;
        uint256 f = 0;
        for (uint256 a = 0; a < x.r.tags.length; ++a) {
            uint8 t = x.r.tags[a];
            if (t == TAG_TENSOR || t == TAG_NONE) continue;
            bool one = t == TAG_FLOAT ? x.floats[f] == 0x3ff0000000000000 : x.r.values[a] == 1;
            if (s++ >= first && !one) revert NoElement(x.r.opcode);
            if (t == TAG_FLOAT) ++f;
        }
    }

    function _op(uint256 sop, uint256 dt, uint256 a, uint256 b, uint256 c) private pure returns (uint256) {
        return ElementOps.compute(sop, dt, dt, a, b, c, 0);
    }

    function _next(Cursor memory c) private pure returns (uint256) {
        if (c.next >= c.values.length) revert NoElement(type(uint256).max);
        return c.values[c.next++];
    }

    function _last(Cursor memory c) private pure returns (uint256) {
        if (c.values.length == 0) revert NoElement(type(uint256).max);
        return c.values[c.values.length - 1];
    }
}
