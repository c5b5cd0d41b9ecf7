// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {RFC9162} from "../../src/libraries/RFC9162.sol";

/// @notice The tests' one recursive RFC 9162 tree over leaf entries (state roots): root and audit path of [lo, hi),
///         straight from the RFC's definition. Used by the fixture and the dispute actors.
library TreeRef {
    /// @dev RFC 9162 root over leaf entries [lo, hi).
    function root(bytes32[] memory leaves, uint256 lo, uint256 hi) internal view returns (bytes32) {
        if (hi - lo == 1) return RFC9162.hashLeaf(leaves[lo]);
        uint256 k = RFC9162.splitPoint(hi - lo);
        return RFC9162.hashNode(root(leaves, lo, lo + k), root(leaves, lo + k, hi));
    }

    /// @dev RFC 9162 audit path (siblings bottom-up) of leaf `index` among leaves [lo, hi).
    function path(bytes32[] memory leaves, uint256 index, uint256 lo, uint256 hi)
        internal
        view
        returns (bytes32[] memory p)
    {
        if (hi - lo == 1) return new bytes32[](0);
        uint256 k = RFC9162.splitPoint(hi - lo);
        bytes32[] memory sub;
        bytes32 sibling;
        if (index < lo + k) {
            sub = path(leaves, index, lo, lo + k);
            sibling = root(leaves, lo + k, hi);
        } else {
            sub = path(leaves, index, lo + k, hi);
            sibling = root(leaves, lo, lo + k);
        }
        p = new bytes32[](sub.length + 1);
        for (uint256 i = 0; i < sub.length; ++i) {
            p[i] = sub[i];
        }
        p[sub.length] = sibling;
    }
}

/// @notice The same tree over leaf hashes given directly (a state's 4096-byte chunks, hashed H(0x00 ‖ chunk)).
library HashTreeRef {
    function root(bytes32[] memory hashes, uint256 lo, uint256 hi) internal view returns (bytes32) {
        if (hi - lo == 1) return hashes[lo];
        uint256 k = RFC9162.splitPoint(hi - lo);
        return RFC9162.hashNode(root(hashes, lo, lo + k), root(hashes, lo + k, hi));
    }

    function path(bytes32[] memory hashes, uint256 index, uint256 lo, uint256 hi)
        internal
        view
        returns (bytes32[] memory p)
    {
        if (hi - lo == 1) return new bytes32[](0);
        uint256 k = RFC9162.splitPoint(hi - lo);
        bytes32[] memory sub;
        bytes32 sibling;
        if (index < lo + k) {
            sub = path(hashes, index, lo, lo + k);
            sibling = root(hashes, lo + k, hi);
        } else {
            sub = path(hashes, index, lo + k, hi);
            sibling = root(hashes, lo, lo + k);
        }
        p = new bytes32[](sub.length + 1);
        for (uint256 i = 0; i < sub.length; ++i) {
            p[i] = sub[i];
        }
        p[sub.length] = sibling;
    }
}
