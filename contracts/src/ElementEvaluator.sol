// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {ElementEval} from "./libraries/ElementEval.sol";
import {ElementOps} from "./libraries/ElementOps.sol";

/// @title ElementEvaluator
/// @notice ElementEval (with ElementOps and Float32) as its own deployed contract: the arithmetic of an element and
///         the checks around it (ElementCheck: decoding, read positions, proofs) do not fit one contract under
///         EIP-170, so the checker calls this one. Stateless and permissionless.
contract ElementEvaluator {
    function evaluate(ElementEval.Input calldata x, uint256 j, uint256 o, uint256[] calldata reads)
        external
        pure
        returns (uint256)
    {
        return ElementEval.evaluate(x, j, o, reads);
    }

    /// @notice One term of a float32 fold (a long reduction's partial result): `op` (ElementOps MAX, MIN or ADD) of
    ///         the partial result `acc` and the term `v`.
    function fold(uint256 op, uint256 acc, uint256 v) external pure returns (uint256) {
        return ElementOps.compute(op, 0, 0, acc, v, 0, 0);
    }
}
