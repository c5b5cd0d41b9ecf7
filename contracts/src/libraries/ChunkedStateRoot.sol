// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {RFC9162} from "./RFC9162.sol";

/// @title ChunkedStateRoot
/// @notice The state root of DESIGN §3 — the RFC 9162 Merkle root over the 4096-byte chunks of a canonical state
///         serialisation, last chunk short — computed on-chain from bytes fed over any number of calls, as
///         `protocol/state.py` (`chunked_root`, `StateRootHasher`) computes it. This is what lets a solver make a
///         checkpoint available to everyone by publishing it in calldata: the contract checks that the published
///         bytes hash to the committed root, and anyone reads them back from the transactions.
/// @dev The running state is a stack of perfect subtrees (leaf count, root), counts strictly decreasing, like a
///      binary counter; a full 4096-byte chunk is pushed as a leaf H(0x00 ‖ chunk) and equal-sized neighbours merge
///      into H(0x01 ‖ left ‖ right). Every piece but the last must be a whole number of chunks, so no partial chunk
///      is ever stored. The root folds the stack right to left (RFC 9162: the tree of n leaves splits at the largest
///      power of two below n, which is exactly the stack's first entry).
library ChunkedStateRoot {
    uint256 internal constant CHUNK = 4096;
    /// @dev Most stack entries: one per bit of the chunk count (2^40 chunks = 4 PiB, far past any state).
    uint256 internal constant MAX_DEPTH = 40;
    uint256 private constant SHA256 = 0x02;

    struct Hasher {
        uint64 chunks; // full chunks absorbed so far
        uint64 bytesFed; // bytes absorbed so far
        bool done; // a short (last) chunk was absorbed: nothing more may follow
        uint64[] counts; // the stack: leaf count of each perfect subtree, strictly decreasing
        bytes32[] roots; // ... and its root
    }

    /// @notice More bytes after the last (short) chunk, or a piece that is not a whole number of chunks before it.
    error ChunkMisaligned(uint256 length);

    /// @notice Feeds `data` (a whole number of 4096-byte chunks, or the final piece with a short last chunk when
    ///         `last`). An empty final piece after at least one chunk is allowed.
    function feed(Hasher storage h, bytes calldata data, bool last) internal {
        if (h.done) revert ChunkMisaligned(data.length);
        uint256 n = data.length;
        uint256 full = n / CHUNK;
        if (!last && n % CHUNK != 0) revert ChunkMisaligned(n);
        for (uint256 i = 0; i < full; ++i) {
            _push(h, _leaf(data[i * CHUNK:(i + 1) * CHUNK]));
        }
        if (n % CHUNK != 0) _push(h, _leaf(data[full * CHUNK:]));
        // forge-lint: disable-next-line(unsafe-typecast)
        h.chunks += uint64(full + (n % CHUNK != 0 ? 1 : 0)); // bounded by calldata size, far below 2^64
        // forge-lint: disable-next-line(unsafe-typecast)
        h.bytesFed += uint64(n);
        if (last) h.done = true;
    }

    /// @notice The root of everything fed (SHA-256("") for no bytes at all, as RFC 9162's empty tree).
    function root(Hasher storage h) internal view returns (bytes32 r) {
        uint256 k = h.roots.length;
        if (k == 0) return sha256("");
        r = h.roots[k - 1];
        for (uint256 i = k - 1; i > 0; --i) {
            r = RFC9162.hashNode(h.roots[i - 1], r);
        }
    }

    function _push(Hasher storage h, bytes32 leaf) private {
        uint64 count = 1;
        bytes32 r = leaf;
        uint256 k = h.counts.length;
        while (k > 0 && h.counts[k - 1] == count) {
            r = RFC9162.hashNode(h.roots[k - 1], r);
            h.counts.pop();
            h.roots.pop();
            count *= 2;
            --k;
        }
        h.counts.push(count);
        h.roots.push(r);
    }

    /// @dev H(0x00 ‖ chunk) of a calldata slice, hashed by the precompile from a memory copy.
    function _leaf(bytes calldata chunk) private view returns (bytes32 out) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore8(p, 0x00)
            calldatacopy(add(p, 1), chunk.offset, chunk.length)
            if iszero(staticcall(gas(), SHA256, p, add(chunk.length, 1), 0x00, 0x20)) { revert(0, 0) }
            out := mload(0x00)
        }
    }
}
