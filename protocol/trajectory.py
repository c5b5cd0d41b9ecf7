"""A job's trajectory: the ordered leaf list (state roots after each segment) and its RFC 9162 root (DESIGN §3).

Leaf ``i`` (0-based) is the state root after ``(i+1)·interval`` steps; segment ``i`` goes from the state before
leaf ``i`` (``C_init`` for ``i = 0``) to leaf ``i``. The solver keeps its trajectory in a pymerkle ``SqliteTree``
(each append is its own committed SQLite transaction, so a process killed at any moment reopens with every
acknowledged leaf); verifiers rebuild one in memory from a downloaded leaf list and check it against the
committed root.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from protocol import merkle
from protocol.errors import VeritrainError


class TrajectoryError(VeritrainError, ValueError):
    """A leaf list that is malformed or does not match the root it claims."""


class Trajectory:
    """Append-only leaf list with its Merkle tree; persistent when opened on a file."""

    def __init__(self, tree: merkle.MerkleTree, path: Path | None = None) -> None:
        self._tree = tree
        self.path = path
        # pymerkle's InmemoryTree keeps hashes only; in-memory trajectories keep their entries here.
        self._entries: list[bytes] | None = None if hasattr(tree, "get_entry") else []

    # ----------------------------------------------------------- construction

    @classmethod
    def open(cls, path: str | Path) -> Trajectory:
        """Open (or create) the persistent trajectory at ``path`` (a SQLite file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(merkle.SqliteTree(str(path), algorithm="sha256"), path)

    @classmethod
    def in_memory(cls, leaves: Iterable[bytes] = ()) -> Trajectory:
        """A trajectory held in memory (verifiers, auditors)."""
        t = cls(merkle.build_tree(()))
        for leaf in leaves:
            t.append(leaf)
        return t

    @classmethod
    def from_leaf_list(cls, leaves: Iterable[bytes], expected_root: bytes, expected_size: int) -> Trajectory:
        """Rebuild from a downloaded leaf list and check it against the committed root and N; raises
        TrajectoryError if it does not match (a solver serving a different list than it committed)."""
        leaves = [bytes(x) for x in leaves]
        if any(len(x) != 32 for x in leaves):
            raise TrajectoryError("every leaf must be a 32-byte state root")
        if len(leaves) != expected_size:
            raise TrajectoryError(f"leaf list has {len(leaves)} leaves, the commitment says {expected_size}")
        t = cls.in_memory(leaves)
        if t.root() != expected_root:
            raise TrajectoryError(f"leaf list hashes to 0x{t.root().hex()}, committed root is 0x{expected_root.hex()}")
        return t

    def close(self) -> None:
        close = getattr(self._tree, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Trajectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ leaves

    def append(self, state_root: bytes) -> int:
        """Append a leaf; returns its 0-based index. Durable when this returns (persistent trajectories)."""
        if len(state_root) != 32:
            raise TrajectoryError(f"a leaf is a 32-byte state root, got {len(state_root)} bytes")
        index = self._tree.append_entry(bytes(state_root)) - 1
        if self._entries is not None:
            self._entries.append(bytes(state_root))
        return index

    def __len__(self) -> int:
        return self._tree.get_size()

    def leaf(self, index: int) -> bytes:
        """The state root stored as leaf ``index`` (0-based)."""
        if not 0 <= index < len(self):
            raise IndexError(f"leaf {index} out of range (size {len(self)})")
        if self._entries is not None:
            return self._entries[index]
        return self._tree.get_entry(index + 1)

    def leaves(self) -> list[bytes]:
        return [self.leaf(i) for i in range(len(self))]

    # ------------------------------------------------------------- commitments

    def root(self, size: int | None = None) -> bytes:
        """RFC 9162 root over the first ``size`` leaves (all by default)."""
        return merkle.tree_root(self._tree, size)

    def proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Inclusion path of leaf ``index`` as the contracts take it (siblings, bottom-up)."""
        return merkle.inclusion_path(self._tree, index, size)

    def children(self, lo: int, hi: int) -> tuple[bytes, bytes]:
        """The (left, right) children of the node over leaves [lo, hi): what the solver reveals in a dispute."""
        return merkle.children(self._tree, lo, hi)

    def pre_state_root(self, index: int, init_root: bytes) -> bytes:
        """The state a segment starts from: ``init_root`` for segment 0, else leaf ``index - 1``."""
        return init_root if index == 0 else self.leaf(index - 1)
