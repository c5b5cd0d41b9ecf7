// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Sampling} from "../../src/libraries/Sampling.sol";

/// @title SamplingHarness
/// @notice Exposes the Sampling library to off-chain tests (tests/test_sampling_chain.py), so protocol/sampling.py is
///         checked against the exact code JobMarket runs. Not deployed by protocol/deploy.py.
contract SamplingHarness {
    function sampleCount(uint256 n, uint256 rateBps, uint256 maxSamples) external pure returns (uint256) {
        return Sampling.sampleCount(n, rateBps, maxSamples);
    }

    function sample(bytes32 seed, uint256 n, uint256 m) external pure returns (uint256[] memory) {
        return Sampling.sample(seed, n, m);
    }
}
