// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {ElementEval} from "./libraries/ElementEval.sol";

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
}
