// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {Float32} from "../../src/libraries/Float32.sol";

/// @notice Edge cases and algebraic properties of the binary32 library (the bit-for-bit check against numpy is
///         tests/test_float32_onchain.py).
contract Float32FuzzTest is Test {
    uint32 internal constant PZ = 0;
    uint32 internal constant NZ = 0x80000000;
    uint32 internal constant ONE = 0x3f800000;
    uint32 internal constant MIN_SUB = 1;
    uint32 internal constant MAX_SUB = 0x7fffff;
    uint32 internal constant MIN_NORM = 0x800000;
    uint32 internal constant MAX = 0x7f7fffff;
    uint32 internal constant INF = 0x7f800000;
    uint32 internal constant NINF = 0xff800000;
    uint32 internal constant NAN = 0x7fc00000;

    function _finite(uint32 x) internal pure returns (bool) {
        return x & 0x7fffffff < INF;
    }

    function test_zeros() public pure {
        assertEq(Float32.add(PZ, NZ), PZ);
        assertEq(Float32.add(NZ, NZ), NZ);
        assertEq(Float32.sub(NZ, PZ), NZ);
        assertEq(Float32.mul(NZ, ONE), NZ);
        assertTrue(Float32.eq(PZ, NZ));
        assertFalse(Float32.lt(NZ, PZ));
        assertEq(Float32.sqrt(NZ), NZ);
    }

    function test_subnormals() public pure {
        assertEq(Float32.add(MIN_SUB, MIN_SUB), 2);
        assertEq(Float32.add(MAX_SUB, MIN_SUB), MIN_NORM);
        assertEq(Float32.sub(MIN_NORM, MIN_SUB), MAX_SUB);
        assertEq(Float32.mul(MIN_SUB, 0x3f000000), PZ); // 2^-150 ties to even: 0
        assertEq(Float32.mul(0x00000003, 0x3f000000), 2); // 1.5 ulp ties to even: 2
        assertEq(Float32.div(MIN_NORM, 0x40000000), 0x400000);
    }

    function test_overflowAndSpecials() public pure {
        assertEq(Float32.add(MAX, MAX), INF);
        assertEq(Float32.mul(MAX, 0x40000000), INF); // MAX * 2
        assertEq(Float32.sub(INF, INF), NAN);
        assertEq(Float32.mul(PZ, INF), NAN);
        assertEq(Float32.div(ONE, PZ), INF);
        assertEq(Float32.div(ONE, NZ), NINF);
        assertEq(Float32.div(PZ, PZ), NAN);
        assertEq(Float32.sqrt(0xbf800000), NAN);
        assertEq(Float32.sqrt(INF), INF);
        assertFalse(Float32.eq(NAN, NAN));
        assertFalse(Float32.le(NAN, ONE));
        assertEq(Float32.add(0x7f800001, ONE), NAN); // signalling NaN in, canonical NaN out
    }

    function test_tiesToEven() public pure {
        // 2^24 + 1 is halfway between 2^24 and 2^24 + 2: ties to the even 2^24; 2^24 + 3 ties up to 2^24 + 4.
        assertEq(Float32.fromInt(16_777_217), 0x4b800000);
        assertEq(Float32.fromInt(16_777_219), 0x4b800002);
        assertEq(Float32.add(ONE, 0x33800000), ONE); // 1 + 2^-24: tie, stays 1
        assertEq(Float32.add(0x3f800001, 0x33800000), 0x3f800002); // odd + half ulp: up
        assertEq(Float32.fromInt(type(int256).min), NINF);
        assertEq(Float32.toInt(0xc0700000), -3); // -3.75 truncates to -3
    }

    function test_toInt_revertsOnNonFinite() public {
        vm.expectRevert(abi.encodeWithSelector(Float32.Float32NotFinite.selector, INF));
        this.toIntExternal(INF);
    }

    function toIntExternal(uint32 x) external pure returns (int256) {
        return Float32.toInt(x);
    }

    function testFuzz_addMulCommute(uint32 a, uint32 b) public pure {
        assertEq(Float32.add(a, b), Float32.add(b, a));
        assertEq(Float32.mul(a, b), Float32.mul(b, a));
    }

    function testFuzz_selfSubIsPositiveZero(uint32 a) public pure {
        vm.assume(_finite(a));
        assertEq(Float32.sub(a, a), PZ);
    }

    function testFuzz_identities(uint32 a) public pure {
        vm.assume(_finite(a) && a != NZ);
        assertEq(Float32.mul(a, ONE), a);
        assertEq(Float32.div(a, ONE), a);
        assertEq(Float32.add(a, NZ), a);
        assertEq(Float32.neg(Float32.neg(a)), a);
    }

    function testFuzz_sqrtOfSquareIsAbs(uint32 a) public pure {
        // a with 11 significant bits: a*a is exact and not subnormal/overflowing, so sqrt(a*a) = |a|
        a = (a & 0x80fff000) | 0x20000000;
        assertEq(Float32.sqrt(Float32.mul(a, a)), Float32.abs(a));
    }

    function testFuzz_orderIsTotalOnNonNaN(uint32 a, uint32 b) public pure {
        vm.assume(!Float32.isNaN(a) && !Float32.isNaN(b));
        assertTrue(Float32.lt(a, b) || Float32.le(b, a));
        assertEq(Float32.le(a, b), Float32.lt(a, b) || Float32.eq(a, b));
    }

    function test_gas() public pure {
        Float32.add(0x3fc00000, 0x40490fdb);
        Float32.mul(0x3fc00000, 0x40490fdb);
        Float32.div(0x3fc00000, 0x40490fdb);
        Float32.sqrt(0x40490fdb);
    }
}
