// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {TraceStructure} from "../../src/libraries/TraceStructure.sol";

/// @notice Records of synthetic traces for the game's tests.
library SyntheticRecords {
    uint16 internal constant OP_EMPTY = 1; // elements.OPCODES: aten.empty.memory_format

    /// @dev The structure of an allocation of a 3-element float32 tensor (its honest commitment: 32 zero bytes).
    function allocation() internal pure returns (bytes memory) {
        TraceStructure.Ref[] memory inputs = new TraceStructure.Ref[](0);
        uint8[] memory tags = new uint8[](1);
        int256[] memory values = new int256[](1);
        values[0] = 3;
        uint8[] memory dtypes = new uint8[](1);
        uint32[][] memory shapes = new uint32[][](1);
        shapes[0] = new uint32[](1);
        shapes[0][0] = 3;
        return
            abi.encode(OP_EMPTY, inputs, tags, values, dtypes, shapes, uint16(0), new uint256[](0), new uint256[][](0));
    }
}
