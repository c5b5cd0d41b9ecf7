// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Float32} from "./Float32.sol";

/// @title ElementOps
/// @notice The scalar operations an exact-mode trace record's elements are made of (protocol/repro/elements.py
///         `scalar`, DESIGN §8 "The element of a record"), over raw element bits: a float32 is its bit pattern, an
///         integer its two's-complement bits in its width, a bool 0 or 1, a float64 (only ever a record's scalar
///         argument) its bit pattern. Opcodes follow `SCALAR_OPS`, dtype codes `DTYPE_CODES` (float64 last, as a
///         source only); tests/test_elements_onchain.py checks both orders and every operation against Python.
/// @dev `compute(op, dtype, src, a, b, c, d)`: the operands are of dtype `src` and are first cast to `dtype` (the
///      operation's type: for comparisons the type compared, the result a bool; for `cast`/`bitcast` the target);
///      `where(cond, b, c)` casts the chosen operand. An element the semantics leave undefined (a cast out of range,
///      an operation outside its dtypes) reverts with `ElementUndefined`.
library ElementOps {
    // dtype codes (DTYPE_CODES)
    uint256 internal constant F32 = 0;
    uint256 internal constant I32 = 1;
    uint256 internal constant I64 = 2;
    uint256 internal constant BOOL = 3;
    uint256 internal constant I8 = 4;
    uint256 internal constant U8 = 5;
    uint256 internal constant F64 = 6;

    // opcodes (SCALAR_OPS)
    uint256 internal constant ADD = 0;
    uint256 internal constant SUB = 1;
    uint256 internal constant RSUB = 2;
    uint256 internal constant MUL = 3;
    uint256 internal constant DIV = 4;
    uint256 internal constant BAND = 5;
    uint256 internal constant BOR = 6;
    uint256 internal constant BXOR = 7;
    uint256 internal constant SHL = 8;
    uint256 internal constant SHR = 9;
    uint256 internal constant LT = 10;
    uint256 internal constant LE = 11;
    uint256 internal constant GT = 12;
    uint256 internal constant GE = 13;
    uint256 internal constant EQ = 14;
    uint256 internal constant NE = 15;
    uint256 internal constant NEG = 16;
    uint256 internal constant ABS = 17;
    uint256 internal constant RELU = 18;
    uint256 internal constant ROUND = 19;
    uint256 internal constant SQRT = 20;
    uint256 internal constant ISNAN = 21;
    uint256 internal constant COPYSIGN = 22;
    uint256 internal constant MAX = 23;
    uint256 internal constant MIN = 24;
    uint256 internal constant WHERE = 25;
    uint256 internal constant NAN_TO_NUM = 26;
    uint256 internal constant THRESHOLD_BACKWARD = 27;
    uint256 internal constant CAST = 28;
    uint256 internal constant BITCAST = 29;

    uint256 private constant F32_SIGN = 0x80000000;
    uint256 private constant F32_ABS = 0x7fffffff;
    uint256 private constant F32_INF = 0x7f800000;
    uint256 private constant F32_ONE = 0x3f800000;

    /// @notice Operation `op` on dtype `dtype` from operands of dtype `src` has no defined element for operand `a`.
    error ElementUndefined(uint256 op, uint256 dtype, uint256 src, uint256 a);

    function compute(uint256 op, uint256 dtype, uint256 src, uint256 a, uint256 b, uint256 c, uint256 d)
        internal
        pure
        returns (uint256)
    {
        if (op == CAST) return cast(a, src, dtype);
        if (op == BITCAST) {
            if (width(src) != width(dtype) || src == BOOL || dtype == BOOL) revert ElementUndefined(op, dtype, src, a);
            return a;
        }
        if (op == WHERE) return a != 0 ? cast(b, src, dtype) : cast(c, src, dtype);
        if (op == ISNAN) return src == F32 && a & F32_ABS > F32_INF ? 1 : 0;
        if (src != dtype) {
            (a, b, c, d) = (cast(a, src, dtype), cast(b, src, dtype), cast(c, src, dtype), cast(d, src, dtype));
        }
        if (dtype == F32) return _f32(op, uint32(a), uint32(b), uint32(c), uint32(d));
        if (dtype == BOOL) {
            if (op == BAND) return a & b;
            if (op == BOR) return a | b;
            if (op == BXOR) return a ^ b;
            if (op == EQ) return a == b ? 1 : 0;
            if (op == NE) return a != b ? 1 : 0;
            revert ElementUndefined(op, dtype, src, a);
        }
        if (dtype == F64) revert ElementUndefined(op, dtype, src, a);
        return _int(op, dtype, a, b, c);
    }

    /// @notice `v` of dtype `src` as dtype `dst`: float → integer truncates toward zero (out of range: undefined),
    ///         integers wrap, integer → float32 rounds to nearest even, → bool is "nonzero" (a NaN is true, −0 false).
    function cast(uint256 v, uint256 src, uint256 dst) internal pure returns (uint256) {
        if (src == dst) return v;
        if (src == F64) {
            if (dst == F32) return Float32.fromFloat64(uint64(v));
            if (dst == BOOL) return v & 0x7fffffffffffffff != 0 ? 1 : 0;
            revert ElementUndefined(CAST, dst, src, v);
        }
        if (src == F32) {
            if (dst == BOOL) return v & F32_ABS != 0 ? 1 : 0;
            if (v & F32_ABS >= F32_INF) revert ElementUndefined(CAST, dst, src, v);
            int256 t = Float32.toInt(uint32(v));
            (int256 lo, int256 hi) = _range(dst);
            if (t < lo || t > hi) revert ElementUndefined(CAST, dst, src, v);
            return uint256(t) & _mask(dst);
        }
        if (src == BOOL) return dst == F32 ? (v != 0 ? F32_ONE : 0) : v;
        int256 s = signed(v, src);
        if (dst == F32) return Float32.fromInt(s);
        if (dst == BOOL) return s != 0 ? 1 : 0;
        if (dst == F64) revert ElementUndefined(CAST, dst, src, v);
        return uint256(s) & _mask(dst);
    }

    /// @notice The bits of dtype `dtype`.
    function width(uint256 dtype) internal pure returns (uint256) {
        if (dtype == F32 || dtype == I32) return 32;
        if (dtype == I64 || dtype == F64) return 64;
        if (dtype == BOOL || dtype == I8 || dtype == U8) return 8;
        revert ElementUndefined(CAST, dtype, dtype, 0);
    }

    /// @notice The value of integer bits `v` of dtype `dtype` (uint8 unsigned, every other integer signed).
    function signed(uint256 v, uint256 dtype) internal pure returns (int256) {
        uint256 w = width(dtype);
        v &= _mask(dtype);
        if (dtype == U8 || v >> (w - 1) == 0) return int256(v);
        return int256(v) - int256(uint256(1) << w);
    }

    function _f32(uint256 op, uint32 a, uint32 b, uint32 c, uint32 d) private pure returns (uint256) {
        if (op == ADD) return Float32.add(a, b);
        if (op == SUB) return Float32.sub(a, b);
        if (op == RSUB) return Float32.sub(b, a);
        if (op == MUL) return Float32.mul(a, b);
        if (op == DIV) return Float32.div(a, b);
        if (op == LT) return Float32.lt(a, b) ? 1 : 0;
        if (op == LE) return Float32.le(a, b) ? 1 : 0;
        if (op == GT) return Float32.lt(b, a) ? 1 : 0;
        if (op == GE) return Float32.le(b, a) ? 1 : 0;
        if (op == EQ) return Float32.eq(a, b) ? 1 : 0;
        if (op == NE) return Float32.eq(a, b) ? 0 : 1;
        if (op == NEG) return Float32.neg(a);
        if (op == ABS) return Float32.abs(a);
        if (op == RELU) return Float32.lt(a, 0) ? 0 : a; // −0 and NaN stay
        if (op == ROUND) return Float32.roundEven(a);
        if (op == SQRT) return Float32.sqrt(a);
        if (op == COPYSIGN) return (uint256(a) & F32_ABS) | (uint256(b) & F32_SIGN);
        if (op == MAX || op == MIN) {
            if (Float32.isNaN(a) || Float32.isNaN(b)) return Float32.NAN;
            bool takeB = op == MAX ? Float32.lt(a, b) : Float32.lt(b, a); // of equal values the first
            return takeB ? b : a;
        }
        if (op == NAN_TO_NUM) {
            if (Float32.isNaN(a)) return b;
            if (a == F32_INF) return c;
            if (a == F32_INF | F32_SIGN) return d;
            return a;
        }
        if (op == THRESHOLD_BACKWARD) return Float32.le(b, c) ? 0 : a; // (grad, x, threshold)
        revert ElementUndefined(op, F32, F32, a);
    }

    function _int(uint256 op, uint256 dtype, uint256 a, uint256 b, uint256 c) private pure returns (uint256) {
        uint256 mask = _mask(dtype);
        int256 x = signed(a, dtype);
        int256 y = signed(b, dtype);
        unchecked {
            if (op == ADD) return (a + b) & mask;
            if (op == SUB) return (a - b) & mask;
            if (op == RSUB) return (b - a) & mask;
            if (op == MUL) return (a * b) & mask;
            if (op == NEG) return (0 - a) & mask;
        }
        if (op == BAND) return a & b;
        if (op == BOR) return a | b;
        if (op == BXOR) return a ^ b;
        uint256 w = width(dtype);
        if (op == SHL) return y >= 0 && uint256(y) < w ? (a << uint256(y)) & mask : 0;
        if (op == SHR) {
            if (y >= 0 && uint256(y) < w) return uint256(x >> uint256(y)) & mask;
            return x < 0 ? mask : 0;
        }
        if (op == LT) return x < y ? 1 : 0;
        if (op == LE) return x <= y ? 1 : 0;
        if (op == GT) return x > y ? 1 : 0;
        if (op == GE) return x >= y ? 1 : 0;
        if (op == EQ) return x == y ? 1 : 0;
        if (op == NE) return x != y ? 1 : 0;
        if (op == ABS) return uint256(x < 0 ? -x : x) & mask;
        if (op == RELU) return x < 0 ? 0 : a;
        if (op == MAX) return y > x ? b : a;
        if (op == MIN) return y < x ? b : a;
        if (op == THRESHOLD_BACKWARD) return signed(b, dtype) <= signed(c, dtype) ? 0 : a;
        revert ElementUndefined(op, dtype, dtype, a);
    }

    function _mask(uint256 dtype) private pure returns (uint256) {
        return (uint256(1) << width(dtype)) - 1;
    }

    function _range(uint256 dtype) private pure returns (int256 lo, int256 hi) {
        if (dtype == U8) return (0, 255);
        if (dtype == BOOL) return (0, 1);
        uint256 w = width(dtype);
        return (-int256(uint256(1) << (w - 1)), int256(uint256(1) << (w - 1)) - 1);
    }
}
