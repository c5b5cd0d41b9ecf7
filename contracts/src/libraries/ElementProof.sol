// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {RFC9162} from "./RFC9162.sol";

/// @title ElementProof
/// @notice One element of a tensor proven against its trace commitment (protocol/repro/trace.py `commitment`): the
///         RFC 9162 root over the tensor's C-order little-endian bytes in 32-byte leaves (the last one short), every
///         float32 NaN as 0x7fc00000. The proof is the bytes of the leaf that holds the element and its audit path.
library ElementProof {
    uint256 internal constant LEAF_BYTES = 32;

    /// @notice Whether `chunk` and `path` prove element `i` of a tensor of `numel` elements of `width` bytes
    ///         committed as `root`; if so, the element's bits (little-endian in the chunk).
    function verify(
        bytes32 root,
        uint256 numel,
        uint256 width,
        uint256 i,
        bytes calldata chunk,
        bytes32[] calldata path
    ) internal view returns (bool ok, uint256 bits) {
        if (i >= numel || width == 0 || width > 8) return (false, 0);
        uint256 start = i * width - ((i * width) % LEAF_BYTES); // the first byte of the element's leaf
        if (chunk.length != _leafLength(numel * width, start)) return (false, 0);
        if (!_included(root, chunk, start, numel * width, path)) return (false, 0);
        return (true, _littleEndian(chunk, i * width - start, width));
    }

    function _leafLength(uint256 total, uint256 start) private pure returns (uint256) {
        uint256 left = total - start;
        return left > LEAF_BYTES ? LEAF_BYTES : left;
    }

    function _included(bytes32 root, bytes calldata chunk, uint256 start, uint256 total, bytes32[] calldata path)
        private
        view
        returns (bool)
    {
        bytes32 leafHash = sha256(abi.encodePacked(bytes1(0x00), chunk));
        return RFC9162.verifyInclusion(root, leafHash, start / LEAF_BYTES, (total + LEAF_BYTES - 1) / LEAF_BYTES, path);
    }

    function _littleEndian(bytes calldata chunk, uint256 off, uint256 width) private pure returns (uint256 bits) {
        for (uint256 b = width; b > 0; --b) {
            bits = (bits << 8) | uint8(chunk[off + b - 1]);
        }
    }
}
