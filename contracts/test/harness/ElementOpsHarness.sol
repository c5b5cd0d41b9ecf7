// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {ElementOps} from "../../src/libraries/ElementOps.sol";
import {ElementReads} from "../../src/libraries/ElementReads.sol";
import {TraceStructure} from "../../src/libraries/TraceStructure.sol";

/// @title ElementOpsHarness
/// @notice Batch entry points over ElementOps for tests/test_elements_onchain.py: each case is four operands as 8-byte
///         big-endian words (a ‖ b ‖ c ‖ d), each result 8 bytes, so one eth_call evaluates many cases. Not deployed
///         by protocol/deploy.py.
contract ElementOpsHarness {
    /// @notice Decodes an encoded record structure as the dispute contract will, and its leaf hash (sha256).
    function decodeStructure(bytes calldata s)
        external
        pure
        returns (
            uint16 opcode,
            TraceStructure.Ref[] memory inputs,
            uint8[] memory tags,
            int256[] memory values,
            uint8[] memory dtypes,
            uint32[][] memory shapes,
            uint16 floats,
            bytes32 hash
        )
    {
        TraceStructure.Structure memory t = TraceStructure.decode(s);
        (opcode, inputs, tags, values, dtypes, shapes, floats) =
        (t.opcode, t.inputs, t.tags, t.values, t.dtypes, t.shapes, t.floats);
        hash = sha256(s);
    }

    function batch(uint256 op, uint256 dtype, uint256 src, bytes calldata cases)
        external
        pure
        returns (bytes memory out)
    {
        uint256 n = cases.length / 32;
        out = new bytes(8 * n);
        for (uint256 i = 0; i < n; ++i) {
            bytes calldata c = cases[32 * i:32 * i + 32];
            uint256 r = ElementOps.compute(
                op,
                dtype,
                src,
                uint64(bytes8(c[0:8])),
                uint64(bytes8(c[8:16])),
                uint64(bytes8(c[16:24])),
                uint64(bytes8(c[24:32]))
            );
            bytes8 w = bytes8(uint64(r));
            for (uint256 k = 0; k < 8; ++k) {
                out[8 * i + k] = w[k];
            }
        }
    }

    function kindOf(uint256 opcode) external pure returns (uint256) {
        return ElementReads.kindOf(opcode);
    }

    /// @notice The reads of output `j`'s element `o` of the record encoded as `s`, whose inputs have `inShapes`.
    function reads(bytes calldata s, uint32[][] calldata inShapes, uint256 j, uint256 o)
        external
        pure
        returns (uint256 kind, uint256[] memory inputs, uint256[] memory at)
    {
        ElementReads.Record memory r = TraceStructure.record(TraceStructure.decode(s), inShapes, j);
        kind = r.kind;
        (inputs, at) = ElementReads.reads(r, j, o);
    }

    /// @notice An indexed element's index reads.
    function indexReads(bytes calldata s, uint32[][] calldata inShapes, uint256 o)
        external
        pure
        returns (uint256[] memory inputs, uint256[] memory at)
    {
        return ElementReads.indexReads(_record(s, inShapes, 0), o);
    }

    /// @notice An indexed element's data reads, given the values `idx` of its index reads.
    function indexedReads(bytes calldata s, uint32[][] calldata inShapes, uint256 o, int256[] calldata idx)
        external
        pure
        returns (uint256[] memory inputs, uint256[] memory at)
    {
        return ElementReads.indexedReads(_record(s, inShapes, 0), o, idx);
    }

    function _record(bytes calldata s, uint32[][] calldata inShapes, uint256 j)
        private
        pure
        returns (ElementReads.Record memory r)
    {
        r = TraceStructure.record(TraceStructure.decode(s), inShapes, j);
    }

    function one(uint256 op, uint256 dtype, uint256 src, uint256 a, uint256 b, uint256 c, uint256 d)
        external
        pure
        returns (uint256)
    {
        return ElementOps.compute(op, dtype, src, a, b, c, d);
    }
}
