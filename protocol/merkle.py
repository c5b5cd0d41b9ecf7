"""RFC 9162 Merkle trees, byte-exact with ``contracts/src/libraries/RFC9162.sol`` (DESIGN.md §3).

leaf = SHA-256(0x00 ‖ entry), node = SHA-256(0x01 ‖ left ‖ right), a tree of n > 1 leaves splits at the
largest power of two < n, no duplication, empty tree = SHA-256(""). Entries are 32-byte state roots.

Trees are built with pymerkle (the solver keeps a ``SqliteTree`` so a restart loses nothing).
pymerkle indexes leaves from 1 and its ``prove_inclusion`` path starts with the leaf hash itself;
:func:`inclusion_path` takes a 0-based index and returns what the contracts take: the sibling hashes,
bottom-up.

The second half of the module is an independent pure-Python RFC 9162 implementation (root, audit path,
path verification in the contract's own algorithm). It is the reference the tests hold pymerkle to, and
lets a verifier check a proof without building a tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

from pymerkle import BaseMerkleTree, InmemoryTree, SqliteTree

ENTRY_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
#: Root of the empty tree, SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: Any pymerkle tree (pymerkle ships no type information, so to mypy this is ``Any``).
MerkleTree: TypeAlias = BaseMerkleTree


# ------------------------------------------------------------------ hashing


def leaf_hash(entry: bytes | bytearray | memoryview) -> bytes:
    """SHA-256(0x00 ‖ entry)."""
    h = hashlib.sha256(LEAF_PREFIX)
    h.update(entry)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def leaf_hasher() -> Any:
    """A SHA-256 object already fed the leaf prefix 0x00: ``copy()`` it and feed an entry to hash a leaf
    without concatenating (how 4096-byte state chunks are hashed from memoryviews)."""
    return hashlib.sha256(LEAF_PREFIX)


def split_point(n: int) -> int:
    """Largest power of two strictly less than ``n`` (n >= 2): where a subtree of n leaves splits."""
    if n < 2:
        raise ValueError(f"split_point needs n >= 2, got {n}")
    return 1 << ((n - 1).bit_length() - 1)


def _check_entry(entry: bytes) -> bytes:
    if len(entry) != ENTRY_SIZE:
        raise ValueError(f"Merkle entries are {ENTRY_SIZE}-byte state roots, got {len(entry)} bytes")
    return bytes(entry)


# ------------------------------------------------------------ pymerkle trees


def build_tree(entries: Iterable[bytes], *, dbfile: str | None = None) -> MerkleTree:
    """A pymerkle tree (sha256, security on) over 32-byte ``entries``, in order.

    In memory by default; with ``dbfile`` a ``SqliteTree`` (``":memory:"`` allowed), filled with
    pymerkle's bulk insert, which is several times faster for large trees.
    """
    checked = [_check_entry(e) for e in entries]
    if dbfile is None:
        tree: MerkleTree = InmemoryTree(algorithm="sha256")
        for entry in checked:
            tree.append_entry(entry)
        return tree
    tree = SqliteTree(dbfile, algorithm="sha256")
    if checked:
        tree.append_entries(checked)
    return tree


def tree_root(tree: MerkleTree, size: int | None = None) -> bytes:
    """Root over the first ``size`` leaves (all by default); :data:`EMPTY_ROOT` for size 0."""
    if size == 0 or tree.get_size() == 0:
        return EMPTY_ROOT
    return tree.get_root(size)


def inclusion_path(tree: MerkleTree, index0: int, size: int | None = None) -> list[bytes]:
    """Audit path of leaf ``index0`` (0-based) in the tree of the first ``size`` leaves, as the contracts take
    it: sibling hashes bottom-up (pymerkle's path without its first element, the leaf hash)."""
    if size is None:
        size = tree.get_size()
    if not 0 <= index0 < size:
        raise IndexError(f"leaf index {index0} out of range for size {size}")
    proof = tree.prove_inclusion(index0 + 1, size)
    path = list(proof.path)
    if path[0] != tree.get_leaf(index0 + 1):  # pragma: no cover - guards a pymerkle format change
        raise AssertionError("pymerkle's inclusion path no longer starts with the leaf hash")
    return path[1:]


def tree_leaf_hashes(tree: MerkleTree, lo: int = 0, hi: int | None = None) -> list[bytes]:
    """Leaf hashes of leaves [lo, hi) (0-based)."""
    hi = tree.get_size() if hi is None else hi
    return [tree.get_leaf(i + 1) for i in range(lo, hi)]


def subtree_root(tree: MerkleTree, lo: int, hi: int) -> bytes:
    """Root of the subtree over leaves [lo, hi), e.g. a node the dispute descent reached."""
    return rfc9162_root(tree_leaf_hashes(tree, lo, hi))


def children(tree: MerkleTree, lo: int, hi: int) -> tuple[bytes, bytes]:
    """``(left, right)`` children of the node over leaves [lo, hi) (hi - lo >= 2): what a solver reveals."""
    mid = lo + split_point(hi - lo)
    return subtree_root(tree, lo, mid), subtree_root(tree, mid, hi)


# ------------------------------------------- independent RFC 9162 reference


def rfc9162_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH over leaf hashes (no pymerkle): split at the largest power of two below ``n``.

    Perfect subtrees are folded level by level (no recursion, no per-node call); this is the one root
    computation the state root (:func:`protocol.state.chunked_root`) and the trajectory checks share."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = split_point(n)
    if k * 2 == n:
        sha256 = hashlib.sha256
        level = list(leaf_hashes)
        while len(level) > 1:
            pairs = iter(level)
            level = [sha256(NODE_PREFIX + a + b).digest() for a, b in zip(pairs, pairs, strict=False)]
        return level[0]
    return node_hash(rfc9162_root(leaf_hashes[:k]), rfc9162_root(leaf_hashes[k:]))


def rfc9162_path(leaf_hashes: Sequence[bytes], index0: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]): siblings of leaf ``index0``, bottom-up."""
    n = len(leaf_hashes)
    if not 0 <= index0 < n:
        raise IndexError(f"leaf index {index0} out of range for size {n}")
    if n == 1:
        return []
    k = split_point(n)
    if index0 < k:
        return rfc9162_path(leaf_hashes[:k], index0) + [rfc9162_root(leaf_hashes[k:])]
    return rfc9162_path(leaf_hashes[k:], index0 - k) + [rfc9162_root(leaf_hashes[:k])]


def root_from_path(leaf: bytes, index0: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """Root implied by leaf hash ``leaf`` at ``index0`` of ``size`` leaves and its audit ``path``
    (RFC 9162 §2.1.3.2, the same algorithm as ``RFC9162.rootFromPath``); ``None`` if the path length does not
    fit (index, size)."""
    if not 0 <= index0 < size:
        return None
    fn, sn = index0, size - 1
    root = leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            root = node_hash(sibling, root)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            root = node_hash(root, sibling)
        fn >>= 1
        sn >>= 1
    return root if sn == 0 else None


def verify_inclusion(root: bytes, leaf: bytes, index0: int, size: int, path: Sequence[bytes]) -> bool:
    """True iff ``path`` proves leaf hash ``leaf`` is leaf ``index0`` of the ``size``-leaf tree ``root``."""
    computed = root_from_path(leaf, index0, size, path)
    return computed is not None and computed == root


def leaf_depth(index0: int, size: int) -> int:
    """Depth of a leaf (0 for a single-leaf tree): the number of descent rounds a dispute on it takes."""
    lo, hi, depth = 0, size, 0
    while hi - lo > 1:
        mid = lo + split_point(hi - lo)
        lo, hi = (lo, mid) if index0 < mid else (mid, hi)
        depth += 1
    return depth
