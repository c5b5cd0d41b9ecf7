// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {ElementEval} from "../../src/libraries/ElementEval.sol";
import {ElementProof} from "../../src/libraries/ElementProof.sol";
import {TraceStructure} from "../../src/libraries/TraceStructure.sol";

/// @title ElementEvalHarness
/// @notice ElementEval over an encoded record structure (protocol/repro/trace.py `STRUCTURE_ABI`) for
///         tests/test_elements_onchain.py (apart from ElementOpsHarness, which is near the contract size limit). Not
///         deployed by protocol/deploy.py.
contract ElementEvalHarness {
    /// @notice What a record's element needs besides its reads: its inputs' shapes and dtype codes, its floats.
    struct Inputs {
        uint32[][] shapes;
        uint256[] dtypes;
        uint64[] floats;
    }

    /// @notice Output `j`'s element `o` of the record encoded as `s`, from the values of its reads (in `element`'s
    ///         order).
    function evaluate(bytes calldata s, Inputs calldata ins, uint256 j, uint256 o, uint256[] calldata values)
        external
        pure
        returns (uint256)
    {
        return ElementEval.evaluate(_input(s, ins, j), j, o, values);
    }

    function verifyElement(
        bytes32 root,
        uint256 numel,
        uint256 width,
        uint256 i,
        bytes calldata chunk,
        bytes32[] calldata path
    ) external view returns (bool ok, uint256 bits) {
        return ElementProof.verify(root, numel, width, i, chunk, path);
    }

    function _input(bytes calldata s, Inputs calldata ins, uint256 j)
        private
        pure
        returns (ElementEval.Input memory x)
    {
        TraceStructure.Structure memory t = TraceStructure.decode(s);
        x.r = TraceStructure.record(t, ins.shapes, j);
        x.outDtype = t.dtypes[j];
        x.inDtypes = ins.dtypes;
        x.floats = ins.floats;
    }
}
