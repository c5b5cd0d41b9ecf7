// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

/// @title Philox
/// @notice The training engine's counter-based generator on-chain (protocol/engine/rng.py, the protocol text):
///         Philox4x32-10 (Salmon et al., SC'11, the Random123 reference) and the stream it defines, so an exact-mode
///         dispute can recompute any random value a step used (a dropout draw, an initial weight's uniform, an
///         example's sort key) from the job seed alone. Stage 2 of the committee-free settlement.
/// @dev Words are uint32 values held in uint256; products of two u32 fit 64 bits, so nothing overflows.
library Philox {
    uint256 private constant M0 = 0xD2511F53;
    uint256 private constant M1 = 0xCD9E8D57;
    uint256 private constant W0 = 0x9E3779B9;
    uint256 private constant W1 = 0xBB67AE85;
    uint256 private constant MASK = 0xFFFFFFFF;
    uint256 private constant SHA256 = 0x02;

    /// @notice The block function: 10 rounds on counter (c0, c1, c2, c3) with key (k0, k1), all u32; the four
    ///         output words packed big-endian, word 0 in bits 96..127 (`lane` reads one).
    function block4x32(uint256 c0, uint256 c1, uint256 c2, uint256 c3, uint256 k0, uint256 k1)
        internal
        pure
        returns (uint256)
    {
        unchecked {
            for (uint256 r = 0; r < 10; ++r) {
                if (r != 0) {
                    k0 = (k0 + W0) & MASK;
                    k1 = (k1 + W1) & MASK;
                }
                uint256 p0 = c0 * M0;
                uint256 p1 = c2 * M1;
                // (c0, c1, c2, c3) = (hi(p1) ^ c1 ^ k0, lo(p1), hi(p0) ^ c3 ^ k1, lo(p0)), in an order that reads
                // each old word before it is overwritten
                c0 = (p1 >> 32) ^ c1 ^ k0;
                c1 = p1 & MASK;
                c2 = (p0 >> 32) ^ c3 ^ k1;
                c3 = p0 & MASK;
            }
        }
        return (c0 << 96) | (c1 << 64) | (c2 << 32) | c3;
    }

    /// @notice Word `k` (0..3) of a packed block.
    function lane(uint256 packed, uint256 k) internal pure returns (uint256) {
        return (packed >> (96 - 32 * k)) & MASK;
    }

    /// @notice The two counter words naming stream (purpose, index): the first 8 bytes of
    ///         SHA-256("veritrain/rng/v1\0" ‖ purpose ‖ "\0" ‖ index as 8 bytes little-endian), as two little-endian
    ///         u32.
    function streamTag(bytes memory purpose, uint64 index) internal view returns (uint256 t0, uint256 t1) {
        bytes32 h = _sha256(abi.encodePacked("veritrain/rng/v1", bytes1(0), purpose, bytes1(0), _le64(index)));
        t0 = _le32(uint32(bytes4(h)));
        t1 = _le32(uint32(bytes4(h << 32)));
    }

    /// @notice Word `j` of the stream with key `seed` (64-bit job seed) and tag (t0, t1): word j % 4 of block j / 4,
    ///         whose counter is (b mod 2^32, b >> 32, t0, t1).
    function word(uint64 seed, uint256 t0, uint256 t1, uint256 j) internal pure returns (uint256) {
        uint256 b = j >> 2;
        return lane(block4x32(b & MASK, b >> 32, t0, t1, seed & MASK, seed >> 32), j & 3);
    }

    /// @notice The 53-bit integer m of uniform `j` (the value is m · 2^-53): words 2j (a) and 2j + 1 (b) give
    ///         m = (a >> 5) · 2^26 + (b >> 6).
    function uniformMantissa(uint64 seed, uint256 t0, uint256 t1, uint256 j) internal pure returns (uint256) {
        return ((word(seed, t0, t1, 2 * j) >> 5) << 26) + (word(seed, t0, t1, 2 * j + 1) >> 6);
    }

    /// @notice Sort key `j` (permutations): a · 2^32 + b with a, b words 2j and 2j + 1.
    function key64(uint64 seed, uint256 t0, uint256 t1, uint256 j) internal pure returns (uint256) {
        return (word(seed, t0, t1, 2 * j) << 32) | word(seed, t0, t1, 2 * j + 1);
    }

    function _sha256(bytes memory data) private view returns (bytes32 out) {
        assembly ("memory-safe") {
            if iszero(staticcall(gas(), SHA256, add(data, 0x20), mload(data), 0x00, 0x20)) { revert(0, 0) }
            out := mload(0x00)
        }
    }

    function _le64(uint64 v) private pure returns (bytes8 out) {
        uint64 r = 0;
        for (uint256 i = 0; i < 8; ++i) {
            r = (r << 8) | ((v >> (8 * i)) & 0xFF);
        }
        out = bytes8(r);
    }

    /// @dev A u32 read from 4 little-endian bytes that were taken big-endian.
    function _le32(uint32 v) private pure returns (uint256) {
        return ((v & 0xFF) << 24) | (((v >> 8) & 0xFF) << 16) | (((v >> 16) & 0xFF) << 8) | (v >> 24);
    }
}
