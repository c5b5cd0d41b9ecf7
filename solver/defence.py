"""The solver's side of the dispute game (DESIGN §8), as a stateless, restart-safe player.

:class:`DisputeDefender` keeps nothing between calls: every :meth:`~DisputeDefender.step` reads the dispute
from the chain (``getDispute``) and makes exactly the move the solver owes now — reveal the children of the
node over ``[lo, hi)`` from its own trajectory, or open the single remaining leaf with its pre-state
(``C_init`` for leaf 0, else leaf ``lo - 1`` and its inclusion proof) — or nothing when it is not the
solver's turn. A process restarted after ``kill -9`` therefore resumes where the chain says the game is
(DESIGN §11). Calling ``step`` twice is harmless: the second call sees the new phase and does nothing; a
move that lost a race (the phase changed between the read and the send) is reported as ``"wait"``.

Besides its own moves it performs the permissionless duties that help it: ``timeout`` when the challenger's
clock ran out, ``drawCommittee`` once the seed block is mined and ``resolve`` after the reveal deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from protocol.chain import ChainClient
from protocol.constants import Phase
from protocol.game import clock_out, send_move, settlement_duty
from protocol.publication import publish_leaf
from protocol.trajectory import Trajectory

log = logging.getLogger("veritrain.solver.defence")


class DisputeDefender:
    """Plays the solver's side of disputes on its jobs.

    ``trajectory_for(job_id)`` returns the solver's own :class:`Trajectory` of that job (the one whose root
    it committed); ``state_bytes_for(state_root)`` the canonical bytes of one of its checkpoints (to answer an
    availability challenge). ``init_root_for(job_id)`` returns the job's ``C_init``; by default it is read from the
    job on chain (``JobMarket.getJob(jobId).initStateRoot``).
    """

    def __init__(
        self,
        client: ChainClient,
        trajectory_for: Callable[[bytes], Trajectory],
        init_root_for: Callable[[bytes], bytes] | None = None,
        state_bytes_for: Callable[[bytes], bytes | None] | None = None,
    ) -> None:
        self.client = client
        self.trajectory_for = trajectory_for
        self.state_bytes_for = state_bytes_for
        self.init_root_for = init_root_for or self._init_root_on_chain
        self.game = client.dispute_game

    def _init_root_on_chain(self, job_id: bytes) -> bytes:
        return bytes(self.client.call(self.client.job_market.functions.getJob(job_id)).initStateRoot)

    def dispute(self, dispute_id: int) -> Any:
        return self.client.call(self.game.functions.getDispute(dispute_id))

    def step(self, dispute_id: int) -> str:
        """Makes the one move the solver owes in ``dispute_id`` now, if any. Returns what it did:
        ``"reveal"``, ``"open-leaf"``, ``"publish"``, ``"timeout"``, ``"draw-committee"``, ``"resolve"``, or one of
        :data:`IDLE` (``"wait"``, ``"resolved"``, ``"not-party"``)."""
        d = self.dispute(dispute_id)
        phase = Phase(d.phase)
        if phase == Phase.RESOLVED:
            return "resolved"
        if phase == Phase.NONE:
            raise ValueError(f"dispute {dispute_id} does not exist")
        if d.solver != self.client.address:
            return "not-party"
        if phase == Phase.AWAITING_REVEAL:
            traj = self._trajectory(d)
            left, right = traj.children(int(d.lo), int(d.hi))
            return send_move(self.client, "reveal", self.game.functions.reveal(dispute_id, left, right))
        if phase == Phase.AWAITING_LEAF:
            return self._open_leaf(dispute_id, d)
        if phase == Phase.AWAITING_DATA:
            return self._publish(dispute_id, d)
        challenger_out = phase == Phase.AWAITING_CHOICE and clock_out(self.client, d, challenger_moves=True)
        return settlement_duty(self.client, dispute_id, d, mover_clock_out=challenger_out) or "wait"

    def _trajectory(self, d: Any) -> Trajectory:
        job_id = bytes(d.jobId)
        traj = self.trajectory_for(job_id)
        if len(traj) != d.numLeaves:
            raise ValueError(
                f"the trajectory of job 0x{job_id.hex()} has {len(traj)} leaves, the dispute {d.numLeaves}: "
                "this is not the trajectory the solver committed"
            )
        return traj

    def _open_leaf(self, dispute_id: int, d: Any) -> str:
        traj = self._trajectory(d)
        index, n = int(d.lo), int(d.numLeaves)
        post = traj.leaf(index)
        pre = traj.pre_state_root(index, self.init_root_for(bytes(d.jobId)))
        proof = traj.proof(index - 1, n) if index > 0 else []
        return send_move(self.client, "open-leaf", self.game.functions.openLeaf(dispute_id, post, pre, proof))

    def _publish(self, dispute_id: int, d: Any) -> str:
        """Answers an availability challenge: publishes leaf ``lo``'s state bytes on the StatePublisher (resuming
        what an earlier run fed), then confirms, which reopens the job and pays the solver the fee."""
        if self.state_bytes_for is None:
            raise ValueError(f"dispute {dispute_id} asks for leaf {int(d.lo)}'s bytes, and this defender has none")
        traj = self._trajectory(d)
        index, n = int(d.lo), int(d.numLeaves)
        data = self.state_bytes_for(traj.leaf(index))
        if data is None:
            return "withhold"  # an adversary's choice: it loses on its clock
        sent = publish_leaf(self.client, bytes(d.jobId), index, data, traj.proof(index, n))
        log.info(
            "published leaf %d of job 0x%s (%d bytes) for dispute %d", index, bytes(d.jobId).hex(), sent, dispute_id
        )
        return send_move(self.client, "publish", self.game.functions.confirmPublished(dispute_id))

    def withdraw_if_owed(self) -> int:
        """Withdraws the solver's claimable credits (payments, slash shares), if any; returns the amount."""
        stakes = self.client.stake_manager
        owed = int(self.client.call(stakes.functions.positionOf(self.client.address)).claimable)
        if owed:
            self.client.transact(stakes.functions.withdraw())
            log.info("withdrew %d", owed)
        return owed
