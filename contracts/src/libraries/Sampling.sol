// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

/// @title Sampling
/// @notice The audit sample of a committed trajectory, reproduced byte for byte by protocol/sampling.py:
///         candidate j is `uint256(keccak256(abi.encode(seed, j))) % n` for j = 0, 1, 2, …; the first `m` distinct
///         candidates are the sampled segment indices, in the order drawn.
library Sampling {
    /// @notice m = max(1, ceil(rateBps · n / 10_000)), capped at `maxSamples` and at n.
    function sampleCount(uint256 n, uint256 rateBps, uint256 maxSamples) internal pure returns (uint256 m) {
        m = (rateBps * n + 9_999) / 10_000;
        if (m == 0) m = 1;
        if (m > maxSamples) m = maxSamples;
        if (m > n) m = n;
    }

    /// @notice The first `m` distinct indices in [0, n) drawn from `seed`. Requires 0 < m <= n.
    /// @dev Expected candidates drawn: n·(H(n) − H(n−m)), bounded because m <= maxSamples is small.
    function sample(bytes32 seed, uint256 n, uint256 m) internal pure returns (uint256[] memory picked) {
        picked = new uint256[](m);
        uint256 count = 0;
        for (uint256 j = 0; count < m; ++j) {
            uint256 candidate = uint256(keccak256(abi.encode(seed, j))) % n;
            bool seen = false;
            for (uint256 i = 0; i < count; ++i) {
                if (picked[i] == candidate) {
                    seen = true;
                    break;
                }
            }
            if (!seen) picked[count++] = candidate;
        }
    }

    /// @notice The `k`-th sub-seed of `seed`, used for draws: keccak256(abi.encode(seed, k)).
    function derive(bytes32 seed, uint256 k) internal pure returns (bytes32) {
        return keccak256(abi.encode(seed, k));
    }
}
