"""Arbitration duty (DESIGN §8.5): replay the opened segment, commit, reveal — across restarts.

:class:`Arbiter` commits ``sha256(result ‖ salt ‖ arbiter)`` for disputes whose committee it was drawn into,
then reveals once the reveal phase is open. ``result`` is what ``replay(pre_state_root, index)`` returns —
the state root after the segment — or ``UNAVAILABLE`` (``DisputeGame.UNAVAILABLE()``) when replay returns
``None`` (the pre-state blob could not be fetched or did not hash to its root). A ``replay`` that runs on a
worker raises :class:`ReplayPending` until its result is ready.

The salt is the one thing the chain cannot give back: it is written (atomically, fsynced) to a small JSON
file *before* the commitment is sent, so a process killed anywhere between commit and reveal can still
reveal. A restarted arbiter that finds a stored vote for a dispute it has not committed yet reuses it
rather than drawing a new salt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from pathlib import Path

from protocol.atomic import atomic_write_bytes
from protocol.chain import ChainClient
from protocol.constants import Phase, VoteStatus
from protocol.game import IDLE, latest_timestamp, send_move

log = logging.getLogger("veritrain.verifier.arbiter")

__all__ = ["IDLE", "Arbiter", "ReplayPending", "vote_commitment"]


class ReplayPending(Exception):
    """Raised by a non-blocking ``replay`` whose result is still being computed (on a worker thread): the
    arbiter's step returns ``"wait"`` and asks again next time, so replay never holds up other moves."""


def vote_commitment(result: bytes, salt: bytes, arbiter: str) -> bytes:
    """sha256(result ‖ salt ‖ arbiter), as ``DisputeGame.voteCommitment``."""
    return hashlib.sha256(result + salt + bytes.fromhex(arbiter.removeprefix("0x"))).digest()


class Arbiter:
    """Votes as ``client.account`` in the committees it is drawn into; votes are kept in ``state_path``."""

    def __init__(
        self,
        client: ChainClient,
        replay: Callable[[bytes, int], bytes | None],
        state_path: str | Path,
    ) -> None:
        self.client = client
        self.replay = replay
        self.state_path = Path(state_path)
        self.game = client.dispute_game
        self._unavailable: bytes | None = None

    @property
    def unavailable(self) -> bytes:
        if self._unavailable is None:
            self._unavailable = bytes(self.client.call(self.game.functions.UNAVAILABLE()))
        return self._unavailable

    # ------------------------------------------------------------------ vote file

    def _key(self, dispute_id: int) -> str:
        return f"{self.client.deployment.chain_id}:{self.game.address}:{dispute_id}"

    def _load(self) -> dict[str, dict[str, str]]:
        if not self.state_path.exists():
            return {}
        return json.loads(self.state_path.read_text())

    def stored_vote(self, dispute_id: int) -> tuple[bytes, bytes] | None:
        """The (result, salt) stored for ``dispute_id``, if any."""
        entry = self._load().get(self._key(dispute_id))
        if entry is None:
            return None
        return bytes.fromhex(entry["result"]), bytes.fromhex(entry["salt"])

    def _store(self, dispute_id: int, result: bytes, salt: bytes) -> None:
        votes = self._load()
        votes[self._key(dispute_id)] = {"result": result.hex(), "salt": salt.hex()}
        atomic_write_bytes(self.state_path, (json.dumps(votes, indent=1, sort_keys=True) + "\n").encode())

    # ------------------------------------------------------------------ duty

    def step(self, dispute_id: int) -> str:
        """Does what this arbiter owes in ``dispute_id`` now. Returns ``"commit"``, ``"reveal-vote"``,
        ``"resolve"``, or one of :data:`IDLE` (``"missed"``: a deadline passed, nothing can be done)."""
        d = self.client.call(self.game.functions.getDispute(dispute_id))
        phase = Phase(d.phase)
        if phase == Phase.RESOLVED:
            return "resolved"
        if phase != Phase.VOTING:
            return "wait"
        me = self.client.address
        if me not in self.client.call(self.game.functions.committee(dispute_id)):
            return "not-party"
        vote = self.client.call(self.game.functions.voteOf(dispute_id, me))
        now = latest_timestamp(self.client)
        if now >= d.revealDeadline:
            return send_move(self.client, "resolve", self.game.functions.resolve(dispute_id))
        if VoteStatus(vote.status) == VoteStatus.NONE:
            if now >= d.commitDeadline:
                return "missed"
            stored = self.stored_vote(dispute_id)
            if stored is None:
                try:
                    replayed = self.replay(bytes(d.preStateRoot), int(d.lo))
                except ReplayPending:
                    return "wait"
                result = self.unavailable if replayed is None else bytes(replayed)
                stored = (result, secrets.token_bytes(32))
                self._store(dispute_id, *stored)  # before sending: a restart must be able to reveal
            commitment = vote_commitment(stored[0], stored[1], me)
            return send_move(self.client, "commit", self.game.functions.commitVote(dispute_id, commitment))
        if VoteStatus(vote.status) == VoteStatus.COMMITTED:
            if now < d.commitDeadline and d.commits < len(self.client.call(self.game.functions.committee(dispute_id))):
                return "wait"  # the reveal phase opens at the commit deadline or once everyone committed
            stored = self.stored_vote(dispute_id)
            if stored is None or vote_commitment(*stored, me) != bytes(vote.commitment):
                log.error("dispute %d: the vote committed on chain is not in %s; cannot reveal", dispute_id,
                          self.state_path)  # fmt: skip
                return "missed"
            return send_move(self.client, "reveal-vote", self.game.functions.revealVote(dispute_id, *stored))
        return "wait"  # revealed; the last reveal or `resolve` settles
