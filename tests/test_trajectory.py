"""protocol/trajectory.py: persistent leaf list, proofs, and survival of kill -9 between appends."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from protocol import merkle
from protocol.trajectory import Trajectory, TrajectoryError


def entry(i: int) -> bytes:
    return hashlib.sha256(f"state {i}".encode()).digest()


def test_append_root_and_proofs_match_the_reference(tmp_path):
    with Trajectory.open(tmp_path / "t.sqlite") as t:
        for i in range(13):
            assert t.append(entry(i)) == i
        hashes = [merkle.leaf_hash(entry(i)) for i in range(13)]
        assert t.root() == merkle.rfc9162_root(hashes)
        for i in range(13):
            assert merkle.verify_inclusion(t.root(), hashes[i], i, 13, t.proof(i))
        left, right = t.children(0, 13)
        assert merkle.node_hash(left, right) == t.root()
        assert t.pre_state_root(0, b"\x01" * 32) == b"\x01" * 32 and t.pre_state_root(5, b"") == entry(4)
    with Trajectory.open(tmp_path / "t.sqlite") as again:
        assert again.leaves() == [entry(i) for i in range(13)]


def test_leaf_list_is_checked_against_the_commitment():
    leaves = [entry(i) for i in range(5)]
    root = Trajectory.in_memory(leaves).root()
    assert Trajectory.from_leaf_list(leaves, root, 5).leaves() == leaves
    with pytest.raises(TrajectoryError, match="committed root"):
        Trajectory.from_leaf_list(leaves[:4] + [entry(99)], root, 5)
    with pytest.raises(TrajectoryError, match="commitment says"):
        Trajectory.from_leaf_list(leaves[:4], root, 5)
    with pytest.raises(TrajectoryError, match="32-byte"):
        Trajectory.in_memory().append(b"short")


WRITER = textwrap.dedent(
    """
    import hashlib, sys
    from protocol.trajectory import Trajectory
    t = Trajectory.open(sys.argv[1])
    i = len(t)
    while True:
        t.append(hashlib.sha256(f"state {i}".encode()).digest())
        print(i, flush=True)   # acknowledged: durable from here on
        i += 1
    """
)


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.5])
def test_trajectory_survives_kill_9_between_appends(tmp_path, delay):
    db = tmp_path / "traj.sqlite"
    acked = -1
    for _ in range(2):  # kill it twice: the second run resumes where the first stopped
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline or acked < 0:
            line = proc.stdout.readline()
            if line:
                acked = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for line in proc.stdout:  # lines printed before the kill landed
            acked = int(line)
    with Trajectory.open(db) as t:
        n = len(t)
        assert n >= acked + 1  # nothing acknowledged is lost (at most one unacknowledged extra leaf)
        assert t.leaves() == [entry(i) for i in range(n)]
        assert t.root() == merkle.rfc9162_root([merkle.leaf_hash(entry(i)) for i in range(n)])
