// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {RFC9162} from "../../src/libraries/RFC9162.sol";

/// @notice Exposes the calldata-taking RFC9162 functions (the audit path is calldata in the library).
contract FuzzRFC9162Harness {
    function verifyInclusion(bytes32 root, bytes32 leafHash, uint256 index, uint256 size, bytes32[] calldata path)
        external
        view
        returns (bool)
    {
        return RFC9162.verifyInclusion(root, leafHash, index, size, path);
    }

    function rootFromPath(bytes32 leafHash, uint256 index, uint256 size, bytes32[] calldata path)
        external
        view
        returns (bool, bytes32)
    {
        return RFC9162.rootFromPath(leafHash, index, size, path);
    }
}

/// @notice RFC 9162 §2 against an independent recursive reference written here (sha256 via Solidity's builtin, its
///         own split computation), over random trees of 1..300 leaves.
contract RFC9162FuzzTest is Test {
    FuzzRFC9162Harness internal h;

    uint256 internal constant MAX_SIZE = 300;

    function setUp() public {
        h = new FuzzRFC9162Harness();
    }

    // -------------------------------------------------------------- reference

    function _refLeaf(bytes32 entry) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), entry));
    }

    function _refNode(bytes32 l, bytes32 r) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), l, r));
    }

    /// @dev Largest power of two strictly below n (n >= 2), by doubling.
    function _refSplit(uint256 n) internal pure returns (uint256 k) {
        k = 1;
        while (k * 2 < n) {
            k *= 2;
        }
    }

    /// @dev Random leaf hashes (the proofs only ever see H(0x00 ‖ entry), so random 32-byte values stand for them).
    function _leafHashes(bytes32 seed, uint256 size) internal pure returns (bytes32[] memory hs) {
        hs = new bytes32[](size);
        for (uint256 i = 0; i < size; ++i) {
            hs[i] = keccak256(abi.encode(seed, i));
        }
    }

    /// @dev MTH(D[lo:hi]) over precomputed leaf hashes.
    function _refRoot(bytes32[] memory hs, uint256 lo, uint256 hi) internal pure returns (bytes32) {
        if (hi - lo == 1) return hs[lo];
        uint256 k = _refSplit(hi - lo);
        return _refNode(_refRoot(hs, lo, lo + k), _refRoot(hs, lo + k, hi));
    }

    /// @dev PATH(m, D[lo:hi]) bottom-up.
    function _refPath(bytes32[] memory hs, uint256 m, uint256 lo, uint256 hi)
        internal
        pure
        returns (bytes32[] memory path)
    {
        if (hi - lo == 1) return new bytes32[](0);
        uint256 k = _refSplit(hi - lo);
        bytes32[] memory sub;
        bytes32 sibling;
        if (m < lo + k) {
            sub = _refPath(hs, m, lo, lo + k);
            sibling = _refRoot(hs, lo + k, hi);
        } else {
            sub = _refPath(hs, m, lo + k, hi);
            sibling = _refRoot(hs, lo, lo + k);
        }
        path = new bytes32[](sub.length + 1);
        for (uint256 i = 0; i < sub.length; ++i) {
            path[i] = sub[i];
        }
        path[sub.length] = sibling;
    }

    /// @dev Bottom-up side of each sibling on the path of leaf m in a tree of `size` leaves (true = sibling on the
    ///      left). Two (index, size) pairs with equal sides fold any path to the same root.
    function _refSides(uint256 m, uint256 size) internal pure returns (bool[] memory sides) {
        bool[] memory top = new bool[](64);
        uint256 depth = 0;
        uint256 lo = 0;
        uint256 hi = size;
        while (hi - lo > 1) {
            uint256 k = _refSplit(hi - lo);
            if (m < lo + k) {
                top[depth++] = false;
                hi = lo + k;
            } else {
                top[depth++] = true;
                lo += k;
            }
        }
        sides = new bool[](depth);
        for (uint256 i = 0; i < depth; ++i) {
            sides[i] = top[depth - 1 - i];
        }
    }

    function _sameSides(bool[] memory a, bool[] memory b) internal pure returns (bool) {
        if (a.length != b.length) return false;
        for (uint256 i = 0; i < a.length; ++i) {
            if (a[i] != b[i]) return false;
        }
        return true;
    }

    /// @dev Second, non-recursive formulation of the same tree (each node hashed once): pair up each level left to
    ///      right and carry an odd last node up unchanged. The audit path of leaf m is its sibling on every level
    ///      where it has one.
    function _levelRootAndPath(bytes32[] memory hs, uint256 m)
        internal
        pure
        returns (bytes32 root, bytes32[] memory path)
    {
        uint256 n = hs.length;
        bytes32[] memory level = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            level[i] = hs[i];
        }
        bytes32[] memory top = new bytes32[](64);
        uint256 depth = 0;
        while (n > 1) {
            uint256 sibling = m ^ 1;
            if (sibling < n) top[depth++] = level[sibling];
            uint256 half = n / 2;
            for (uint256 i = 0; i < half; ++i) {
                level[i] = _refNode(level[2 * i], level[2 * i + 1]);
            }
            if (n % 2 == 1) level[half] = level[n - 1];
            n = half + n % 2;
            m /= 2;
        }
        root = level[0];
        path = new bytes32[](depth);
        for (uint256 i = 0; i < depth; ++i) {
            path[i] = top[i];
        }
    }

    function _tree(bytes32 seed, uint256 sizeRaw, uint256 indexRaw, uint256 minSize)
        internal
        pure
        returns (bytes32[] memory hs, uint256 size, uint256 index, bytes32 root, bytes32[] memory path)
    {
        size = _bound(sizeRaw, minSize, MAX_SIZE);
        index = _bound(indexRaw, 0, size - 1);
        hs = _leafHashes(seed, size);
        (root, path) = _levelRootAndPath(hs, index);
    }

    function testFuzz_reference_recursiveAndLevelwiseAgree(bytes32 seed, uint256 sizeRaw, uint256 indexRaw)
        public
        pure
    {
        uint256 size = _bound(sizeRaw, 1, 80);
        uint256 index = _bound(indexRaw, 0, size - 1);
        bytes32[] memory hs = _leafHashes(seed, size);
        (bytes32 root, bytes32[] memory path) = _levelRootAndPath(hs, index);
        assertEq(root, _refRoot(hs, 0, size));
        bytes32[] memory rpath = _refPath(hs, index, 0, size);
        assertEq(path.length, rpath.length);
        for (uint256 i = 0; i < path.length; ++i) {
            assertEq(path[i], rpath[i]);
        }
    }

    // ------------------------------------------------------------------ fuzz

    function testFuzz_verifyInclusion_acceptsTruePath(bytes32 seed, uint256 sizeRaw, uint256 indexRaw) public view {
        (bytes32[] memory hs, uint256 size, uint256 index, bytes32 root, bytes32[] memory path) =
            _tree(seed, sizeRaw, indexRaw, 1);
        assertTrue(h.verifyInclusion(root, hs[index], index, size, path));
        (bool ok, bytes32 computed) = h.rootFromPath(hs[index], index, size, path);
        assertTrue(ok);
        assertEq(computed, root);
        assertEq(RFC9162.leafDepth(index, size), path.length, "leafDepth is the audit path length");
    }

    function testFuzz_hashing_matchesReference(bytes32 a, bytes32 b) public view {
        assertEq(RFC9162.hashLeaf(a), _refLeaf(a));
        assertEq(RFC9162.hashNode(a, b), _refNode(a, b));
        assertEq(RFC9162.hashLeaf(a), sha256(bytes.concat(hex"00", a)));
    }

    function testFuzz_verifyInclusion_rejectsFlippedBitOrOtherLeaf(
        bytes32 seed,
        uint256 sizeRaw,
        uint256 indexRaw,
        uint256 posRaw,
        uint8 bit
    ) public view {
        (bytes32[] memory hs, uint256 size, uint256 index, bytes32 root, bytes32[] memory path) =
            _tree(seed, sizeRaw, indexRaw, 2);
        bytes32 flip = bytes32(uint256(1) << bit);
        uint256 pos = _bound(posRaw, 0, path.length - 1);
        path[pos] ^= flip;
        assertFalse(h.verifyInclusion(root, hs[index], index, size, path), "one bit of the path flipped");
        path[pos] ^= flip;
        assertFalse(h.verifyInclusion(root, hs[index] ^ flip, index, size, path), "one bit of the leaf flipped");
        assertFalse(h.verifyInclusion(root ^ flip, hs[index], index, size, path), "one bit of the root flipped");
        uint256 other = (index + 1) % size;
        assertFalse(h.verifyInclusion(root, hs[other], index, size, path), "a neighbour under the wrong path");
        assertTrue(h.verifyInclusion(root, hs[index], index, size, path), "restored");
    }

    function testFuzz_verifyInclusion_rejectsWrongIndex(
        bytes32 seed,
        uint256 sizeRaw,
        uint256 indexRaw,
        uint256 otherRaw
    ) public view {
        (bytes32[] memory hs, uint256 size, uint256 index, bytes32 root, bytes32[] memory path) =
            _tree(seed, sizeRaw, indexRaw, 1);
        uint256 other = _bound(otherRaw, 0, size + 8);
        vm.assume(other != index);
        assertFalse(h.verifyInclusion(root, hs[index], other, size, path));
        // index >= size is refused outright
        (bool ok,) = h.rootFromPath(hs[index], size, size, path);
        assertFalse(ok);
    }

    /// @dev A wrong size is refused unless it gives the leaf exactly the same path shape (e.g. leaf 0 of 3 and of 4
    ///      leaves): RFC 9162 inclusion alone does not bind the size, which is why the contracts take N from storage.
    function testFuzz_verifyInclusion_rejectsWrongSizeUnlessSameShape(
        bytes32 seed,
        uint256 sizeRaw,
        uint256 indexRaw,
        uint256 otherRaw
    ) public view {
        (bytes32[] memory hs, uint256 size, uint256 index, bytes32 root, bytes32[] memory path) =
            _tree(seed, sizeRaw, indexRaw, 1);
        uint256 other = _bound(otherRaw, 0, 2 * MAX_SIZE);
        vm.assume(other != size);
        bool accepted = h.verifyInclusion(root, hs[index], index, other, path);
        bool sameShape = other > index && _sameSides(_refSides(index, other), _refSides(index, size));
        assertEq(accepted, sameShape);
    }

    function test_verifyInclusion_wrongSizeWithSameShapeIsAccepted() public view {
        // leaf 0 in a 3-leaf tree has siblings (leaf 1, leaf 2) on the right, exactly as in a 4-leaf tree whose
        // right subtree root would be leaf 2's hash.
        bytes32[] memory hs = _leafHashes(keccak256("x"), 3);
        bytes32 root = _refRoot(hs, 0, 3);
        bytes32[] memory path = _refPath(hs, 0, 0, 3);
        assertTrue(h.verifyInclusion(root, hs[0], 0, 3, path));
        assertTrue(h.verifyInclusion(root, hs[0], 0, 4, path));
        assertFalse(h.verifyInclusion(root, hs[0], 0, 5, path));
    }

    function testFuzz_verifyInclusion_rejectsTruncatedOrExtendedPath(
        bytes32 seed,
        uint256 sizeRaw,
        uint256 indexRaw,
        bytes32 extra
    ) public view {
        (bytes32[] memory hs, uint256 size, uint256 index, bytes32 root, bytes32[] memory path) =
            _tree(seed, sizeRaw, indexRaw, 1);
        bytes32[] memory longer = new bytes32[](path.length + 1);
        for (uint256 i = 0; i < path.length; ++i) {
            longer[i] = path[i];
        }
        longer[path.length] = extra;
        assertFalse(h.verifyInclusion(root, hs[index], index, size, longer));
        (bool ok,) = h.rootFromPath(hs[index], index, size, longer);
        assertFalse(ok);
        if (path.length != 0) {
            bytes32[] memory shorter = new bytes32[](path.length - 1);
            for (uint256 i = 0; i < shorter.length; ++i) {
                shorter[i] = path[i];
            }
            assertFalse(h.verifyInclusion(root, hs[index], index, size, shorter));
            (ok,) = h.rootFromPath(hs[index], index, size, shorter);
            assertFalse(ok);
            // the truncated fold is a real internal node: still refused, the length does not match (index, size)
            bytes32[] memory empty = new bytes32[](0);
            assertFalse(h.verifyInclusion(hs[index], hs[index], index, size, empty));
        }
    }

    function testFuzz_splitPoint_isLargestPowerOfTwoBelow(uint256 n) public pure {
        n = _bound(n, 2, type(uint256).max);
        uint256 k = RFC9162.splitPoint(n);
        assertEq(k & (k - 1), 0, "power of two");
        assertLt(k, n);
        assertGe(k, n - k, "2k >= n: no larger power of two below n");
        if (n <= 1 << 200) assertEq(k, _refSplit(n));
    }

    function test_splitPoint_smallValues() public pure {
        uint256[9] memory ns = [uint256(2), 3, 4, 5, 8, 9, 16, 17, 300];
        uint256[9] memory ks = [uint256(1), 2, 2, 4, 4, 8, 8, 16, 256];
        for (uint256 i = 0; i < ns.length; ++i) {
            assertEq(RFC9162.splitPoint(ns[i]), ks[i]);
        }
        assertEq(RFC9162.splitPoint(type(uint256).max), 1 << 255);
    }

    function testFuzz_leafDepth_boundedByCeilLog2(uint256 sizeRaw, uint256 indexRaw) public pure {
        uint256 size = _bound(sizeRaw, 1, 1 << 24);
        uint256 index = _bound(indexRaw, 0, size - 1);
        uint256 depth = RFC9162.leafDepth(index, size);
        uint256 ceilLog2 = 0;
        while ((uint256(1) << ceilLog2) < size) {
            ++ceilLog2;
        }
        assertLe(depth, ceilLog2);
        assertEq(depth, _refSides(index, size).length);
        if (size & (size - 1) == 0) assertEq(depth, ceilLog2, "perfect tree: every leaf at full depth");
    }

    /// @dev A known vector computed with Python hashlib (what pymerkle does): leaves sha256(0x00 ‖ i) for i=1..3.
    function test_root_threeLeavesKnownVector() public pure {
        bytes32[] memory hs = new bytes32[](3);
        for (uint256 i = 0; i < 3; ++i) {
            hs[i] = _refLeaf(bytes32(i + 1));
        }
        bytes32 expected = _refNode(_refNode(hs[0], hs[1]), hs[2]);
        assertEq(_refRoot(hs, 0, 3), expected);
        assertEq(expected, 0x93e34ecb30d456c2bb3903c45dd51d053db3e66522a0a2eaf5fafa58312ed037);
    }
}
