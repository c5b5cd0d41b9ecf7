// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {RFC9162} from "./libraries/RFC9162.sol";

/// @title StateReader
/// @notice Reads a training state on chain from its state root alone (DESIGN §3): a tensor's manifest entry and any
///         of its bytes, from 4096-byte chunks of the canonical serialisation `b"VTS1" ‖ u64 manifest_len ‖ manifest ‖
///         tensor bytes` each proven against the root. This is what ties the game below a step to the agreed
///         pre-state root (DESIGN §8): a tensor input the defender committed can be compared with the state's bytes.
/// @dev The manifest is canonical JSON (`protocol/state.py`): sorted keys, no spaces, ASCII, each tensor entry
///      `{"dtype":D,"name":N,"nbytes":B,"offset":O,"shape":[...]}` in name order, the last followed by
///      `],"version":1}`, which ends the manifest. An entry is found by its byte position: since no JSON string holds
///      an unescaped quote, `{"dtype":"` there starts a real entry (the engine's meta has no object keyed `dtype`
///      first, and the state was agreed by both parties). The chunk count, which RFC 9162 inclusion proofs need, is
///      not taken from the caller: it follows from the last entry (header + manifest + its offset + its nbytes).
///      A separate deployed contract so the game stays under EIP-170.
contract StateReader {
    uint256 public constant CHUNK = 4096;
    uint256 public constant HEADER = 12; // magic + u64 manifest length
    bytes4 private constant MAGIC = "VTS1";
    bytes private constant TAIL = '],"version":1}';
    /// @dev The dtype code of a manifest dtype name (ElementOps codes); 255 for a dtype no element reads.
    uint8 public constant NO_DTYPE = 255;

    /// @notice Consecutive chunks `first, first + 1, …` of a state with their audit paths.
    struct Chunks {
        uint64 first;
        bytes[] data;
        bytes32[][] paths;
    }

    /// @notice The chunks from 0 that hold the header and the whole manifest, and the byte positions (in the
    ///         manifest) of the entry asked for and of the last entry.
    struct ManifestOpening {
        Chunks chunks;
        uint256 entryAt;
        uint256 lastAt;
    }

    /// @notice A tensor of the state: where its bytes start in the serialisation, how many, its dtype code and shape,
    ///         and the state's chunk count.
    struct Tensor {
        uint64 start;
        uint64 nbytes;
        uint8 dtype;
        uint32[] shape;
        uint64 chunkCount;
    }

    /// @dev One parsed manifest entry (`name` is its keccak256; `end` the position past its closing brace).
    struct Entry {
        uint8 dtype;
        bytes32 name;
        uint256 nbytes;
        uint256 offset;
        uint32[] shape;
        uint256 end;
    }

    error NotAState(string why);
    error ChunkNotInState(uint256 index);
    error EntryNotInManifest(uint256 at, string why);

    /// @notice Tensor `name` of the state with root `root`, from its manifest (`m`).
    function tensor(bytes32 root, ManifestOpening calldata m, string calldata name)
        external
        view
        returns (Tensor memory)
    {
        return _tensor(root, m, name);
    }

    function _tensor(bytes32 root, ManifestOpening calldata m, string memory name)
        private
        view
        returns (Tensor memory t)
    {
        if (m.chunks.first != 0 || m.chunks.data.length == 0) revert NotAState("the manifest starts at chunk 0");
        bytes memory head = _concat(m.chunks.data);
        if (head.length < HEADER || bytes4(_word(head, 0)) != MAGIC) revert NotAState("magic");
        uint256 mlen = _le64(head, 4);
        if (head.length < HEADER + mlen) revert NotAState("the chunks do not hold the whole manifest");
        // the last entry ends the manifest: it gives the serialisation's length, hence the chunk count
        Entry memory e = _entry(head, HEADER + m.lastAt, HEADER + mlen);
        if (e.end + TAIL.length != HEADER + mlen || !_equals(head, e.end, TAIL)) {
            revert EntryNotInManifest(m.lastAt, "not the last entry");
        }
        uint256 total = HEADER + mlen + e.offset + e.nbytes;
        uint256 count = (total + CHUNK - 1) / CHUNK;
        _verify(root, m.chunks, count, total);
        e = _entry(head, HEADER + m.entryAt, HEADER + mlen);
        if (e.name != keccak256(bytes(name))) revert EntryNotInManifest(m.entryAt, "another tensor");
        (t.dtype, t.shape) = (e.dtype, e.shape);
        // forge-lint: disable-next-line(unsafe-typecast)
        (t.start, t.nbytes, t.chunkCount) = (uint64(HEADER + mlen + e.offset), uint64(e.nbytes), uint64(count));
    }

    /// @notice The tensor an inputs-root entry names (`abi.encode(uint8 kind, uint32 index, string name, uint8 dtype,
    ///         uint32[] shape, bytes32 commitment)`, a pre-state tensor) in the state with root `root`, and the entry's
    ///         commitment; the manifest's dtype and shape must be the entry's.
    function entryTensor(bytes32 root, bytes calldata entry, ManifestOpening calldata m)
        external
        view
        returns (bytes32 commitment, Tensor memory t)
    {
        (,, string memory name, uint8 dtype, uint32[] memory shape, bytes32 c) =
            abi.decode(entry, (uint8, uint32, string, uint8, uint32[], bytes32));
        t = _tensor(root, m, name);
        if (t.dtype != dtype || keccak256(abi.encode(t.shape)) != keccak256(abi.encode(shape))) {
            revert EntryNotInManifest(m.entryAt, "another dtype or shape");
        }
        commitment = c;
    }

    /// @notice Bytes `[start, start + length)` (≤ 32) of the state, as a commitment leaf holds them: a float32
    ///         tensor's NaNs (`dtype` 0, `start` at an element) canonical (0x7fc00000), zero-padded to 32 bytes.
    function committedLeaf(
        bytes32 root,
        uint64 chunkCount,
        uint256 start,
        uint256 length,
        uint8 dtype,
        Chunks calldata c
    ) external view returns (bytes32) {
        if (length > 32) revert NotAState("a leaf is at most 32 bytes");
        bytes memory got = _read(root, chunkCount, start, length, c);
        if (dtype == 0) {
            for (uint256 i = 0; i + 4 <= got.length; i += 4) {
                uint32 w = uint32(uint8(got[i])) | uint32(uint8(got[i + 1])) << 8 | uint32(uint8(got[i + 2])) << 16
                    | uint32(uint8(got[i + 3])) << 24;
                if (w & 0x7fffffff > 0x7f800000) (got[i], got[i + 1], got[i + 2], got[i + 3]) = (0, 0, 0xc0, 0x7f);
            }
        }
        return bytes32(got);
    }

    /// @notice Bytes `[start, start + length)` of the state with root `root` and `chunkCount` chunks, from the chunks
    ///         that hold them (`c`, each proven).
    function read(bytes32 root, uint64 chunkCount, uint256 start, uint256 length, Chunks calldata c)
        external
        view
        returns (bytes memory)
    {
        return _read(root, chunkCount, start, length, c);
    }

    function _read(bytes32 root, uint64 chunkCount, uint256 start, uint256 length, Chunks calldata c)
        private
        view
        returns (bytes memory out)
    {
        uint256 from = uint256(c.first) * CHUNK;
        if (start < from || chunkCount == 0) revert NotAState("the chunks start after the bytes");
        // the last chunk's length is what the count allows; the others are whole
        _verify(root, c, chunkCount, type(uint256).max);
        bytes memory data = _concat(c.data);
        if (start + length > from + data.length) revert NotAState("the chunks end before the bytes");
        out = new bytes(length);
        for (uint256 i = 0; i < length; ++i) {
            out[i] = data[start - from + i];
        }
    }

    /// @dev Checks each chunk's inclusion at its index; every chunk but the state's last must be whole (and the last
    ///      exactly what `total` leaves, when known).
    function _verify(bytes32 root, Chunks calldata c, uint256 count, uint256 total) private view {
        if (c.data.length != c.paths.length) revert NotAState("a path per chunk");
        for (uint256 i = 0; i < c.data.length; ++i) {
            uint256 index = uint256(c.first) + i;
            bytes calldata chunk = c.data[i];
            if (index >= count) revert ChunkNotInState(index);
            bool last = index == count - 1;
            if (!last && chunk.length != CHUNK) revert ChunkNotInState(index);
            if (last && total != type(uint256).max && chunk.length != total - index * CHUNK) {
                revert ChunkNotInState(index);
            }
            bytes32 leaf = sha256(abi.encodePacked(bytes1(0x00), chunk));
            if (!RFC9162.verifyInclusion(root, leaf, index, count, c.paths[i])) revert ChunkNotInState(index);
        }
    }

    /// @dev Parses the entry starting at byte `p` of `b` (not past `limit`): its dtype code, keccak of its name, nbytes,
    ///      offset, shape, and the position just past its closing brace.
    function _entry(bytes memory b, uint256 p, uint256 limit) private pure returns (Entry memory e) {
        p = _expect(b, p, limit, '{"dtype":"');
        uint256 q = _until(b, p, limit);
        e.dtype = _dtype(keccak256(_slice(b, p, q)));
        p = _expect(b, q, limit, '","name":"');
        q = _until(b, p, limit);
        e.name = keccak256(_slice(b, p, q));
        p = _expect(b, q, limit, '","nbytes":');
        (e.nbytes, p) = _number(b, p, limit);
        p = _expect(b, p, limit, ',"offset":');
        (e.offset, p) = _number(b, p, limit);
        p = _expect(b, p, limit, ',"shape":[');
        uint32[] memory dims = new uint32[](8);
        uint256 k = 0;
        if (p < limit && b[p] != "]") {
            while (true) {
                uint256 d;
                (d, p) = _number(b, p, limit);
                if (k == dims.length || d > type(uint32).max) revert EntryNotInManifest(p, "shape");
                // forge-lint: disable-next-line(unsafe-typecast)
                dims[k++] = uint32(d);
                if (p < limit && b[p] == ",") ++p;
                else break;
            }
        }
        e.end = _expect(b, p, limit, "]}");
        e.shape = new uint32[](k);
        for (uint256 i = 0; i < k; ++i) {
            e.shape[i] = dims[i];
        }
    }

    function _dtype(bytes32 h) private pure returns (uint8) {
        if (h == keccak256("float32")) return 0;
        if (h == keccak256("int32")) return 1;
        if (h == keccak256("int64")) return 2;
        if (h == keccak256("bool")) return 3;
        if (h == keccak256("int8")) return 4;
        if (h == keccak256("uint8")) return 5;
        if (h == keccak256("float64")) return 6;
        return NO_DTYPE;
    }

    function _expect(bytes memory b, uint256 p, uint256 limit, bytes memory lit) private pure returns (uint256) {
        if (p + lit.length > limit || !_equals(b, p, lit)) revert EntryNotInManifest(p, string(lit));
        return p + lit.length;
    }

    /// @dev The position of the next `"` from `p` (a name or dtype: no escapes allowed).
    function _until(bytes memory b, uint256 p, uint256 limit) private pure returns (uint256 q) {
        for (q = p; q < limit; ++q) {
            if (b[q] == '"') return q;
            if (b[q] == "\\") revert EntryNotInManifest(q, "escaped string");
        }
        revert EntryNotInManifest(p, "unterminated string");
    }

    function _number(bytes memory b, uint256 p, uint256 limit) private pure returns (uint256 v, uint256 q) {
        for (q = p; q < limit && b[q] >= "0" && b[q] <= "9" && q - p < 20; ++q) {
            v = v * 10 + (uint8(b[q]) - 48);
        }
        if (q == p) revert EntryNotInManifest(p, "number");
    }

    function _equals(bytes memory b, uint256 p, bytes memory lit) private pure returns (bool) {
        if (p + lit.length > b.length) return false;
        for (uint256 i = 0; i < lit.length; ++i) {
            if (b[p + i] != lit[i]) return false;
        }
        return true;
    }

    function _slice(bytes memory b, uint256 p, uint256 q) private pure returns (bytes memory s) {
        s = new bytes(q - p);
        for (uint256 i = 0; i < q - p; ++i) {
            s[i] = b[p + i];
        }
    }

    function _concat(bytes[] calldata parts) private pure returns (bytes memory out) {
        for (uint256 i = 0; i < parts.length; ++i) {
            out = bytes.concat(out, parts[i]);
        }
    }

    function _word(bytes memory b, uint256 p) private pure returns (bytes32 w) {
        assembly ("memory-safe") {
            w := mload(add(add(b, 0x20), p))
        }
    }

    function _le64(bytes memory b, uint256 p) private pure returns (uint256 v) {
        for (uint256 i = 8; i > 0; --i) {
            v = (v << 8) | uint8(b[p + i - 1]);
        }
    }
}
