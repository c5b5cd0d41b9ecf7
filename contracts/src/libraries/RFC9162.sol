// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

/// @title RFC9162
/// @notice Merkle tree hashing and inclusion proofs exactly as RFC 9162 §2 (Certificate Transparency v2)
///         defines them with SHA-256, which is what pymerkle computes: leaf = H(0x00 ‖ entry),
///         node = H(0x01 ‖ left ‖ right), a tree of n > 1 leaves splits at the largest power of two < n,
///         no leaf duplication.
/// @dev The inclusion verifier derives left/right from (index, size) itself (RFC 9162 §2.1.3.2) and never takes a
///      direction array from the caller. Sorted-pair libraries (OpenZeppelin, Solady MerkleProof) cannot check these.
library RFC9162 {
    /// @dev SHA-256 precompile address.
    uint256 private constant SHA256 = 0x02;

    /// @notice H(0x00 ‖ entry) for a 32-byte entry (a state root).
    function hashLeaf(bytes32 entry) internal view returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore8(p, 0x00)
            mstore(add(p, 1), entry)
            if iszero(staticcall(gas(), SHA256, p, 33, 0x00, 0x20)) { revert(0, 0) }
            h := mload(0x00)
        }
    }

    /// @notice H(0x01 ‖ left ‖ right).
    function hashNode(bytes32 left, bytes32 right) internal view returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore8(p, 0x01)
            mstore(add(p, 1), left)
            mstore(add(p, 33), right)
            if iszero(staticcall(gas(), SHA256, p, 65, 0x00, 0x20)) { revert(0, 0) }
            h := mload(0x00)
        }
    }

    /// @notice The largest power of two strictly less than n (the RFC 9162 split point). Requires n >= 2.
    function splitPoint(uint256 n) internal pure returns (uint256 k) {
        // Highest set bit of (n - 1).
        uint256 x = n - 1;
        k = 1;
        while (x > 1) {
            x >>= 1;
            k <<= 1;
        }
    }

    /// @notice Depth of leaf `index` in a tree of `size` leaves (0 for a single-leaf tree). This is the number of
    ///         internal nodes on its path, i.e. the number of descent rounds a dispute on that leaf takes.
    function leafDepth(uint256 index, uint256 size) internal pure returns (uint256 depth) {
        uint256 lo = 0;
        uint256 hi = size;
        while (hi - lo > 1) {
            uint256 k = splitPoint(hi - lo);
            if (index < lo + k) hi = lo + k;
            else lo += k;
            ++depth;
        }
    }

    /// @notice Root computed from a leaf hash and its RFC 9162 audit path; returns (ok, root). ok is false when the
    ///         path has the wrong length for (index, size) or index >= size.
    /// @param leafHash H(0x00 ‖ entry) of leaf `index`.
    /// @param index 0-based leaf index.
    /// @param size number of leaves in the tree.
    /// @param path sibling hashes bottom-up (pymerkle's `prove_inclusion` path without its first element).
    function rootFromPath(bytes32 leafHash, uint256 index, uint256 size, bytes32[] calldata path)
        internal
        view
        returns (bool ok, bytes32 root)
    {
        if (index >= size) return (false, bytes32(0));
        uint256 fn = index;
        uint256 sn = size - 1;
        root = leafHash;
        uint256 len = path.length;
        for (uint256 i = 0; i < len; ++i) {
            if (sn == 0) return (false, bytes32(0));
            if (fn & 1 == 1 || fn == sn) {
                root = hashNode(path[i], root);
                if (fn & 1 == 0) {
                    // fn == sn and fn even: climb until fn is a right child or the root is reached.
                    while (fn & 1 == 0 && fn != 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                root = hashNode(root, path[i]);
            }
            fn >>= 1;
            sn >>= 1;
        }
        ok = sn == 0;
    }

    /// @notice True iff `path` proves that `leafHash` is leaf `index` of the `size`-leaf tree with root `root`.
    function verifyInclusion(bytes32 root, bytes32 leafHash, uint256 index, uint256 size, bytes32[] calldata path)
        internal
        view
        returns (bool)
    {
        (bool ok, bytes32 computed) = rootFromPath(leafHash, index, size, path);
        return ok && computed == root;
    }
}
