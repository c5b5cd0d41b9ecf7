// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

/// @title Float32
/// @notice IEEE-754 binary32 arithmetic over `uint32` bit patterns, round-to-nearest-even, subnormals kept (no
///         flush-to-zero), infinities and NaN. Every NaN result is the canonical quiet NaN 0x7fc00000 (NaN payloads
///         are not propagated); `neg` and `abs` are sign-bit operations (IEEE 754 §5.5.1) and keep a NaN's payload.
/// @dev Every finite nonzero operand is unpacked to m·2^e (m < 2^24); the exact (or sticky-marked) result is rounded
///      once by `_round`.
library Float32 {
    uint256 internal constant SIGN = 0x80000000;
    uint256 internal constant ABS = 0x7fffffff;
    uint256 internal constant INF = 0x7f800000;
    /// @notice The canonical quiet NaN every operation returns for a NaN result.
    uint32 internal constant NAN = 0x7fc00000;

    /// @notice `toInt` of an infinity or a NaN (no integer value).
    error Float32NotFinite(uint32 x);

    function isNaN(uint32 a) internal pure returns (bool) {
        return uint256(a) & ABS > INF;
    }

    function neg(uint32 a) internal pure returns (uint32) {
        return a ^ uint32(SIGN);
    }

    function abs(uint32 a) internal pure returns (uint32) {
        return a & uint32(ABS);
    }

    /// @notice a + b, correctly rounded (RNE). An exact zero sum of nonzero operands is +0; (-0) + (-0) = -0.
    function add(uint32 a, uint32 b) internal pure returns (uint32) {
        unchecked {
            uint256 x = a;
            uint256 y = b;
            uint256 ax = x & ABS;
            uint256 ay = y & ABS;
            if (ax > INF || ay > INF) return NAN;
            if (ax == INF) return (ay == INF && x != y) ? NAN : a;
            if (ay == INF) return b;
            if (ax == 0) return ay == 0 ? uint32(x & y) : b;
            if (ay == 0) return a;
            if (ax < ay) (x, y, ax, ay) = (y, x, ay, ax);
            (uint256 ma, int256 ea) = _unpack(ax);
            (uint256 mb, int256 eb) = _unpack(ay);
            uint256 d = uint256(ea - eb);
            // Beyond 40 bits apart the smaller operand only decides the sticky bit: 2^(ea-40) lies between the
            // same rounding boundaries (multiples of 2^(ea-2)) as the true |b| < 2^(ea-17).
            if (d > 40) {
                mb = 1;
                d = 40;
            }
            ma <<= d;
            uint256 m = ((x ^ y) & SIGN) == 0 ? ma + mb : ma - mb;
            if (m == 0) return 0;
            return _round(x & SIGN, m, ea - int256(d));
        }
    }

    /// @notice a - b = a + (-b), correctly rounded (RNE).
    function sub(uint32 a, uint32 b) internal pure returns (uint32) {
        return add(a, b ^ uint32(SIGN));
    }

    /// @notice a · b, correctly rounded (RNE); 0 · inf is NaN.
    function mul(uint32 a, uint32 b) internal pure returns (uint32) {
        unchecked {
            uint256 ax = uint256(a) & ABS;
            uint256 ay = uint256(b) & ABS;
            uint256 sign = (uint256(a) ^ uint256(b)) & SIGN;
            if (ax > INF || ay > INF) return NAN;
            if (ax == INF || ay == INF) return (ax == 0 || ay == 0) ? NAN : uint32(sign | INF);
            if (ax == 0 || ay == 0) return uint32(sign);
            (uint256 ma, int256 ea) = _unpack(ax);
            (uint256 mb, int256 eb) = _unpack(ay);
            return _round(sign, ma * mb, ea + eb);
        }
    }

    /// @notice a / b, correctly rounded (RNE); x/0 is a signed infinity for x ≠ 0, 0/0 and inf/inf are NaN.
    function div(uint32 a, uint32 b) internal pure returns (uint32) {
        unchecked {
            uint256 ax = uint256(a) & ABS;
            uint256 ay = uint256(b) & ABS;
            uint256 sign = (uint256(a) ^ uint256(b)) & SIGN;
            if (ax > INF || ay > INF) return NAN;
            if (ax == INF) return ay == INF ? NAN : uint32(sign | INF);
            if (ay == INF) return uint32(sign);
            if (ay == 0) return ax == 0 ? NAN : uint32(sign | INF);
            if (ax == 0) return uint32(sign);
            (uint256 ma, int256 ea) = _unpack(ax);
            (uint256 mb, int256 eb) = _unpack(ay);
            uint256 n = ma << 80; // quotient >= 2^56: at least 33 bits below any rounding position
            uint256 q = n / mb;
            if (n % mb != 0) q |= 1; // sticky: a nonzero remainder
            return _round(sign, q, ea - eb - 80);
        }
    }

    /// @notice √a, correctly rounded (RNE); √(-0) = -0, √x = NaN for x < 0.
    function sqrt(uint32 a) internal pure returns (uint32) {
        unchecked {
            uint256 x = a;
            uint256 ax = x & ABS;
            if (ax > INF) return NAN;
            if (ax == 0) return a;
            if (x & SIGN != 0) return NAN;
            if (ax == INF) return a;
            (uint256 m, int256 e) = _unpack(ax);
            if (e & 1 != 0) {
                m <<= 1;
                e -= 1;
            }
            uint256 v = m << 100; // root >= 2^50: at least 27 bits below any rounding position
            uint256 r = _isqrt(v);
            if (r * r != v) r |= 1; // sticky
            return _round(0, r, (e - 100) / 2);
        }
    }

    /// @notice a == b (IEEE): false if either is NaN, +0 == -0.
    function eq(uint32 a, uint32 b) internal pure returns (bool) {
        return !isNaN(a) && !isNaN(b) && _key(a) == _key(b);
    }

    /// @notice a < b (IEEE): false if either is NaN.
    function lt(uint32 a, uint32 b) internal pure returns (bool) {
        return !isNaN(a) && !isNaN(b) && _key(a) < _key(b);
    }

    /// @notice a <= b (IEEE): false if either is NaN.
    function le(uint32 a, uint32 b) internal pure returns (bool) {
        return !isNaN(a) && !isNaN(b) && _key(a) <= _key(b);
    }

    /// @notice The binary32 nearest to v (RNE); |v| >= 2^128 · (1 − 2^−25) rounds to a signed infinity. 0 → +0.
    function fromInt(int256 v) internal pure returns (uint32) {
        unchecked {
            if (v == 0) return 0;
            if (v > 0) return _round(0, uint256(v), 0);
            return _round(SIGN, uint256(-(v + 1)) + 1, 0);
        }
    }

    /// @notice a truncated toward zero; reverts with `Float32NotFinite` on an infinity or NaN (every finite binary32
    ///         fits an int256).
    function toInt(uint32 a) internal pure returns (int256) {
        unchecked {
            uint256 ax = uint256(a) & ABS;
            if (ax >= INF) revert Float32NotFinite(a);
            if (ax == 0) return 0;
            (uint256 m, int256 e) = _unpack(ax);
            uint256 mag = e >= 0 ? m << uint256(e) : m >> uint256(-e);
            return uint256(a) & SIGN != 0 ? -int256(mag) : int256(mag);
        }
    }

    /// @notice a rounded to an integral value, ties to even (IEEE roundToIntegralTiesToEven, numpy `rint`): the sign is
    ///         kept (−0.4 → −0), |a| ≥ 2^23 and infinities are already integral, a NaN gives the canonical NaN.
    function roundEven(uint32 a) internal pure returns (uint32) {
        unchecked {
            uint256 x = a;
            uint256 ax = x & ABS;
            if (ax > INF) return NAN;
            if (ax >= 0x4b000000) return a;
            uint256 sign = x & SIGN;
            if (ax <= 0x3f000000) return uint32(sign); // |a| <= 0.5
            uint256 m = (ax & 0x7fffff) | 0x800000;
            uint256 s = 150 - (ax >> 23); // bits of m below the unit: 1..24
            uint256 q = m >> s;
            uint256 rem = m - (q << s);
            uint256 half = uint256(1) << (s - 1);
            if (rem > half || (rem == half && q & 1 == 1)) ++q;
            return uint32(sign) | fromInt(int256(q)); // q <= 2^23: exact
        }
    }

    /// @notice The binary32 nearest to the binary64 pattern `a` (RNE), as a C cast from double: a NaN gives the canonical
    ///         NaN, overflow a signed infinity, underflow a signed zero.
    function fromFloat64(uint64 a) internal pure returns (uint32) {
        unchecked {
            uint256 x = a;
            uint256 sign = (x >> 63) << 31;
            uint256 ex = (x >> 52) & 0x7ff;
            uint256 f = x & ((uint256(1) << 52) - 1);
            if (ex == 0x7ff) return f != 0 ? NAN : uint32(sign | INF);
            if (ex == 0 && f == 0) return uint32(sign);
            (uint256 m, int256 e) = ex == 0 ? (f, int256(-1074)) : (f | (uint256(1) << 52), int256(ex) - 1075);
            if (int256(_msb(m)) + e < -150) return uint32(sign); // below half the least subnormal: rounds to 0
            return _round(sign, m, e);
        }
    }

    /// @dev A finite nonzero magnitude as m·2^e.
    function _unpack(uint256 ax) private pure returns (uint256 m, int256 e) {
        unchecked {
            uint256 ex = ax >> 23;
            m = ax & 0x7fffff;
            if (ex == 0) return (m, -149);
            return (m | 0x800000, int256(ex) - 150);
        }
    }

    /// @dev Total-order key of a non-NaN pattern with -0 and +0 equal.
    function _key(uint32 a) private pure returns (int256) {
        uint256 x = a;
        return x & SIGN != 0 ? -int256(x & ABS) : int256(x);
    }

    /// @dev sign | RNE(m·2^e) for m > 0. A sticky bit may be or-ed into m's lowest bit when at least two bits of m
    ///      lie below the rounding position (callers guarantee it).
    function _round(uint256 sign, uint256 m, int256 e) private pure returns (uint32) {
        unchecked {
            int256 top = int256(_msb(m)) + e;
            if (top > 127) return uint32(sign | INF);
            int256 q = top - 23; // exponent of the result's ulp
            if (q < -149) q = -149;
            int256 s = q - e;
            uint256 mant;
            if (s <= 0) {
                mant = m << uint256(-s);
            } else {
                uint256 us = uint256(s);
                mant = m >> us;
                uint256 rem = m - (mant << us);
                uint256 half = uint256(1) << (us - 1);
                if (rem > half || (rem == half && mant & 1 == 1)) ++mant;
            }
            // mant in [2^23, 2^24] encodes exponent q + 150 (a carry to 2^24 bumps it); below 2^23 it is subnormal.
            uint256 bits = (uint256(q + 149) << 23) + mant;
            if (bits >= INF) return uint32(sign | INF);
            return uint32(sign | bits);
        }
    }

    function _msb(uint256 x) private pure returns (uint256 r) {
        unchecked {
            if (x >> 128 != 0) (x, r) = (x >> 128, r + 128);
            if (x >> 64 != 0) (x, r) = (x >> 64, r + 64);
            if (x >> 32 != 0) (x, r) = (x >> 32, r + 32);
            if (x >> 16 != 0) (x, r) = (x >> 16, r + 16);
            if (x >> 8 != 0) (x, r) = (x >> 8, r + 8);
            if (x >> 4 != 0) (x, r) = (x >> 4, r + 4);
            if (x >> 2 != 0) (x, r) = (x >> 2, r + 2);
            if (x >> 1 != 0) r += 1;
        }
    }

    /// @dev floor(√v) for v > 0 by Newton's iteration from a power of two above the root.
    function _isqrt(uint256 v) private pure returns (uint256 r) {
        unchecked {
            r = uint256(1) << ((_msb(v) >> 1) + 1);
            uint256 next = (r + v / r) >> 1;
            while (next < r) {
                r = next;
                next = (r + v / r) >> 1;
            }
        }
    }
}
