// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {ElementReads} from "./ElementReads.sol";

/// @title TraceStructure
/// @notice The structure of one trace record as the contracts read it: the ABI encoding protocol/repro/trace.py
///         `STRUCTURE_ABI` writes (DESIGN §8 "The trace of a step"); its sha256 is the record's leaf in the program
///         root. The one decoder of that encoding.
library TraceStructure {
    /// @notice One input reference: kind 0 output `output` of record `index`, 1 the pre-state tensor `name`,
    ///         2 external input `index`.
    struct Ref {
        uint8 kind;
        uint32 index;
        uint16 output;
        string name;
    }

    struct Structure {
        uint16 opcode;
        Ref[] inputs;
        uint8[] tags;
        int256[] values;
        uint8[] dtypes;
        uint32[][] shapes;
        uint16 floats;
        uint256[] geomOffsets;
        uint256[][] geomStrides;
    }

    uint8 internal constant REF_OUTPUT = 0;
    uint8 internal constant REF_STATE = 1;
    uint8 internal constant REF_EXTERNAL = 2;

    /// @dev The encoding is the nine fields' `abi.encode`, which is `abi.encode(structure)` without its leading
    ///      offset word (a dynamic tuple's head): one decode of the whole struct.
    function decode(bytes calldata s) internal pure returns (Structure memory t) {
        t = abi.decode(bytes.concat(bytes32(uint256(0x20)), s), (Structure));
    }

    /// @notice What output `j`'s elements need besides a position: the structure's fields and the inputs' shapes.
    function record(Structure memory t, uint32[][] memory inShapes, uint256 j)
        internal
        pure
        returns (ElementReads.Record memory r)
    {
        r.opcode = t.opcode;
        r.kind = ElementReads.kindOf(t.opcode);
        r.tags = t.tags;
        r.values = t.values;
        r.outShape = t.shapes[j];
        r.outputs = t.shapes.length;
        r.inShapes = inShapes;
        r.geomOffsets = t.geomOffsets;
        r.geomStrides = t.geomStrides;
    }

    function numel(uint32[] memory shape) internal pure returns (uint256 n) {
        n = 1;
        for (uint256 d = 0; d < shape.length; ++d) {
            n *= shape[d];
        }
    }
}
