// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {RFC9162} from "../../src/libraries/RFC9162.sol";

/// @title RFC9162Harness
/// @notice Exposes the RFC9162 library to off-chain tests (tests/test_chain_boundary.py), so Python-built pymerkle
///         trees and proofs can be checked against the exact code the protocol contracts run. Not deployed by
///         protocol/deploy.py.
contract RFC9162Harness {
    function hashLeaf(bytes32 entry) external view returns (bytes32) {
        return RFC9162.hashLeaf(entry);
    }

    function hashNode(bytes32 left, bytes32 right) external view returns (bytes32) {
        return RFC9162.hashNode(left, right);
    }

    function splitPoint(uint256 n) external pure returns (uint256) {
        return RFC9162.splitPoint(n);
    }

    function leafDepth(uint256 index, uint256 size) external pure returns (uint256) {
        return RFC9162.leafDepth(index, size);
    }

    function rootFromPath(bytes32 leafHash, uint256 index, uint256 size, bytes32[] calldata path)
        external
        view
        returns (bool ok, bytes32 root)
    {
        return RFC9162.rootFromPath(leafHash, index, size, path);
    }

    function verifyInclusion(bytes32 root, bytes32 leafHash, uint256 index, uint256 size, bytes32[] calldata path)
        external
        view
        returns (bool)
    {
        return RFC9162.verifyInclusion(root, leafHash, index, size, path);
    }
}
