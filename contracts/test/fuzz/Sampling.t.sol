// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {Sampling} from "../../src/libraries/Sampling.sol";

/// @notice The audit sample (DESIGN §6, protocol/sampling.py reproduces it): m = max(1, ceil(rate·N)) capped, the first
///         m distinct values of keccak256(abi.encode(seed, j)) mod N.
contract SamplingFuzzTest is Test {
    function _params(uint256 nRaw, uint256 rateRaw, uint256 maxRaw)
        internal
        pure
        returns (uint256 n, uint256 rate, uint256 max)
    {
        n = _bound(nRaw, 1, 5000);
        rate = _bound(rateRaw, 1, 10_000);
        max = _bound(maxRaw, 1, 64);
    }

    function testFuzz_sampleCount_isCappedCeilOfRate(uint256 nRaw, uint256 rateRaw, uint256 maxRaw) public pure {
        (uint256 n, uint256 rate, uint256 max) = _params(nRaw, rateRaw, maxRaw);
        uint256 m = Sampling.sampleCount(n, rate, max);
        // independent formula: ceil by remainder
        uint256 prod = rate * n;
        uint256 ceil = prod / 10_000 + (prod % 10_000 == 0 ? 0 : 1);
        uint256 expected = ceil == 0 ? 1 : ceil;
        if (expected > max) expected = max;
        if (expected > n) expected = n;
        assertEq(m, expected);
        assertGe(m, 1);
        assertLe(m, max);
        assertLe(m, n);
        // m is at least the uncapped share whenever the caps allow it
        if (m < max && m < n) assertGe(m * 10_000, rate * n);
    }

    function test_sampleCount_examples() public pure {
        assertEq(Sampling.sampleCount(16, 500, 16), 1); // ceil(0.8)
        assertEq(Sampling.sampleCount(20, 500, 16), 1); // exactly 1
        assertEq(Sampling.sampleCount(21, 500, 16), 2); // ceil(1.05)
        assertEq(Sampling.sampleCount(1, 1, 16), 1); // at least one
        assertEq(Sampling.sampleCount(10_000, 10_000, 64), 64); // capped by max
        assertEq(Sampling.sampleCount(3, 10_000, 64), 3); // capped by n
    }

    function testFuzz_sample_distinctInRangeDeterministic(bytes32 seed, uint256 nRaw, uint256 rateRaw, uint256 maxRaw)
        public
        pure
    {
        (uint256 n, uint256 rate, uint256 max) = _params(nRaw, rateRaw, maxRaw);
        uint256 m = Sampling.sampleCount(n, rate, max);
        uint256[] memory s = Sampling.sample(seed, n, m);
        assertEq(s.length, m);
        bool[] memory seen = new bool[](n);
        for (uint256 i = 0; i < m; ++i) {
            assertLt(s[i], n);
            assertFalse(seen[s[i]], "distinct");
            seen[s[i]] = true;
        }
        uint256[] memory again = Sampling.sample(seed, n, m);
        for (uint256 i = 0; i < m; ++i) {
            assertEq(again[i], s[i], "deterministic");
        }
        // the first pick is candidate 0, and a shorter sample is a prefix of a longer one (first m distinct, in order)
        assertEq(s[0], uint256(keccak256(abi.encode(seed, uint256(0)))) % n);
        uint256 shorter = m / 2 == 0 ? 1 : m / 2;
        uint256[] memory prefix = Sampling.sample(seed, n, shorter);
        for (uint256 i = 0; i < shorter; ++i) {
            assertEq(prefix[i], s[i]);
        }
    }

    function testFuzz_sample_matchesCandidateStream(bytes32 seed, uint256 nRaw, uint256 mRaw) public pure {
        uint256 n = _bound(nRaw, 1, 5000);
        uint256 m = _bound(mRaw, 1, n < 64 ? n : 64);
        uint256[] memory s = Sampling.sample(seed, n, m);
        // replay the candidate stream: every candidate is either new (and is the next pick) or already picked
        uint256 k = 0;
        for (uint256 j = 0; k < m; ++j) {
            uint256 c = uint256(Sampling.derive(seed, j)) % n;
            bool old = false;
            for (uint256 i = 0; i < k; ++i) {
                if (s[i] == c) old = true;
            }
            if (!old) {
                assertEq(s[k], c);
                ++k;
            }
        }
    }

    function testFuzz_sample_fullPermutationWhenEverySegmentSampled(bytes32 seed, uint256 nRaw) public pure {
        uint256 n = _bound(nRaw, 1, 64);
        uint256 m = Sampling.sampleCount(n, 10_000, 64);
        assertEq(m, n);
        uint256[] memory s = Sampling.sample(seed, n, m);
        uint256 sum = 0;
        for (uint256 i = 0; i < n; ++i) {
            sum += s[i];
        }
        assertEq(sum, n * (n - 1) / 2, "a permutation of 0..n-1 (distinct and in range)");
    }

    function testFuzz_derive_isKeccakOfSeedAndIndex(bytes32 seed, uint256 k) public pure {
        assertEq(Sampling.derive(seed, k), keccak256(abi.encode(seed, k)));
    }
}
