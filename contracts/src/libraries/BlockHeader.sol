// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

/// @title BlockHeader
/// @notice The RANDAO value (`prevrandao`, header field 13, `mixHash`) of a recent block, read from its RLP-encoded
///         header, which must hash to that block's `blockhash`. Unlike the block hash, which whoever builds the block
///         can grind by reordering transactions or changing `extraData`, the RANDAO value is fixed by the proposer's
///         signature: its proposer can only publish it or withhold the block.
library BlockHeader {
    /// @dev Position of `mixHash` (= prevrandao since the merge) in the header list.
    uint256 internal constant MIX_HASH_FIELD = 13;

    /// @notice The header does not hash to `blockhash(number)`.
    error HeaderMismatch(uint256 number, bytes32 expected, bytes32 got);
    /// @notice The bytes are not an RLP list of byte strings with a 32-byte field 13.
    error MalformedHeader();

    /// @notice The prevrandao of block `number`, whose hash must still be readable (one of the last 256 blocks).
    function randaoOf(bytes calldata header, uint256 number) internal view returns (bytes32) {
        bytes32 expected = blockhash(number);
        bytes32 got = keccak256(header);
        if (expected == bytes32(0) || got != expected) revert HeaderMismatch(number, expected, got);
        return mixHash(header);
    }

    /// @notice Field 13 of an RLP header (no hash check).
    function mixHash(bytes calldata header) internal pure returns (bytes32) {
        uint256 len = header.length;
        if (len == 0) revert MalformedHeader();
        uint256 first = uint8(header[0]);
        if (first < 0xf8) revert MalformedHeader(); // a header is a list of more than 55 bytes
        uint256 lenOfLen = first - 0xf7;
        if (1 + lenOfLen + _uint(header, 1, lenOfLen) != len) revert MalformedHeader();
        uint256 pos = 1 + lenOfLen;
        for (uint256 i = 0; i < MIX_HASH_FIELD; ++i) {
            pos = _next(header, pos);
        }
        if (pos + 33 > len || uint8(header[pos]) != 0xa0) revert MalformedHeader();
        return bytes32(header[pos + 1:pos + 33]);
    }

    /// @dev Position just past the byte string starting at `pos`.
    function _next(bytes calldata h, uint256 pos) private pure returns (uint256 next) {
        if (pos >= h.length) revert MalformedHeader();
        uint256 b = uint8(h[pos]);
        if (b < 0x80) {
            next = pos + 1;
        } else if (b < 0xb8) {
            next = pos + 1 + (b - 0x80);
        } else if (b < 0xc0) {
            uint256 lenOfLen = b - 0xb7;
            next = pos + 1 + lenOfLen + _uint(h, pos + 1, lenOfLen);
        } else {
            revert MalformedHeader(); // header fields are byte strings, never lists
        }
        if (next > h.length) revert MalformedHeader();
    }

    /// @dev Big-endian unsigned integer of `n` (1..8) bytes at `at`.
    function _uint(bytes calldata h, uint256 at, uint256 n) private pure returns (uint256 v) {
        if (n == 0 || n > 8 || at + n > h.length) revert MalformedHeader();
        for (uint256 i = 0; i < n; ++i) {
            v = (v << 8) | uint8(h[at + i]);
        }
    }
}
