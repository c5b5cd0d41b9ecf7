// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {RFC9162} from "../../src/libraries/RFC9162.sol";

/// @notice The tests' one recursive RFC 9162 tree over leaf entries (state roots): root and audit path of [lo, hi),
///         straight from the RFC's definition. Used by the fixture and the dispute actors.
library TreeRef {
    /// @dev RFC 9162 root over leaf entries [lo, hi).
    function root(bytes32[] memory leaves, uint256 lo, uint256 hi) internal view returns (bytes32) {
        return HashTreeRef.root(_hashed(leaves, lo, hi), lo, hi);
    }

    /// @dev RFC 9162 audit path (siblings bottom-up) of leaf `index` among leaves [lo, hi).
    function path(bytes32[] memory leaves, uint256 index, uint256 lo, uint256 hi)
        internal
        view
        returns (bytes32[] memory)
    {
        return HashTreeRef.path(_hashed(leaves, lo, hi), index, lo, hi);
    }

    /// @dev The leaf hashes of entries [lo, hi) (the rest left zero: never read).
    function _hashed(bytes32[] memory leaves, uint256 lo, uint256 hi) private view returns (bytes32[] memory h) {
        h = new bytes32[](leaves.length);
        for (uint256 i = lo; i < hi; ++i) {
            h[i] = RFC9162.hashLeaf(leaves[i]);
        }
    }
}

/// @notice The tree over leaf hashes given directly (TreeRef's leaves hashed H(0x00 ‖ entry); a state's 4096-byte
///         chunks, H(0x00 ‖ chunk)).
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
