// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {Philox} from "../../src/libraries/Philox.sol";

/// @notice Philox4x32-10 against Random123's known answers; words stay u32 for any input (the differential test
///         against protocol/engine/rng.py is tests/test_philox_onchain.py).
contract PhiloxTest is Test {
    function test_knownAnswers() public pure {
        assertEq(Philox.block4x32(0, 0, 0, 0, 0, 0), 0x6627E8D5_E169C58D_BC57AC4C_9B00DBD8);
        uint256 f = 0xFFFFFFFF;
        assertEq(Philox.block4x32(f, f, f, f, f, f), 0x408F276D_41C83B0E_A20BC7C6_6D5451FD);
        assertEq(
            Philox.block4x32(0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344, 0xA4093822, 0x299F31D0),
            0xD16CFE09_94FDCCEB_5001E420_24126EA1
        );
    }

    function testFuzz_wordsAreU32_andLanesRoundTrip(uint32 c0, uint32 c1, uint32 c2, uint32 c3, uint32 k0, uint32 k1)
        public
        pure
    {
        uint256 packed = Philox.block4x32(c0, c1, c2, c3, k0, k1);
        assertLt(packed, 1 << 128);
        uint256 back = 0;
        for (uint256 k = 0; k < 4; ++k) {
            back = (back << 32) | Philox.lane(packed, k);
        }
        assertEq(back, packed);
    }

    function test_gas_oneBlock() public view {
        uint256 g = gasleft();
        uint256 out = Philox.block4x32(1, 2, 3, 4, 5, 6);
        uint256 used = g - gasleft();
        assertGt(out, 0);
        assertLt(used, 10_000, "one Philox block costs a few thousand gas");
    }
}
