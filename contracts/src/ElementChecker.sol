// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {ElementEvaluator} from "./ElementEvaluator.sol";
import {ElementCheck} from "./libraries/ElementCheck.sol";

/// @title ElementChecker
/// @notice ElementCheck as its own deployed contract (the bottom of an exact-mode dispute: one element of one trace
///         record recomputed from its proven reads), so that the game that calls it stays under EIP-170. Stateless
///         and permissionless.
contract ElementChecker {
    ElementEvaluator public immutable evaluator;

    constructor(ElementEvaluator evaluator_) {
        evaluator = evaluator_;
    }

    /// @notice ElementCheck.check: whether the claimed output element holds, and the record's hash.
    function check(ElementCheck.Claim calldata c)
        external
        view
        returns (bool holds, uint256 computed, uint256 claimed, bytes32 record)
    {
        return ElementCheck.check(c, evaluator);
    }

    /// @notice ElementCheck.foldTerm: the partial result after term `n` of a fold element, from `acc` before it.
    function foldTerm(ElementCheck.Claim calldata c, uint256 n, uint256 acc) external view returns (uint256) {
        return ElementCheck.foldTerm(c, n, acc, evaluator);
    }

    /// @notice ElementCheck.compute: the element the record computes from the proven reads (output proof unused).
    function compute(ElementCheck.Claim calldata c)
        external
        view
        returns (uint256 computed, uint256 outDtype, uint256 outNumel)
    {
        return ElementCheck.compute(c, evaluator);
    }
}
