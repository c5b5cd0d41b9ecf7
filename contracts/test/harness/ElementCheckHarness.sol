// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {ElementEvaluator} from "../../src/ElementEvaluator.sol";
import {ElementCheck} from "../../src/libraries/ElementCheck.sol";

/// @title ElementCheckHarness
/// @notice ElementCheck for tests/test_elements_onchain.py. Not deployed by protocol/deploy.py.
contract ElementCheckHarness {
    ElementEvaluator public immutable evaluator;

    constructor(ElementEvaluator evaluator_) {
        evaluator = evaluator_;
    }

    function check(ElementCheck.Claim calldata c)
        external
        view
        returns (bool holds, uint256 computed, uint256 claimed, bytes32 record)
    {
        return ElementCheck.check(c, evaluator);
    }
}
