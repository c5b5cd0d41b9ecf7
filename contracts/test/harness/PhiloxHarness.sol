// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Philox} from "../../src/libraries/Philox.sol";

/// @title PhiloxHarness
/// @notice Batch entry points over the Philox library for tests/test_philox_onchain.py: one eth_call evaluates many
///         blocks or stream values, compared there with protocol/engine/rng.py. Not deployed by protocol/deploy.py.
contract PhiloxHarness {
    /// @notice Block function of packed inputs: 24 bytes each (c0 c1 c2 c3 k0 k1, big-endian u32); 16 bytes out.
    function blocks(bytes calldata inputs) external pure returns (bytes memory out) {
        uint256 n = inputs.length / 24;
        out = new bytes(16 * n);
        for (uint256 i = 0; i < n; ++i) {
            uint256[6] memory v;
            for (uint256 k = 0; k < 6; ++k) {
                v[k] = uint32(bytes4(inputs[24 * i + 4 * k:24 * i + 4 * k + 4]));
            }
            bytes16 packed = bytes16(uint128(Philox.block4x32(v[0], v[1], v[2], v[3], v[4], v[5])));
            for (uint256 k = 0; k < 16; ++k) {
                out[16 * i + k] = packed[k];
            }
        }
    }

    function streamTag(bytes calldata purpose, uint64 index) external view returns (uint256 t0, uint256 t1) {
        return Philox.streamTag(purpose, index);
    }

    /// @notice Words, uniform mantissas and sort keys `js` of stream (seed, purpose, index).
    function stream(uint64 seed, bytes calldata purpose, uint64 index, uint256[] calldata js)
        external
        view
        returns (uint256[] memory words, uint256[] memory mantissas, uint256[] memory keys)
    {
        (uint256 t0, uint256 t1) = Philox.streamTag(purpose, index);
        words = new uint256[](js.length);
        mantissas = new uint256[](js.length);
        keys = new uint256[](js.length);
        for (uint256 i = 0; i < js.length; ++i) {
            words[i] = Philox.word(seed, t0, t1, js[i]);
            mantissas[i] = Philox.uniformMantissa(seed, t0, t1, js[i]);
            keys[i] = Philox.key64(seed, t0, t1, js[i]);
        }
    }
}
