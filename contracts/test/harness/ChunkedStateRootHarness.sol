// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {ChunkedStateRoot} from "../../src/libraries/ChunkedStateRoot.sol";

/// @title ChunkedStateRootHarness
/// @notice Exposes ChunkedStateRoot to tests (contracts/test/fuzz, tests/test_chunked_state_root.py): one hasher per
///         id, fed piece by piece, so protocol/state.py's state root is checked against the code the contracts run.
contract ChunkedStateRootHarness {
    using ChunkedStateRoot for ChunkedStateRoot.Hasher;

    mapping(uint256 id => ChunkedStateRoot.Hasher) private hashers;

    function feed(uint256 id, bytes calldata data, bool last) external {
        hashers[id].feed(data, last);
    }

    function root(uint256 id) external view returns (bytes32) {
        return hashers[id].root();
    }

    /// @notice The whole root of `data` in one call (as a view: nothing is kept).
    function rootOf(bytes calldata data) external returns (bytes32 r) {
        uint256 id = uint256(keccak256(abi.encode("rootOf", data.length, block.number, gasleft())));
        hashers[id].feed(data, true);
        r = hashers[id].root();
    }
}
