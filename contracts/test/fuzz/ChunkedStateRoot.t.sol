// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {ChunkedStateRoot} from "../../src/libraries/ChunkedStateRoot.sol";
import {RFC9162} from "../../src/libraries/RFC9162.sol";
import {ChunkedStateRootHarness} from "../harness/ChunkedStateRootHarness.sol";

/// @notice ChunkedStateRoot fed in any pieces equals the RFC 9162 root over the 4096-byte chunks read straight from
///         the definition (recursive split at the largest power of two below n), for random lengths and splits.
contract ChunkedStateRootTest is Test {
    ChunkedStateRootHarness internal h;

    function setUp() public {
        h = new ChunkedStateRootHarness();
    }

    function _leafHashes(bytes memory data) internal pure returns (bytes32[] memory leaves) {
        uint256 n = (data.length + 4095) / 4096;
        leaves = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 end = (i + 1) * 4096 > data.length ? data.length : (i + 1) * 4096;
            bytes memory chunk = new bytes(end - i * 4096);
            for (uint256 j = 0; j < chunk.length; ++j) {
                chunk[j] = data[i * 4096 + j];
            }
            leaves[i] = sha256(abi.encodePacked(bytes1(0x00), chunk));
        }
    }

    function _mth(bytes32[] memory leaves, uint256 lo, uint256 hi) internal view returns (bytes32) {
        if (hi - lo == 1) return leaves[lo];
        uint256 k = RFC9162.splitPoint(hi - lo);
        return RFC9162.hashNode(_mth(leaves, lo, lo + k), _mth(leaves, lo + k, hi));
    }

    function _reference(bytes memory data) internal view returns (bytes32) {
        if (data.length == 0) return sha256("");
        bytes32[] memory leaves = _leafHashes(data);
        return _mth(leaves, 0, leaves.length);
    }

    function _data(uint256 seed, uint256 len) internal pure returns (bytes memory out) {
        out = new bytes(len);
        for (uint256 i = 0; i < len; i += 32) {
            bytes32 w = keccak256(abi.encode(seed, i));
            for (uint256 j = 0; j < 32 && i + j < len; ++j) {
                out[i + j] = w[j];
            }
        }
    }

    function testFuzz_feedInPieces_equalsTheDefinition(uint256 seed, uint16 lenRaw, uint8 cutRaw) public {
        uint256 len = bound(lenRaw, 0, 9 * 4096 + 100);
        bytes memory data = _data(seed, len);
        uint256 whole = len / 4096;
        uint256 cut = whole == 0 ? 0 : bound(cutRaw, 0, whole) * 4096; // pieces before the last are whole chunks
        bytes memory first = new bytes(cut);
        bytes memory rest = new bytes(len - cut);
        for (uint256 i = 0; i < len; ++i) {
            if (i < cut) first[i] = data[i];
            else rest[i - cut] = data[i];
        }
        h.feed(seed, first, false);
        h.feed(seed, rest, true);
        assertEq(h.root(seed), _reference(data));
        assertEq(h.rootOf(data), _reference(data));
    }

    function test_sizesAroundPowersOfTwoChunks_equalTheDefinition() public {
        uint256[9] memory lens =
            [uint256(1), 4095, 4096, 4097, 2 * 4096, 3 * 4096 + 1, 4 * 4096, 5 * 4096 - 1, 8 * 4096 + 7];
        for (uint256 i = 0; i < lens.length; ++i) {
            bytes memory data = _data(i, lens[i]);
            assertEq(h.rootOf(data), _reference(data), "length");
        }
    }

    function test_feed_revertsOnAPartialChunkBeforeTheEnd() public {
        bytes memory partialChunk = new bytes(100);
        vm.expectRevert(abi.encodeWithSelector(ChunkedStateRoot.ChunkMisaligned.selector, 100));
        h.feed(1, partialChunk, false);
    }

    function test_feed_revertsOnBytesAfterTheLastPiece() public {
        h.feed(2, new bytes(10), true);
        vm.expectRevert(abi.encodeWithSelector(ChunkedStateRoot.ChunkMisaligned.selector, 4096));
        h.feed(2, new bytes(4096), false);
    }
}
