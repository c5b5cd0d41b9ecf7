// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {StateReader} from "../../src/StateReader.sol";
import {HashTreeRef} from "../utils/TreeRef.sol";

/// @notice StateReader on synthetic states in the canonical format (`protocol/state.py`): any number of tensors of
///         any sizes, so manifests and tensors straddle chunk boundaries anywhere. (Real MLP and tiny-LM states are
///         read on anvil by tests/test_state_reader.py.)
contract StateReaderTest is Test {
    uint256 internal constant CHUNK = 4096;
    StateReader internal reader;

    struct State {
        bytes blob;
        uint256 mlen;
        uint256[] at; // each entry's position in the manifest
        uint256[] numel;
        uint256[] offset;
        bytes32[] leaves;
        bytes32 root;
    }

    function setUp() public {
        reader = new StateReader();
    }

    /// @dev `n` float32 tensors "t0".."t{n-1}" of pseudo-random sizes and bytes, serialised canonically.
    function _state(uint256 seed, uint256 n) internal view returns (State memory s) {
        s.at = new uint256[](n);
        s.numel = new uint256[](n);
        s.offset = new uint256[](n);
        bytes memory m = bytes('{"format":"veritrain-state","meta":{"rng":{"next_step":3}},"step":3,"tensors":[');
        uint256 off = 0;
        for (uint256 i = 0; i < n; ++i) {
            uint256 k = uint256(keccak256(abi.encode(seed, i))) % 1500;
            (s.at[i], s.numel[i], s.offset[i]) = (m.length + (i > 0 ? 1 : 0), k, off);
            m = bytes.concat(
                m,
                i > 0 ? bytes(",") : bytes(""),
                '{"dtype":"float32","name":"t',
                bytes(vm.toString(i)),
                '","nbytes":',
                bytes(vm.toString(4 * k)),
                ',"offset":',
                bytes(vm.toString(off)),
                ',"shape":[',
                bytes(vm.toString(k)),
                "]}"
            );
            off += 4 * k;
        }
        m = bytes.concat(m, '],"version":1}');
        s.mlen = m.length;
        bytes memory data = new bytes(off + 32);
        for (uint256 w = 0; w < off; w += 32) {
            bytes32 word = keccak256(abi.encode(seed, "word", w));
            assembly ("memory-safe") {
                mstore(add(add(data, 0x20), w), word)
            }
        }
        assembly ("memory-safe") {
            mstore(data, off) // the 32 spare bytes only absorbed the last word
        }
        s.blob = bytes.concat("VTS1", _le64(m.length), m, data);
        uint256 count = (s.blob.length + CHUNK - 1) / CHUNK;
        s.leaves = new bytes32[](count);
        for (uint256 c = 0; c < count; ++c) {
            s.leaves[c] =
                sha256(bytes.concat(bytes1(0x00), _slice(s.blob, c * CHUNK, _min(s.blob.length, (c + 1) * CHUNK))));
        }
        s.root = HashTreeRef.root(s.leaves, 0, count);
    }

    function _chunks(State memory s, uint256 first, uint256 last) internal view returns (StateReader.Chunks memory c) {
        c.first = uint64(first);
        c.data = new bytes[](last - first + 1);
        c.paths = new bytes32[][](last - first + 1);
        for (uint256 i = first; i <= last; ++i) {
            c.data[i - first] = _slice(s.blob, i * CHUNK, _min(s.blob.length, (i + 1) * CHUNK));
            c.paths[i - first] = HashTreeRef.path(s.leaves, i, 0, s.leaves.length);
        }
    }

    function _manifest(State memory s, uint256 i) internal view returns (StateReader.ManifestOpening memory m) {
        m.chunks = _chunks(s, 0, (12 + s.mlen - 1) / CHUNK);
        (m.entryAt, m.lastAt) = (s.at[i], s.at[s.at.length - 1]);
    }

    function testFuzz_everyTensorIsFoundWhereItLies_andItsBytesReadBack(uint256 seed, uint256 n) public view {
        n = bound(n, 1, 5);
        State memory s = _state(seed, n);
        for (uint256 i = 0; i < n; ++i) {
            StateReader.Tensor memory t = reader.tensor(s.root, _manifest(s, i), string.concat("t", vm.toString(i)));
            assertEq(t.start, 12 + s.mlen + s.offset[i]);
            assertEq(t.nbytes, 4 * s.numel[i]);
            assertEq(t.dtype, 0);
            assertEq(t.shape.length, 1);
            assertEq(t.shape[0], s.numel[i]);
            assertEq(t.chunkCount, s.leaves.length);
            if (t.nbytes < 32) continue;
            uint256 start = t.start + 4 * (uint256(keccak256(abi.encode(seed, "at", i))) % (s.numel[i] - 7));
            bytes memory got =
                reader.read(s.root, t.chunkCount, start, 32, _chunks(s, start / CHUNK, (start + 31) / CHUNK));
            assertEq(got, _slice(s.blob, start, start + 32));
        }
    }

    function testFuzz_anEntryOfAnotherName_orNotAtAnEntry_orNotTheLast_isRefused(uint256 seed) public {
        State memory s = _state(seed, 3);
        StateReader.ManifestOpening memory m = _manifest(s, 1);
        vm.expectRevert(abi.encodeWithSelector(StateReader.EntryNotInManifest.selector, m.entryAt, "another tensor"));
        reader.tensor(s.root, m, "t2");
        m.entryAt += 1; // inside the entry: no `{"dtype":"` there
        vm.expectRevert();
        reader.tensor(s.root, m, "t1");
        m = _manifest(s, 1);
        m.lastAt = s.at[1];
        vm.expectRevert(abi.encodeWithSelector(StateReader.EntryNotInManifest.selector, m.lastAt, "not the last entry"));
        reader.tensor(s.root, m, "t1");
    }

    function testFuzz_bytesNotTheStates_orAtAnotherIndex_areRefused(uint256 seed, uint256 flip) public {
        State memory s = _state(seed, 4);
        StateReader.ManifestOpening memory m = _manifest(s, 0);
        bytes memory bent = m.chunks.data[0];
        bent[bound(flip, 0, bent.length - 1)] ^= 0x01;
        vm.expectRevert(); // a header or manifest no longer hashing to the root (or no longer parsing)
        reader.tensor(s.root, m, "t0");
        if (s.leaves.length < 3) return;
        StateReader.Chunks memory c = _chunks(s, 1, 1);
        c.first = 2; // chunk 1 presented as chunk 2
        vm.expectRevert(abi.encodeWithSelector(StateReader.ChunkNotInState.selector, 2));
        reader.read(s.root, uint64(s.leaves.length), 2 * CHUNK, 8, c);
    }

    function _le64(uint256 v) internal pure returns (bytes memory b) {
        b = new bytes(8);
        for (uint256 i = 0; i < 8; ++i) {
            b[i] = bytes1(uint8(v >> (8 * i)));
        }
    }

    function _slice(bytes memory b, uint256 lo, uint256 hi) internal pure returns (bytes memory out) {
        out = new bytes(hi - lo);
        assembly ("memory-safe") {
            mcopy(add(out, 0x20), add(add(b, 0x20), lo), sub(hi, lo))
        }
    }

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }
}
