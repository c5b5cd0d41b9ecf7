// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {console2} from "forge-std/console2.sol";
import {Fixture} from "../utils/Fixture.sol";

/// @notice What the draw-weight history costs as the pool grows: one deposit (a weight change: about log2(capacity)
///         checkpoint writes) and one committee-sized draw by the weights of a past block, for pools of 8 to 1024
///         registered verifiers, each measured with cold storage as in its own transaction. `forge test --match-test testGas_drawWeights -vv` prints the table for
///         docs/parameters.md.
contract DrawGasTest is Fixture {
    function testGas_drawWeights_scaleWithLogOfPool() public {
        uint256[5] memory sizes = [uint256(8), 32, 128, 512, 1024];
        uint256 registered = verifiers.length + 1; // the fixture's verifiers and challenger
        address[] memory exclude = new address[](3);
        (exclude[0], exclude[1], exclude[2]) = (solver, challenger, submitter);
        console2.log("pool   deposit (weight change)   drawDistinct(R = 3, lock 20 VERI)");
        for (uint256 s = 0; s < sizes.length; ++s) {
            for (; registered < sizes[s]; ++registered) {
                _stake(address(uint160(0x10000 + registered)), 100 ether + registered * 1 ether, true);
            }
            vm.roll(block.number + 1);
            address who = verifiers[0]; // slot 2: its weight sits under log2(capacity) nodes
            _fund(who, 1 ether);
            vm.startPrank(who);
            token.approve(address(stakes), 1 ether);
            vm.cool(address(stakes)); // as in its own transaction: every slot cold
            vm.cool(address(token));
            uint256 g = gasleft();
            stakes.deposit(1 ether);
            uint256 depositGas = g - gasleft();
            vm.stopPrank();
            vm.roll(block.number + 1);
            vm.cool(address(stakes));
            g = gasleft();
            address[] memory drawn =
                stakes.drawDistinct(keccak256(abi.encode("gas", s)), 3, exclude, 20 ether, block.number - 1);
            uint256 drawGas = g - gasleft();
            assertEq(drawn.length, 3);
            console2.log(sizes[s], depositGas, drawGas);
        }
    }
}
