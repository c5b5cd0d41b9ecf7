"""The challenger's side of the dispute game (DESIGN §8), stateless apart from the chain.

:meth:`Challenger.open` opens a dispute on a job (or returns the one this challenger already has open on
it, so a restart does not open a second); :meth:`Challenger.step` reads the dispute and, when it is the
challenger's turn, steers the descent toward ``bad_leaf`` — the leaf its replay found wrong: right iff
``bad_leaf >= lo + split_point(hi - lo)``. It also makes the permissionless moves that are due:
``timeout`` when the solver's clock ran out, ``drawCommittee`` once the seed block is mined, ``resolve``
after the reveal deadline. A dispute filed while another ran on the job is ``QUEUED`` until its turn; if an
earlier one slashed or voided the job, ``dropSuperseded`` returns its bond.
"""

from __future__ import annotations

import logging
from typing import Any

from web3.logs import DISCARD

from protocol import merkle
from protocol.chain import ChainClient
from protocol.constants import JobState, Phase
from protocol.game import IDLE, clock_out, send_move, settlement_duty

log = logging.getLogger("veritrain.verifier.challenge")

__all__ = ["IDLE", "Challenger", "Phase"]


class Challenger:
    """Opens and plays disputes as ``client.account``."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self.game = client.dispute_game

    def dispute(self, dispute_id: int) -> Any:
        return self.client.call(self.game.functions.getDispute(dispute_id))

    def bond_for(self, job_id: bytes) -> int:
        """The bond a challenge of ``job_id`` locks (``disputeBondFor`` of its stake and price)."""
        job = self.client.call(self.client.job_market.functions.getJob(job_id))
        return int(self.client.call(self.game.functions.disputeBondFor(int(job.stake), int(job.price))))

    def free_stake(self) -> int:
        return int(self.client.call(self.client.stake_manager.functions.positionOf(self.client.address)).free)

    def open(self, job_id: bytes) -> int:
        """Opens a dispute on ``job_id`` (locking the bond) and returns its id. Idempotent: if this
        challenger's dispute on the job is still running, its id is returned and nothing is sent."""
        latest = int(self.client.call(self.game.functions.latestDisputeOf(job_id)))
        if latest:
            d = self.dispute(latest)
            if d.challenger == self.client.address and Phase(d.phase) != Phase.RESOLVED:
                return latest
        receipt = self.client.transact(self.game.functions.openDispute(job_id))
        (event,) = self.game.events.DisputeOpened().process_receipt(receipt, errors=DISCARD)
        dispute_id = int(event["args"]["disputeId"])
        log.info("opened dispute %d on job 0x%s", dispute_id, job_id.hex())
        return dispute_id

    def request_availability(self, job_id: bytes, leaf: int) -> int:
        """Challenges the solver of ``job_id`` to publish leaf ``leaf`` on chain (the bond locked, as for a
        dispute) and returns the challenge's dispute id."""
        receipt = self.client.transact(self.game.functions.requestAvailability(job_id, leaf))
        (event,) = self.game.events.AvailabilityRequested().process_receipt(receipt, errors=DISCARD)
        dispute_id = int(event["args"]["disputeId"])
        log.info("asked for leaf %d of job 0x%s (dispute %d)", leaf, job_id.hex(), dispute_id)
        return dispute_id

    def step(self, dispute_id: int, bad_leaf: int) -> str:
        """Makes the move the challenger owes now, if any. Returns ``"choose-left"``, ``"choose-right"``,
        ``"timeout"``, ``"draw-committee"``, ``"resolve"``, ``"drop-superseded"`` or one of :data:`IDLE`."""
        d = self.dispute(dispute_id)
        phase = Phase(d.phase)
        if phase == Phase.RESOLVED:
            return "resolved"
        if phase == Phase.NONE:
            raise ValueError(f"dispute {dispute_id} does not exist")
        if phase == Phase.QUEUED:
            # Waits behind earlier disputes on the job; if one of them slashed it, take the bond back.
            job = self.client.call(self.client.job_market.functions.getJob(bytes(d.jobId)))
            if JobState(job.state) in (JobState.SLASHED, JobState.VOIDED):
                return send_move(self.client, "drop-superseded", self.game.functions.dropSuperseded(dispute_id))
            return "wait"
        if phase == Phase.AWAITING_CHOICE and d.challenger == self.client.address:
            lo, hi = int(d.lo), int(d.hi)
            if not lo <= bad_leaf < hi:
                raise ValueError(f"leaf {bad_leaf} is outside the disputed range [{lo}, {hi})")
            right = bad_leaf >= lo + merkle.split_point(hi - lo)
            label = "choose-right" if right else "choose-left"
            return send_move(self.client, label, self.game.functions.choose(dispute_id, right))
        solver_moves = phase in (Phase.AWAITING_REVEAL, Phase.AWAITING_LEAF, Phase.AWAITING_DATA)
        solver_out = solver_moves and clock_out(self.client, d, challenger_moves=False)
        return settlement_duty(self.client, dispute_id, d, mover_clock_out=solver_out) or "wait"
