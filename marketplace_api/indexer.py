"""The chain indexer: every protocol event into the database, with the contract's view of what it touched.

:class:`DbIndexHandler` is the :class:`protocol.events.EventHandler` the :class:`~protocol.events.EventFollower`
feeds. For each block with events it stores every log once (``chain_events``, unique per ``(tx_hash,
log_index)``: applying a block again changes nothing) and reads, *at that block's hash*, ``getJob`` for each
job, ``getDispute`` + ``committee`` for each dispute and ``positionOf`` for each account the block's events
name, into the ``*_snapshots`` tables. ``rollback(n)`` deletes every row above block ``n`` and recomputes the
orders' denormalised ``chain_state``. The follower owns the cursor (a JSON file next to the database by
default) and the confirmation depth; reorgs reach the handler as ``rollback`` then ``apply``.

:class:`IndexerThread` runs a follower in a daemon thread inside the API process (or in the foreground for
``veritrain indexer``), restarting the poll loop after errors with a growing pause.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from hexbytes import HexBytes
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from marketplace_api.book import nonce_cancelled
from marketplace_api.models import (
    CHAIN_TABLES,
    ChainEventRow,
    DisputeSnapshot,
    IndexerState,
    JobSnapshot,
    Order,
    StakerSnapshot,
)
from marketplace_api.schemas import ORDER_CANCELLED
from protocol.chain import ChainClient
from protocol.constants import JobState
from protocol.events import ChainEvent, EventFollower

log = logging.getLogger("veritrain.indexer")
_ACCOUNT_ARGS = ("account", "verifier", "arbiter", "signer")


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | HexBytes):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(1 << 53) < value < (1 << 53) else str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _h(b: bytes) -> str:
    return "0x" + bytes(b).hex()


class DbIndexHandler:
    """Stores a follower's events and the contract state they changed (see the module docs)."""

    def __init__(self, sessions: sessionmaker[Session], client: ChainClient, name: str = "main") -> None:
        self.sessions = sessions
        self.client = client
        self.name = name
        self.block_number: int | None = None
        self.events_applied = 0
        self.on_apply: Any = None  # callback(n_events) for metrics

    # ----------------------------------------------------------------- EventHandler

    def apply(self, events: Sequence[ChainEvent], block_number: int, block_hash: bytes) -> None:
        with self.sessions() as s:
            known = set(
                s.execute(
                    select(ChainEventRow.tx_hash, ChainEventRow.log_index).where(
                        ChainEventRow.block_number == block_number
                    )
                ).all()
            )
        new = [e for e in events if (_h(e.tx_hash), e.log_index) not in known]
        if not new:
            self._mark(block_number, block_hash)
            return
        block_time = int(
            self.client.with_retries("eth_getBlockByHash", lambda: self.client.w3.eth.get_block(HexBytes(block_hash)))[
                "timestamp"
            ]
        )
        rows, jobs, disputes, accounts = [], set(), set(), set()
        dispute_jobs: dict[int, str] = {}
        for e in new:
            args = _jsonable(e.args)
            job_id = _h(e.args["jobId"]) if "jobId" in e.args else None
            dispute_id = int(e.args["disputeId"]) if "disputeId" in e.args else None
            account = next((e.args[k] for k in _ACCOUNT_ARGS if k in e.args), None)
            ref = str(e.args["nonce"]) if e.name == "NonceCancelled" else None
            if job_id and e.contract == "JobMarket":
                jobs.add(job_id)
            if dispute_id is not None:
                disputes.add(dispute_id)
                if job_id:
                    dispute_jobs[dispute_id] = job_id
            if e.contract == "StakeManager" and account:
                accounts.add(account)
            rows.append(
                ChainEventRow(
                    block_number=block_number,
                    block_hash=_h(block_hash),
                    block_time=block_time,
                    tx_hash=_h(e.tx_hash),
                    log_index=e.log_index,
                    contract=e.contract,
                    name=e.name,
                    args=args,
                    job_id=job_id,
                    dispute_id=dispute_id,
                    account=account,
                    ref=ref,
                )
            )
        block = HexBytes(block_hash)
        market, game, stakes = self.client.job_market, self.client.dispute_game, self.client.stake_manager
        job_snaps = [
            self._job_snapshot(j, self.client.call(market.functions.getJob(j), block=block), block_number, block_hash)
            for j in sorted(jobs)
        ]
        dispute_snaps = []
        for d in sorted(disputes):
            raw = self.client.call(game.functions.getDispute(d), block=block)
            committee = self.client.call(game.functions.committee(d), block=block)
            dispute_snaps.append(self._dispute_snapshot(d, raw, committee, block_number, block_hash))
            jobs_of = _h(raw.jobId)
            for r in rows:  # moves other than Opened/Resolved carry no jobId: link them to the job
                if r.dispute_id == d and r.job_id is None:
                    r.job_id = jobs_of
        staker_snaps = [
            self._staker_snapshot(
                a, self.client.call(stakes.functions.positionOf(a), block=block), block_number, block_hash
            )
            for a in sorted(accounts)
        ]
        with self.sessions.begin() as s:
            # idempotent under a concurrent or repeated apply of the same block
            s.execute(delete(JobSnapshot).where(JobSnapshot.block_number == block_number, JobSnapshot.job_id.in_(jobs)))
            s.execute(
                delete(DisputeSnapshot).where(
                    DisputeSnapshot.block_number == block_number, DisputeSnapshot.dispute_id.in_(disputes)
                )
            )
            s.execute(
                delete(StakerSnapshot).where(
                    StakerSnapshot.block_number == block_number, StakerSnapshot.account.in_(accounts)
                )
            )
            s.add_all(rows)
            s.add_all(job_snaps)
            s.add_all(dispute_snaps)
            s.add_all(staker_snaps)
            for snap in job_snaps:
                s.execute(update(Order).where(Order.job_id == snap.job_id).values(chain_state=snap.state))
            for r in rows:
                if r.name == "NonceCancelled" and r.contract == "JobMarket":
                    s.execute(
                        update(Order)
                        .where(
                            Order.submitter == r.account, Order.nonce == int(r.ref), Order.chain_state == JobState.NONE
                        )
                        .values(chain_state=ORDER_CANCELLED)
                    )
            self._mark_in(s, block_number, block_hash)
        self.block_number = block_number
        self.events_applied += len(rows)
        if self.on_apply:
            self.on_apply(len(rows))

    def rollback(self, block_number: int) -> None:
        with self.sessions.begin() as s:
            affected = set(s.scalars(select(JobSnapshot.job_id).where(JobSnapshot.block_number > block_number)))
            for table in CHAIN_TABLES:
                s.execute(delete(table).where(table.block_number > block_number))
            for job_id in affected:
                newest = s.scalar(
                    select(JobSnapshot.state)
                    .where(JobSnapshot.job_id == job_id)
                    .order_by(JobSnapshot.block_number.desc())
                    .limit(1)
                )
                s.execute(update(Order).where(Order.job_id == job_id).values(chain_state=newest or 0))
            for order in s.scalars(select(Order).where(Order.chain_state == ORDER_CANCELLED)):
                if not nonce_cancelled(s, order.submitter, order.nonce):  # its cancel was in a dropped block
                    order.chain_state = JobState.NONE
            state = s.get(IndexerState, self.name)
            if state is not None and state.block_number > block_number:
                state.block_number, state.block_hash = block_number, "0x" + "00" * 32
        if self.block_number is not None and self.block_number > block_number:
            self.block_number = block_number

    # ----------------------------------------------------------------- helpers

    def _mark(self, block_number: int, block_hash: bytes) -> None:
        with self.sessions.begin() as s:
            self._mark_in(s, block_number, block_hash)
        self.block_number = block_number

    def _mark_in(self, s: Session, block_number: int, block_hash: bytes) -> None:
        state = s.get(IndexerState, self.name)
        if state is None:
            s.add(IndexerState(name=self.name, block_number=block_number, block_hash=_h(block_hash)))
        else:
            state.block_number, state.block_hash = block_number, _h(block_hash)

    @staticmethod
    def _job_snapshot(job_id: str, j: Any, block_number: int, block_hash: bytes) -> JobSnapshot:
        return JobSnapshot(
            job_id=job_id,
            block_number=block_number,
            block_hash=_h(block_hash),
            state=int(j.state),
            submitter=j.submitter,
            solver=j.solver,
            deadline=int(j.deadline),
            num_leaves=int(j.numLeaves),
            price=int(j.price),
            stake=int(j.stake),
            init_state_root=_h(j.initStateRoot),
            trajectory_root=_h(j.trajectoryRoot),
            final_state_root=_h(j.finalStateRoot),
            committed_at=int(j.committedAt),
            audit_end=int(j.auditEnd),
            seed_block=int(j.seedBlock),
            window_left=int(j.windowLeft),
            seed=_h(j.seed),
        )

    @staticmethod
    def _dispute_snapshot(
        dispute_id: int, d: Any, committee: list[str], block_number: int, block_hash: bytes
    ) -> DisputeSnapshot:
        return DisputeSnapshot(
            dispute_id=dispute_id,
            block_number=block_number,
            block_hash=_h(block_hash),
            job_id=_h(d.jobId),
            phase=int(d.phase),
            outcome=int(d.outcome),
            solver=d.solver,
            challenger=d.challenger,
            node=_h(d.node),
            lo=int(d.lo),
            hi=int(d.hi),
            num_leaves=int(d.numLeaves),
            solver_clock=int(d.solverClock),
            challenger_clock=int(d.challengerClock),
            last_move_at=int(d.lastMoveAt),
            bond=int(d.bond),
            post_state_root=_h(d.postStateRoot),
            pre_state_root=_h(d.preStateRoot),
            data={
                "committee": list(committee),
                "seedBlock": int(d.seedBlock),
                "commitDeadline": int(d.commitDeadline),
                "revealDeadline": int(d.revealDeadline),
                "commits": int(d.commits),
                "reveals": int(d.reveals),
                "votesForSolver": int(d.votesForSolver),
                "votesForChallenger": int(d.votesForChallenger),
                "left": _h(d.left),
                "right": _h(d.right),
            },
        )

    @staticmethod
    def _staker_snapshot(account: str, p: Any, block_number: int, block_hash: bytes) -> StakerSnapshot:
        return StakerSnapshot(
            account=account,
            block_number=block_number,
            block_hash=_h(block_hash),
            free=int(p.free),
            locked=int(p.locked),
            unbonding=int(p.unbonding),
            release_at=int(p.releaseAt),
            claimable=int(p.claimable),
            verifier=bool(p.verifier),
        )


class IndexerThread:
    """An :class:`EventFollower` feeding a :class:`DbIndexHandler`, in a daemon thread (or the foreground)."""

    def __init__(self, follower: EventFollower, handler: DbIndexHandler, interval: float = 1.0) -> None:
        self.follower, self.handler, self.interval = follower, handler, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    @classmethod
    def from_settings(cls, ctx: Any) -> IndexerThread:
        settings = ctx.settings
        client = ChainClient(settings.rpc_url, ctx.deployment, connect=False)
        handler = DbIndexHandler(ctx.sessions, client)
        handler.on_apply = lambda n: ctx.metrics.inc("indexer_events_applied", n)
        follower = EventFollower(
            client, settings.indexer_cursor_path, handler=handler, confirmations=settings.confirmations
        )
        return cls(follower, handler, settings.indexer_interval_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def block_number(self) -> int | None:
        cursor = self.follower.cursor
        return cursor.block if cursor is not None else self.handler.block_number

    def run_forever(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.follower.run(self._stop, self.interval)
                self.last_error = None
            except Exception as exc:
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("indexer poll failed (attempt %d); retrying from the cursor", failures)
                self._stop.wait(min(30.0, self.interval * 2 ** min(failures, 5)))

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="veritrain-indexer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
