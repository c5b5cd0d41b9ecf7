"""The verifier node: stake, follow committed jobs, audit by sampled replay, attest or dispute, play
the descent, arbitrate, and perform the permissionless duties — all from one restartable :meth:`tick`.

State lives in two places: the chain (the source of truth for every job, dispute and vote) and ``data_dir``:

* ``verifier.sqlite`` — jobs and disputes seen in events, each job's audit plan (assigned / whistleblower /
  skip) and audit result (per sampled segment), whether this node already attested or disputed;
* ``cursor.json`` — the event follower's cursor (:class:`protocol.events.EventFollower`);
* ``votes.json`` — arbitration (result, salt) pairs, written before a commitment is sent
  (:class:`verifier.arbiter.Arbiter`);
* ``blobs/`` — a verified cache of everything fetched (spec, dataset, checkpoints).

A process killed at any moment (``kill -9``) and restarted re-reads both and carries on: the audit result
is persisted before a dispute is opened, a dispute opened just before the crash is found again in the events
(or ``latestDisputeOf``), the challenger's steering target is the persisted ``bad_leaf``, and an arbiter
reveals with its persisted salt.

**Replay never starves the game.** Replays (audits and arbitration) run on one worker thread
(:class:`ReplayWorker`: arbitration, which has a commit deadline, goes ahead of queued audits and runs between
the segments of a running one); :meth:`tick` only submits them and picks up results, so a dispute or
arbitration move is made within one tick interval plus one transaction's latency even while a replay runs (the
worst gap measured by the tests is reported in ``max_tick_seconds``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from protocol import staking
from protocol.blockheader import randao_of
from protocol.budget import FetchBudget
from protocol.chain import ChainClient
from protocol.constants import FINAL_JOB_STATES, JobState, Outcome, Phase
from protocol.errors import ContractRevert, RpcUnavailable
from protocol.events import ChainEvent, EventFollower
from protocol.game import clock_out, latest_timestamp, settlement_duty
from protocol.metrics import Registry
from protocol.node import log_event
from protocol.publication import PublicationError, read_published_into, settle_fees
from protocol.replay import AuditError, Evidence, JobRef, Sources, Unavailable
from verifier.arbiter import Arbiter, ReplayPending
from verifier.audit import (
    MISMATCH,
    TIMEOUT,
    UNAVAILABLE,
    UNCHECKED,
    AuditResult,
    Replayer,
    accuse_leaf,
    check_sample,
    check_seed,
)
from verifier.challenge import Challenger

log = logging.getLogger("veritrain.verifier.node")

ADVERSARIES = ("accuse",)
# IJobMarket.JobState
ZERO32 = b"\x00" * 32
#: Reverts that only mean another party (or our earlier incarnation) got there first.
RACES = frozenset(
    {
        "WrongJobState",
        "SeedAlreadyDrawn",
        "SeedNotReady",
        "AuditWindowOpen",
        "AuditWindowClosed",
        "AlreadyAttested",
        "NothingToWithdraw",
        "DeadlineNotPassed",
    }
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    spec_hash TEXT NOT NULL,
    solver TEXT NOT NULL,
    submitter TEXT NOT NULL,
    init_root TEXT NOT NULL,
    matched_block INTEGER NOT NULL,
    uri TEXT,
    commit_block INTEGER,
    plan TEXT,                -- assigned | whistle | skip | failed
    audit TEXT,               -- AuditResult JSON
    attested INTEGER NOT NULL DEFAULT 0,
    disputed INTEGER NOT NULL DEFAULT 0,  -- this node opened a dispute on the job (once per job)
    done INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS availability (  -- leaves this node challenged a solver to publish
    job_id TEXT NOT NULL,
    leaf INTEGER NOT NULL,
    dispute_id INTEGER NOT NULL,
    read INTEGER NOT NULL DEFAULT 0,  -- its published bytes were read into the cache and the audit re-run
    PRIMARY KEY (job_id, leaf)
);
CREATE TABLE IF NOT EXISTS disputes (
    dispute_id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    challenger TEXT NOT NULL,
    block INTEGER NOT NULL,
    bad_leaf INTEGER,          -- set when this node is the challenger
    arbiter INTEGER NOT NULL DEFAULT 0,  -- this node was drawn into the committee
    done INTEGER NOT NULL DEFAULT 0
);
"""


def _hx(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _bx(s: str) -> bytes:
    return bytes.fromhex(s[2:])


class ReplayWorker:
    """The one replay thread. Urgent tasks (arbitration: the commit deadline is near) run before queued audits,
    and a running audit lets them run between its segments (:meth:`run_urgent`), so an arbiter waits for at
    most one segment of someone else's audit, never for a queue of whole audits."""

    def __init__(self) -> None:
        self._urgent: deque[tuple[Future, Any, tuple]] = deque()
        self._normal: deque[tuple[Future, Any, tuple]] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="replay", daemon=True)
        self._thread.start()

    def submit(self, fn: Any, *args: Any, urgent: bool = False) -> Future:
        fut: Future = Future()
        with self._cv:
            if self._closed:
                raise RuntimeError("the replay worker is shut down")
            (self._urgent if urgent else self._normal).append((fut, fn, args))
            self._cv.notify()
        return fut

    def _next(self, *, urgent_only: bool) -> tuple[Future, Any, tuple] | None:
        with self._cv:
            if self._urgent:
                return self._urgent.popleft()
            if urgent_only or not self._normal:
                return None
            return self._normal.popleft()

    @staticmethod
    def _execute(item: tuple[Future, Any, tuple]) -> None:
        fut, fn, args = item
        if not fut.set_running_or_notify_cancel():
            return
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:
            fut.set_exception(exc)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not (self._closed or self._urgent or self._normal):
                    self._cv.wait()
                if self._closed:
                    return
            item = self._next(urgent_only=False)
            if item is not None:
                self._execute(item)

    def run_urgent(self) -> None:
        """Runs the urgent tasks queued so far; called by a running task between its pieces (on this thread)."""
        if threading.current_thread() is not self._thread:
            return
        while (item := self._next(urgent_only=True)) is not None:
            self._execute(item)

    def shutdown(self) -> None:
        with self._cv:
            self._closed = True
            pending = [*self._urgent, *self._normal]
            self._urgent.clear()
            self._normal.clear()
            self._cv.notify_all()
        for fut, _, _ in pending:
            fut.cancel()


@dataclass
class NodeStats:
    ticks: int = 0
    max_tick_seconds: float = 0.0  # the longest tick: the worst gap between two chances to move


#: An arbitration replay that could not even fetch its inputs before its deadline (this node was late).
_LATE = object()


class VerifierMetrics:
    """The verifier's Prometheus metrics (names fixed by the node conventions)."""

    def __init__(self, registry: Registry | None = None) -> None:
        r = self.registry = registry or Registry()
        self.audits = r.counter("veritrain_verifier_audits_total", "Audits finished, by result", ["result"])
        self.evidence = r.counter(
            "veritrain_verifier_evidence_total",
            "Sampled segments checked, by what was found (match, mismatch, invalid, unavailable, timeout)",
            ["kind"],
        )
        self.duty_errors = r.counter(
            "veritrain_verifier_duty_errors_total", "Job or dispute duties that failed (retried with backoff)", ["duty"]
        )
        self.attestations = r.counter("veritrain_verifier_attestations_total", "Attestations sent")
        self.disputes = r.counter(
            "veritrain_verifier_disputes_total", "Disputes this node opened, by outcome", ["outcome"]
        )
        self.arbitrations = r.counter("veritrain_verifier_arbitrations_total", "Arbitration votes committed")
        self.replay_cpu_seconds = r.counter(
            "veritrain_verifier_replay_cpu_seconds_total",
            "CPU seconds spent replaying segments (the engine's threads), by duty; one-time warm-up excluded",
            ["duty"],
        )
        self.replay_seconds = r.counter(
            "veritrain_verifier_replay_seconds_total",
            "Engine seconds spent replaying segments, by duty (audit, arbitration); one-time warm-up excluded",
            ["duty"],
        )
        self.warmup_seconds = r.counter(
            "veritrain_verifier_warmup_seconds_total",
            "One-time engine warm-up (kernels loaded or compiled) before the first replay of a kind of job",
        )
        self.stake = r.gauge("veritrain_verifier_stake_wei", "Stake position in token base units", ["kind"])


class VerifierNode:
    """One verifier: ``tick()`` does everything that is due now and returns quickly."""

    def __init__(
        self,
        client: ChainClient,
        data_dir: str | Path,
        api_url: str | None,
        *,
        stake: int = 0,
        whistleblow_rate: float = 0.0,
        adversary: str | None = None,
        metrics: VerifierMetrics | None = None,
        confirmations: int = 0,
        device: str = "cpu",
        blob_timeout: float = 10.0,
    ) -> None:
        if adversary is not None and adversary not in ADVERSARIES:
            raise ValueError(f"unknown verifier adversary {adversary!r}; known: {', '.join(ADVERSARIES)}")
        if not 0.0 <= whistleblow_rate <= 1.0:
            raise ValueError(f"--whistleblow-rate must be within [0, 1], not {whistleblow_rate}")
        self.client = client
        self.me = client.address
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stake_target = int(stake)
        self.whistleblow_rate = whistleblow_rate
        self.adversary = adversary
        self.metrics = metrics or VerifierMetrics()
        self.stats = NodeStats()
        self.db = sqlite3.connect(self.data_dir / "verifier.sqlite", isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.db.row_factory = sqlite3.Row
        self._db_lock = threading.RLock()
        self.sources = Sources(self.data_dir / "blobs", api_url, timeout=blob_timeout)
        self.replayer = Replayer(self.sources, device)
        self.follower = EventFollower(client, self.data_dir / "cursor.json", handler=self, confirmations=confirmations)
        self.challenger = Challenger(client)
        self.market = client.job_market
        self.game = client.dispute_game
        self._market_params = client.call(self.market.functions.params())
        self.worker = ReplayWorker()
        self._tasks: dict[tuple[str, Any], Future] = {}
        #: The audit window end each audit was started against: a job that reopened since (a dispute ended
        #: without slashing it) has new time for the segments the audit could not check before its deadline.
        self._audited_against: dict[str, int] = {}
        self._arbiters: dict[int, Arbiter] = {}
        self._staked = False
        self._last_withdraw = 0.0
        self._warmup_exported = 0.0
        self._missed: set[int] = set()
        self._backoff: dict[tuple[str, str], tuple[float, int]] = {}

    def close(self) -> None:
        self.worker.shutdown()
        self.sources.close()
        self.db.close()

    def audits(self) -> list[dict[str, Any]]:
        """This node's finished audits (persisted): job, plan, verdict per segment and replay seconds."""
        with self._db_lock:
            rows = self.db.execute("SELECT job_id, plan, audit FROM jobs WHERE audit IS NOT NULL").fetchall()
        out = []
        for row in rows:
            doc = json.loads(row["audit"])
            out.append({"job_id": row["job_id"], "plan": row["plan"], "segments": doc.get("segments", {}),
                        "replay_seconds": float(doc.get("replay_seconds", 0.0)),
                        "replay_cpu_seconds": float(doc.get("replay_cpu_seconds", 0.0))})  # fmt: skip
        return out

    # ================================================================== event handler (EventFollower)

    def apply(self, events: Sequence[ChainEvent], block_number: int, block_hash: bytes) -> None:
        with self._db_lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for ev in events:
                    self._apply_one(ev, block_number)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def _apply_one(self, ev: ChainEvent, block: int) -> None:
        a = ev.args
        if ev.name == "JobMatched":
            self.db.execute(
                "INSERT OR IGNORE INTO jobs (job_id, spec_hash, solver, submitter, init_root, matched_block) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (_hx(a["jobId"]), _hx(a["specHash"]), a["solver"], a["submitter"], _hx(a["initStateRoot"]), block),
            )
        elif ev.name == "JobCommitted":
            self.db.execute(
                "UPDATE jobs SET uri = ?, commit_block = ? WHERE job_id = ?", (a["uri"], block, _hx(a["jobId"]))
            )
        elif ev.name in ("JobFinalized", "JobSlashed", "JobExpired", "JobVoided"):
            job_hex = _hx(a["jobId"])
            if ev.name != "JobSlashed" or not self._asked_availability(job_hex):
                # else the job duty reclaims the held fees, then ends it
                self.db.execute("UPDATE jobs SET done = 1 WHERE job_id = ?", (job_hex,))
        elif ev.name == "DisputeOpened":
            job_hex = _hx(a["jobId"])
            mine = a["challenger"] == self.me
            bad = self._bad_leaf_of(job_hex) if mine else None
            self.db.execute(
                "INSERT OR IGNORE INTO disputes (dispute_id, job_id, challenger, block, bad_leaf) VALUES (?,?,?,?,?)",
                (int(a["disputeId"]), job_hex, a["challenger"], block, bad),
            )
            # an availability challenge is no accusation: this node may still dispute the job once it has the data
            if mine and not self.client.call(self.game.functions.getDispute(int(a["disputeId"]))).availability:
                self.db.execute("UPDATE jobs SET disputed = 1 WHERE job_id = ?", (job_hex,))
        elif ev.name == "CommitteeDrawn":
            if self.me in [to_checksum_address(x) for x in a["arbiters"]]:
                self.db.execute("UPDATE disputes SET arbiter = 1 WHERE dispute_id = ?", (int(a["disputeId"]),))

    def rollback(self, block_number: int) -> None:
        with self._db_lock:
            self.db.execute("DELETE FROM disputes WHERE block > ?", (block_number,))
            self.db.execute("DELETE FROM jobs WHERE matched_block > ?", (block_number,))
            self.db.execute(
                "UPDATE jobs SET uri = NULL, commit_block = NULL, plan = NULL, audit = NULL WHERE commit_block > ?",
                (block_number,),
            )

    # ================================================================== helpers

    def _send(self, what: str, fn: Any, **fields: Any) -> bool:
        """Sends a transaction; a revert that means "someone got there first" is logged and returns False."""
        try:
            self.client.transact(fn)
        except ContractRevert as exc:
            if exc.name in RACES:
                log.debug("%s not sent: %s", what, exc.name)
                return False
            raise
        log_event(log, what, **fields)
        return True

    def _job_row(self, job_hex: str) -> sqlite3.Row | None:
        with self._db_lock:
            return self.db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_hex,)).fetchone()

    def _bad_leaf_of(self, job_hex: str) -> int | None:
        row = self._job_row(job_hex)
        if row is None or row["audit"] is None:
            return None
        return AuditResult.from_json(json.loads(row["audit"])).bad_leaf

    def _update_job(self, job_hex: str, **cols: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in cols)
        with self._db_lock:
            self.db.execute(f"UPDATE jobs SET {sets} WHERE job_id = ?", (*cols.values(), job_hex))

    def _job_ref(self, row: sqlite3.Row, job: Any) -> JobRef:
        return JobRef(
            job_id=_bx(row["job_id"]),
            spec_hash=_bx(row["spec_hash"]),
            solver=row["solver"],
            submitter=row["submitter"],
            uri=row["uri"] or "",
            num_leaves=int(job.numLeaves),
            trajectory_root=bytes(job.trajectoryRoot),
            init_state_root=bytes(job.initStateRoot),
        )

    def _task(self, key: tuple[str, Any], fn: Any, *args: Any, urgent: bool = False) -> Future:
        fut = self._tasks.get(key)
        if fut is None:
            fut = self._tasks[key] = self.worker.submit(fn, *args, urgent=urgent)
        return fut

    def whistle(self, job_id: bytes) -> bool:
        """Whether this node audits an unassigned job: a fixed draw per (node, job), so restarts agree."""
        h = hashlib.sha256(b"whistle" + bytes.fromhex(self.me[2:]) + job_id).digest()
        return int.from_bytes(h[:8], "big") < self.whistleblow_rate * 2**64

    # ================================================================== tick

    def tick(self) -> None:
        t0 = time.perf_counter()
        if not self._staked:
            self.ensure_stake()
        self.follower.poll_once()
        now = latest_timestamp(self.client)
        block = self.client.block_number()
        with self._db_lock:
            jobs = self.db.execute("SELECT * FROM jobs WHERE done = 0 AND uri IS NOT NULL").fetchall()
            disputes = self.db.execute("SELECT * FROM disputes WHERE done = 0").fetchall()
        for row in disputes:  # game moves first: they have clocks
            self._isolated("dispute", str(row["dispute_id"]), self._dispute_duty, row)
        for row in jobs:
            self._isolated("job", row["job_id"], self._job_duty, row, now, block)
        if time.monotonic() - self._last_withdraw > 5.0:
            self._last_withdraw = time.monotonic()
            self.withdraw_if_owed()
        warm = self.replayer.warmup_seconds  # written by the worker thread; exported from here
        if warm > self._warmup_exported:
            self.metrics.warmup_seconds.inc(warm - self._warmup_exported)
            self._warmup_exported = warm
        self.stats.ticks += 1
        self.stats.max_tick_seconds = max(self.stats.max_tick_seconds, time.perf_counter() - t0)

    def _isolated(self, duty: str, key: str, fn: Any, *args: Any) -> None:
        """Runs one job's or dispute's duty so that its failure never stops the others: the error is logged
        with its id, and the duty is retried after a growing pause (1 s doubling to 60 s). A dead RPC is not
        one job's problem: it propagates (the node loop retries the whole tick)."""
        item = (duty, key)
        retry_at, failures = self._backoff.get(item, (0.0, 0))
        if time.monotonic() < retry_at:
            return
        try:
            fn(*args)
        except (RpcUnavailable, KeyboardInterrupt):
            raise
        except Exception as exc:
            failures += 1
            pause = min(60.0, 2.0 ** (failures - 1))
            self._backoff[item] = (time.monotonic() + pause, failures)
            self.metrics.duty_errors.inc(duty=duty)
            log_event(log, f"{duty}-duty-failed", logging.ERROR, id=key, error=f"{type(exc).__name__}: {exc}",
                      failures=failures, retry_in_s=pause)  # fmt: skip
        else:
            self._backoff.pop(item, None)

    # ------------------------------------------------------------------ stake

    def ensure_stake(self) -> None:
        """Tops the free+locked stake up to ``stake`` (approve + deposit) and joins the verifier pool."""
        change = staking.top_up(self.client, self.stake_target, verifier=True)
        if change.deposited:
            log_event(log, "staked", amount=change.deposited)
        self._staked = True
        self.update_stake_gauge()

    def update_stake_gauge(self) -> None:
        pos = self.client.call(self.client.stake_manager.functions.positionOf(self.me))
        for kind in ("free", "locked", "unbonding", "claimable"):
            self.metrics.stake.set(int(getattr(pos, kind)), kind=kind)

    def withdraw_if_owed(self) -> int:
        """Withdraws what is claimable or unbonded, if anything; returns the amount (0 if nothing was sent)."""
        try:
            change = staking.withdraw(self.client)
        except ContractRevert as exc:
            if exc.name in RACES:
                log.debug("withdraw not sent: %s", exc.name)
                return 0
            raise
        if change.withdrawn:
            log_event(log, "withdrew", amount=change.withdrawn)
            self.update_stake_gauge()
        return change.withdrawn

    # ------------------------------------------------------------------ jobs

    def _job_duty(self, row: sqlite3.Row, now: int, block: int) -> None:
        job_hex = row["job_id"]
        job_id = _bx(job_hex)
        job = self.client.call(self.market.functions.getJob(job_id))
        state = int(job.state)
        if state in FINAL_JOB_STATES:
            if state == JobState.SLASHED:
                self._reclaim_fees(job_hex, job_id)
            self._update_job(job_hex, done=1)
            return
        if state not in (JobState.COMMITTED, JobState.DISPUTED):
            return
        if bytes(job.seed) == ZERO32:
            if block > int(job.seedBlock):
                header = self.client.seed_header(int(job.seedBlock))
                self._send("draw-audit", self.market.functions.drawAudit(job_id, header), job=job_hex)
            return
        if state == JobState.COMMITTED and now >= int(job.auditEnd):
            self._send("finalize", self.market.functions.finalize(job_id), job=job_hex)
            return
        plan = row["plan"]
        if plan is None:
            assigned = self.me in self.client.call(self.market.functions.assignedVerifiers(job_id))
            plan = "assigned" if assigned else ("whistle" if self.whistle(job_id) else "skip")
            if self.adversary == "accuse" and self.me not in (job.solver, job.submitter):
                plan = "assigned" if assigned else "whistle"  # accuses every job it can
            self._update_job(job_hex, plan=plan)
            log_event(log, "audit-plan", job=job_hex, plan=plan)
        if plan in ("skip", "failed"):
            return
        self._retry_unchecked(row, job)
        result = self._audit_result(row, job, plan)
        if result is None:
            return
        if result.clean:
            if plan == "assigned" and not row["attested"] and now < int(job.auditEnd):
                if not self.client.call(self.market.functions.hasAttested(job_id, self.me)):
                    if self._send("attest", self.market.functions.attest(job_id), job=job_hex):
                        self.metrics.attestations.inc()
                self._update_job(job_hex, attested=1)
            return
        if row["disputed"] or state != JobState.COMMITTED or now >= int(job.auditEnd):
            return  # one dispute per job by this node; someone else's dispute runs; or too late
        if result.bad_leaf is None:
            return  # nothing but segments this node could not check in time: no evidence, no dispute
        if self._ask_availability(job_hex, job_id, result):
            return
        self._open_dispute(job_hex, job_id, result)

    def _asked_availability(self, job_hex: str) -> bool:
        """Whether this node filed an availability challenge on the job (so it may hold a fee to take back)."""
        with self._db_lock:
            return (
                self.db.execute(
                    "SELECT 1 FROM availability WHERE job_id = ? AND dispute_id != 0", (job_hex,)
                ).fetchone()
                is not None
            )

    def _reclaim_fees(self, job_hex: str, job_id: bytes) -> None:
        """The job ended slashed: the fees this node's answered availability challenges held go back to it."""
        if not self._asked_availability(job_hex):
            return
        for dispute_id, to, fee in settle_fees(self.client, job_id):
            log_event(log, "availability-fee", job=job_hex, dispute=dispute_id, to=to, fee=fee)

    def _leaf_asked_by_anyone(self, job_id: bytes, leaf: int) -> bool:
        """Whether an availability challenge of ``leaf`` is running or queued on the job (by any challenger)."""
        ids = [int(self.client.call(self.game.functions.activeDisputeOf(job_id)))]
        ids += [int(i) for i in self.client.call(self.game.functions.queuedDisputes(job_id))]
        for i in ids:
            if i:
                d = self.client.call(self.game.functions.getDispute(i))
                if d.availability and int(d.lo) == leaf and Phase(d.phase) != Phase.RESOLVED:
                    return True
        return False

    def _ask_availability(self, job_hex: str, job_id: bytes, result: AuditResult) -> bool:
        """Withheld data counts against the solver, never against this node: when the segment to accuse could not
        be fetched (its pre-state, leaf ``s - 1``), the solver is first challenged to publish that leaf on chain
        (``requestAvailability``), one leaf at a time. Once published, the bytes go into the local cache and the
        audit runs again, so a dispute is staked on a replay, never on a segment this node could not check (a
        bait-and-switch solver that serves a pre-state only once a dispute opens it gains nothing); unanswered,
        the challenge slashes the solver. Returns True while that path is taken (nothing else to do now)."""
        bad = result.bad_leaf
        if bad is None or bad == 0 or result.segments.get(bad) not in (UNAVAILABLE, TIMEOUT):
            return False
        leaf = bad - 1
        with self._db_lock:
            asked = self.db.execute(
                "SELECT read FROM availability WHERE job_id = ? AND leaf = ?", (job_hex, leaf)
            ).fetchone()
        if asked is not None and asked["read"]:
            return False  # its published bytes were at hand and the segment is still unavailable: dispute it
        size = read_published_into(self.sources.cache, self.client, job_id, leaf)
        if size is not None:
            with self._db_lock:
                self.db.execute(
                    "INSERT INTO availability (job_id, leaf, dispute_id, read) VALUES (?, ?, 0, 1) "
                    "ON CONFLICT(job_id, leaf) DO UPDATE SET read = 1",
                    (job_hex, leaf),
                )
            self._update_job(job_hex, audit=None)  # audit again, the pre-state now at hand
            log_event(log, "availability-read", job=job_hex, leaf=leaf, bytes=size)
            return True
        if asked is not None or self._leaf_asked_by_anyone(job_id, leaf):
            return True  # a challenge of that leaf runs or waits: the solver publishes, or loses on its clock
        bond, free = self.challenger.bond_for(job_id), self.challenger.free_stake()
        if free < bond:
            log_event(log, "availability-unfunded", logging.ERROR, job=job_hex, bond=bond, free=free, leaf=leaf)
            return True
        try:
            dispute_id = self.challenger.request_availability(job_id, leaf)
        except ContractRevert as exc:
            if exc.name in RACES:
                return True
            raise
        with self._db_lock:
            self.db.execute(
                "INSERT INTO disputes (dispute_id, job_id, challenger, block, bad_leaf) VALUES (?,?,?,?,?) "
                "ON CONFLICT(dispute_id) DO UPDATE SET bad_leaf = excluded.bad_leaf",
                (dispute_id, job_hex, self.me, self.client.block_number(), bad),
            )
            self.db.execute(
                "INSERT OR IGNORE INTO availability (job_id, leaf, dispute_id) VALUES (?, ?, ?)",
                (job_hex, leaf, dispute_id),
            )
        log_event(log, "availability-requested", job=job_hex, dispute=dispute_id, leaf=leaf)
        return True

    def _retry_unchecked(self, row: sqlite3.Row, job: Any) -> None:
        """An audit that ran out of time on some segments and found no evidence elsewhere is run again once the
        job's window has moved (it reopened after a dispute, or this node restarted): the window never closes on
        a segment nobody checked while there is time to check it."""
        job_hex = row["job_id"]
        if row["audit"] is None or int(job.state) != JobState.COMMITTED:
            return
        result = AuditResult.from_json(json.loads(row["audit"]))
        if UNCHECKED not in result.segments.values() or result.bad_leaf is not None:
            return
        if self._audited_against.get(job_hex) == int(job.auditEnd):
            return
        if latest_timestamp(self.client) >= int(job.auditEnd):
            return
        self._update_job(job_hex, audit=None)
        unchecked = sorted(i for i, v in result.segments.items() if v == UNCHECKED)
        log_event(log, "re-audit", job=job_hex, unchecked=unchecked, audit_end=int(job.auditEnd))

    def _audit_result(self, row: sqlite3.Row, job: Any, plan: str) -> AuditResult | None:
        """The persisted audit result, or None while the replay runs (it is started here if needed)."""
        job_hex = row["job_id"]
        if row["audit"] is not None:
            return AuditResult.from_json(json.loads(row["audit"]))
        ref = self._job_ref(row, job)
        p = self._market_params
        chain_segments = self.client.call(self.market.functions.sampledSegments(ref.job_id))
        try:
            randao = self._seed_randao(int(job.seedBlock))
            check_seed(seed=bytes(job.seed), randao=randao, job_id=ref.job_id, trajectory_root=ref.trajectory_root)
            segments = check_sample(
                seed=bytes(job.seed),
                num_leaves=ref.num_leaves,
                chain_segments=[int(x) for x in chain_segments],
                rate_bps=int(p.auditRateBps),
                max_samples=int(p.maxSampledSegments),
            )
        except AuditError as exc:
            log_event(log, "audit-failed", logging.ERROR, job=job_hex, error=str(exc))
            self._update_job(job_hex, plan="failed")
            return None
        deadline = self._evidence_deadline(int(job.auditEnd))
        if ("audit", job_hex) not in self._tasks:
            self._audited_against[job_hex] = int(job.auditEnd)
        fut = self._task(("audit", job_hex), self.replayer.audit, ref, segments, self.worker.run_urgent, deadline)
        if not fut.done():
            return None
        del self._tasks[("audit", job_hex)]
        try:
            result = fut.result()
        except AuditError as exc:
            log_event(log, "audit-failed", logging.ERROR, job=job_hex, error=str(exc))
            self._update_job(job_hex, plan="failed")
            return None
        self.metrics.replay_seconds.inc(result.replay_seconds, duty="audit")
        self.metrics.replay_cpu_seconds.inc(result.replay_cpu_seconds, duty="audit")
        if self.adversary == "accuse":
            honest = [i for i, v in result.segments.items() if v == "match"]
            if honest:  # it disputes work its own replay found honest; a job with none it audits like anyone
                leaf = accuse_leaf(ref.job_id, self.me, honest)
                result.segments = {i: "match" for i in segments} | {leaf: MISMATCH}
                result.notes.append(f"adversary accuse: segment {leaf} replayed correctly and is accused anyway")
        verdict = result.evidence
        self.metrics.audits.inc(result=verdict)
        for kind in result.segments.values():
            self.metrics.evidence.inc(kind=kind)
        self._update_job(job_hex, audit=json.dumps(result.to_json()))
        log_event(log, "audited", job=job_hex, plan=plan, result=verdict, segments=result.to_json()["segments"],
                  replay_s=round(result.replay_seconds, 3))  # fmt: skip
        return result

    def _evidence_deadline(self, audit_end: int) -> float:
        """The ``time.monotonic()`` instant an audit's evidence must be in: the audit window's end (chain time)
        less a safety margin (a fifth of the window, 5 s to 10 min) to open a dispute on what did not arrive."""
        window = int(self._market_params.auditWindow)
        margin = min(600.0, max(5.0, window / 5))
        left = audit_end - latest_timestamp(self.client)
        return time.monotonic() + max(0.0, left - margin)

    def _seed_randao(self, number: int) -> bytes:
        """The RANDAO value of seed block ``number``, from its header checked against its hash."""
        return randao_of(self.client.seed_header(number))

    def _open_dispute(self, job_hex: str, job_id: bytes, result: AuditResult) -> None:
        bad = result.bad_leaf
        bond, free = self.challenger.bond_for(job_id), self.challenger.free_stake()
        if free < bond:  # the bond grows with the job (disputeBondFor): say so instead of sending a doomed tx
            log_event(log, "dispute-unfunded", logging.ERROR, job=job_hex, bond=bond, free=free, bad_leaf=bad)
            return
        try:
            dispute_id = self.challenger.open(job_id)
        except ContractRevert as exc:
            if exc.name in RACES:  # another challenger's dispute runs, or the window closed
                return
            raise
        with self._db_lock:
            self.db.execute(
                "INSERT INTO disputes (dispute_id, job_id, challenger, block, bad_leaf) VALUES (?,?,?,?,?) "
                "ON CONFLICT(dispute_id) DO UPDATE SET bad_leaf = excluded.bad_leaf",
                (dispute_id, job_hex, self.me, self.client.block_number(), bad),
            )
            self.db.execute("UPDATE jobs SET disputed = 1 WHERE job_id = ?", (job_hex,))
        log_event(log, "dispute-opened", job=job_hex, dispute=dispute_id, bad_leaf=bad)

    # ------------------------------------------------------------------ disputes

    def _dispute_duty(self, row: sqlite3.Row) -> None:
        dispute_id = int(row["dispute_id"])
        d = self.client.call(self.game.functions.getDispute(dispute_id))
        phase = Phase(d.phase)
        if phase == Phase.RESOLVED:
            self._dispute_resolved(row, d)
            return
        if row["challenger"] == self.me:
            bad = row["bad_leaf"]
            if bad is None:  # opened before the crash, bad leaf not yet recorded: from the job's audit
                bad = self._bad_leaf_of(row["job_id"])
            if bad is None:
                log_event(log, "dispute-no-target", logging.ERROR, dispute=dispute_id)
                return
            move = self.challenger.step(dispute_id, int(bad))
            if move not in ("wait", "resolved", "not-party"):
                log_event(log, "dispute-move", dispute=dispute_id, move=move, lo=int(d.lo), hi=int(d.hi))
            return
        if row["arbiter"] or (phase == Phase.VOTING and self.me in self._committee(dispute_id)):
            move = self._arbiter(dispute_id, row["job_id"]).step(dispute_id)
            if move == "commit":
                self.metrics.arbitrations.inc()
            if move == "missed":  # its commit window closed (e.g. while the node was down): said once
                if dispute_id in self._missed:
                    return
                self._missed.add(dispute_id)
            if move not in ("wait", "resolved", "not-party"):
                log_event(log, "arbiter-move", dispute=dispute_id, move=move)
            return
        # a bystander: keep the game moving (committee draw, resolve, a party's clock out)
        mover_out = False
        if phase == Phase.AWAITING_CHOICE:
            mover_out = clock_out(self.client, d, challenger_moves=True)
        elif phase in (Phase.AWAITING_REVEAL, Phase.AWAITING_LEAF, Phase.AWAITING_DATA):
            mover_out = clock_out(self.client, d, challenger_moves=False)
        move = settlement_duty(self.client, dispute_id, d, mover_clock_out=mover_out)
        if move and move != "wait":
            log_event(log, "dispute-duty", dispute=dispute_id, move=move)

    def _committee(self, dispute_id: int) -> list[str]:
        return list(self.client.call(self.game.functions.committee(dispute_id)))

    def _dispute_resolved(self, row: sqlite3.Row, d: Any) -> None:
        dispute_id = int(row["dispute_id"])
        if row["challenger"] == self.me:
            outcome = {
                Outcome.SOLVER_WON: "lost",
                Outcome.CHALLENGER_WON: "won",
                Outcome.NO_DECISION: "no-decision",
                Outcome.SUPERSEDED: "superseded",
                Outcome.NO_COMMITTEE: "no-committee",
                Outcome.PUBLISHED: "published",
            }.get(Outcome(int(d.outcome)), "unknown")
            self.metrics.disputes.inc(outcome=outcome)
            log_event(log, "dispute-resolved", dispute=dispute_id, outcome=outcome)
        with self._db_lock:
            self.db.execute("UPDATE disputes SET done = 1 WHERE dispute_id = ?", (dispute_id,))
        self._arbiters.pop(dispute_id, None)
        self.update_stake_gauge()

    def _arbiter(self, dispute_id: int, job_hex: str) -> Arbiter:
        if dispute_id not in self._arbiters:

            def replay(pre_root: bytes, index: int) -> bytes | None:
                return self._arbitration_replay(dispute_id, job_hex, pre_root, index)

            self._arbiters[dispute_id] = Arbiter(self.client, replay, self.data_dir / "votes.json")
        return self._arbiters[dispute_id]

    def _arbitration_replay(self, dispute_id: int, job_hex: str, pre_root: bytes, index: int) -> bytes | None:
        """Non-blocking: starts the replay on the worker, raises ReplayPending until it is done."""
        key = ("arbitrate", dispute_id)
        if key not in self._tasks:
            row = self._job_row(job_hex)
            if row is None:
                log_event(log, "arbitration-unknown-job", logging.ERROR, dispute=dispute_id, job=job_hex)
                return None
            job = self.client.call(self.market.functions.getJob(_bx(job_hex)))
            ref = self._job_ref(row, job)
            d = self.client.call(self.game.functions.getDispute(dispute_id))
            if int(d.lo) > 0 and not self.sources.cache.has(pre_root, "state"):
                # a pre-state the solver serves nobody may be on chain (an availability challenge made it publish)
                try:
                    size = read_published_into(self.sources.cache, self.client, ref.job_id, int(d.lo) - 1)
                except PublicationError as exc:
                    log_event(log, "arbitration-publication-unreadable", logging.WARNING, dispute=dispute_id,
                              error=str(exc))  # fmt: skip
                else:
                    if size is not None:
                        log_event(log, "arbitration-pre-state-from-chain", dispute=dispute_id, bytes=size)
            # the vote must be committed before commitDeadline: downloads stop just before it (2 s, or a tenth of
            # the time left if less, for the commit transaction), so a slow or huge blob costs an UNAVAILABLE vote,
            # never the arbiter stake
            left = int(d.commitDeadline) - latest_timestamp(self.client)
            budget = FetchBudget(max_bytes=1 << 62, deadline=time.monotonic() + max(0.0, left - min(2.0, left / 10)))

            def run() -> bytes | None | object:
                try:
                    root, took = self.replayer.replay_timed(ref, pre_root, index, budget)
                except Unavailable as exc:
                    if exc.evidence is Evidence.UNCHECKED:  # this node was late, not the solver: no vote on it
                        log_event(log, "arbitration-late", logging.WARNING, dispute=dispute_id, error=str(exc))
                        return _LATE
                    log_event(log, "arbitration-unavailable", dispute=dispute_id, error=str(exc))
                    return None
                except AuditError as exc:
                    log_event(log, "arbitration-unavailable", dispute=dispute_id, error=str(exc))
                    return None
                self.metrics.replay_seconds.inc(took, duty="arbitration")
                self.metrics.replay_cpu_seconds.inc(self.replayer.last_cpu, duty="arbitration")
                return root

            self._task(key, run, urgent=True)  # a commit deadline: ahead of queued audits
        fut = self._tasks[key]
        if not fut.done():
            raise ReplayPending
        del self._tasks[key]
        result = fut.result()
        if result is _LATE:  # try again next tick while the commit window lasts; never vote on what was not seen
            raise ReplayPending
        return result
