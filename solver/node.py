"""The solver node (DESIGN §5, §8, §9): bid, train, commit, serve, defend, get paid.

:class:`SolverNode` is driven by :meth:`SolverNode.tick` (``protocol.node.run_loop`` calls it forever; tests
call it directly). One tick, in this order:

1. **Chain events** (``protocol.events.EventFollower``, persisted cursor): ``JobMatched`` for this solver →
   the job is ``matched``; ``DisputeOpened`` against it → a dispute to defend.
2. **Disputes** first (they have a clock): :class:`solver.defence.DisputeDefender` makes every move owed now
   (unless the ``stall`` adversary is on). Resolved disputes are counted by outcome.
3. **Job duties**: a trained job is committed (before its deadline; idempotent against the chain: a commit
   that was mined before a crash is recognised), its leaf list and checkpoints mirrored to the marketplace
   API, finalized after the audit window, and what the solver is owed withdrawn (pull payments). Outcomes
   (finalized, slashed, expired) are read from the chain.
4. **Stake**: free + locked stake is kept at ``--stake`` (approve + deposit from the token balance).
5. **Bids**: the open order book is polled; every order is checked (spec blob fetched from the API and
   validated, model/mode supported, ``totalSteps <= --max-steps``, ``maxPrice >= --price-floor``, deadline
   reachable at the measured throughput, ``C_init`` recomputed) and either skipped (logged once, with the
   reason) or bid on with a signed ``Bid`` and a signed ETA.
6. **Training**: segments of matched jobs run through :class:`solver.training.JobRun` for up to
   ``train_slice_s`` seconds, with the dispute duties of step 2 checked between segments and, inside a long
   segment, between optimizer steps once ``duty_interval_s`` has passed; the longest gap between two dispute
   checks is recorded (``max_duty_gap_s``, also the gauge ``veritrain_solver_max_duty_gap_seconds``): about
   one optimizer step plus the duty interval, far below the chess-clock budget.

All state is in ``<data dir>/solver.sqlite``, the per-job trajectories and the blob store, or on chain: a
node killed at any moment resumes from there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount

from protocol import staking
from protocol.blobstore import HttpBlobClient, LocalBlobStore
from protocol.chain import ChainClient
from protocol.constants import WEI_PER_TOKEN, JobState, Outcome, Phase, api_name
from protocol.deploy import Deployment
from protocol.eip712 import Bid, BidEta, Domain, SolverProfile
from protocol.engine.data import load_dataset
from protocol.engine.runner import Trainer, compute_clock
from protocol.errors import BlobCorrupt, BlobError, BlobNotFound, ContractRevert, VeritrainError
from protocol.events import ChainEvent, EventFollower
from protocol.game import latest_timestamp
from protocol.metrics import Registry
from protocol.node import HttpService, log_event, parse_listen
from protocol.publication import settle_fees
from protocol.repro import KERNEL_SET_VERSION
from protocol.spec import ExactMode, JobSpec, SpecError, WeightsInit, parse_spec
from protocol.state import TrainingState, canonical_json, deserialize, state_root
from protocol.tokens import format_tokens
from protocol.trajectory import Trajectory

from .adversary import Adversary, Honest
from .defence import DisputeDefender
from .profile import MODEL_EXAMPLES, eta_seconds, load_or_measure
from .server import create_server_app
from .state import SolverState
from .training import JobRun

log = logging.getLogger("veritrain.solver")

#: JobMarket.JobState (protocol.constants)
MATCHED, COMMITTED, DISPUTED = JobState.MATCHED, JobState.COMMITTED, JobState.DISPUTED
FINALIZED, SLASHED, EXPIRED, VOIDED = JobState.FINALIZED, JobState.SLASHED, JobState.EXPIRED, JobState.VOIDED


class SolverError(VeritrainError):
    """The solver cannot start (the message says what to do)."""


@dataclass
class SolverConfig:
    rpc: str
    deployment: Deployment
    api: str
    data_dir: Path
    account: LocalAccount
    stake: int = 1_000 * WEI_PER_TOKEN  # wei kept staked (free + locked)
    price_floor: int = 10 * WEI_PER_TOKEN  # wei: the bid price, never above an order's maxPrice
    max_steps: int = 100_000
    listen: str = "127.0.0.1:0"
    public_url: str | None = None
    adversary: Adversary = field(default_factory=Honest)
    models: tuple[str, ...] = tuple(MODEL_EXAMPLES)
    device: str = "cpu"
    bid_ttl_s: int = 900
    poll_interval: float = 0.5
    bid_interval_s: float = 1.0
    train_slice_s: float = 2.0
    defer_s: float = 10.0  # an order skipped for a transient reason is looked at again after this
    duty_interval_s: float = 1.0  # dispute duties are checked at least this often, even inside a segment
    confirmations: int = 0
    commit_margin_s: int = 5  # do not send a commit this close to the deadline (it would revert)
    chain_retries: int = 5


class SolverNode:
    """One solver account's node. Build, :meth:`start` (HTTP, stake, profile), then :meth:`tick` forever."""

    def __init__(self, cfg: SolverConfig) -> None:
        self.cfg = cfg
        self.data_dir = Path(cfg.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.adversary = cfg.adversary
        self.client = ChainClient(cfg.rpc, cfg.deployment, cfg.account, retries=cfg.chain_retries)
        self.address = cfg.account.address
        self.domain = Domain(cfg.deployment.chain_id, cfg.deployment.address_of("JobMarket"))
        self.db = SolverState(self.data_dir / "solver.sqlite")
        self.store = LocalBlobStore(self.data_dir / "blobs")
        self.api = httpx.Client(base_url=cfg.api.rstrip("/"), timeout=15.0)
        self.api_blobs = HttpBlobClient(cfg.api, retries=2)
        self.defender = DisputeDefender(self.client, self._trajectory_for, self._init_root_for, self._challenged_bytes)
        self.follower = EventFollower(
            self.client, self.data_dir / "events-cursor.json", handler=self, confirmations=cfg.confirmations
        )
        self.metrics = Registry()
        self._init_metrics()
        self.runs: dict[str, JobRun] = {}
        self._trajectories: dict[str, Trajectory] = {}
        self._leaf_docs: dict[str, dict] = {}
        self._withheld: set[str] = set()
        self._lock = threading.Lock()
        self.profile: dict | None = None
        self.http: HttpService | None = None
        self.url: str | None = None
        self._last_bid_poll = 0.0
        self._last_stake_check = 0.0
        self._last_duty = time.monotonic()
        self.max_duty_gap_s = 0.0
        self._duty_in_steps_s = 0.0  # dispute duties run from inside a segment (between optimizer steps)
        self._duty_in_steps_cpu = 0.0
        self.warned: set[str] = set()
        self._deferred: dict[str, float] = {}

    # ------------------------------------------------------------------------------------------ metrics

    def _init_metrics(self) -> None:
        m = self.metrics
        self.m_bids = m.counter("veritrain_solver_bids_total", "bids signed and posted")
        self.m_jobs = m.gauge("veritrain_solver_jobs", "jobs by state in this node's records", ["state"])
        self.m_ckpt = m.counter("veritrain_solver_checkpoints_total", "checkpoints stored (leaves appended)")
        self.m_disputes = m.counter("veritrain_solver_disputes_total", "disputes against this solver", ["outcome"])
        self.m_stake = m.gauge("veritrain_solver_stake_wei", "stake position", ["kind"])
        self.m_train = m.counter("veritrain_solver_train_seconds_total", "seconds spent in optimizer steps")
        self.m_train_cpu = m.counter(
            "veritrain_solver_train_cpu_seconds_total", "CPU seconds spent in optimizer steps (the engine's threads)"
        )
        self.m_gap = m.gauge(
            "veritrain_solver_max_duty_gap_seconds", "longest time between two dispute-duty checks since start"
        )
        self.m_ckpt_s = m.counter(
            "veritrain_solver_checkpoint_seconds_total", "seconds spent hashing, writing checkpoints, appending leaves"
        )

    def _refresh_job_gauge(self) -> None:
        counts = self.db.count_by_status()
        for state in ("skipped", "bid", "lost", "matched", "trained", "committed", "done"):
            self.m_jobs.set(counts.get(state, 0), state=state)

    # ------------------------------------------------------------------------------------------- start

    def start(self, *, serve: bool = True, measure: bool = True) -> None:
        """Checks the stake (tops it up), measures/publishes the profile, starts the checkpoint server."""
        if not self.adversary.honest:
            log_event(
                log,
                "adversary-on",
                logging.WARNING,
                adversary=self.adversary.describe(),
                msg="THIS SOLVER CHEATS ON PURPOSE (test/demo only): it will be caught and slashed",
            )
        self.ensure_stake(initial=True)
        for row in self.db.jobs("trained", "committed", "done"):
            self._publish_leaves(row)
        if serve:
            host, port = parse_listen(self.cfg.listen)
            app = create_server_app(
                self.store,
                self._leaf_docs.get,
                self._is_withheld,
                self.metrics,
                self.address,
                serve_mode=self.adversary.serve_mode,
            )
            self.http = HttpService(app, host, port).start()
            self.url = self.cfg.public_url or self.http.url
        if measure:
            self.profile = load_or_measure(self.data_dir, list(self.cfg.models), self.cfg.device)
            log_event(log, "profile", throughput=self.profile["throughput"])
            self.publish_profile()
        self._refresh_job_gauge()

    def stop(self) -> None:
        if self.http is not None:
            self.http.stop()
        for run in self.runs.values():
            run.close()
        for t in self._trajectories.values():
            t.close()
        self.api.close()
        self.api_blobs.close()
        self.db.close()

    # ------------------------------------------------------------------------------------------- tick

    def tick(self) -> float:
        """One round of duties (see the module docs); returns the seconds to wait before the next."""
        self.follower.poll_once()
        self.defend()
        self.job_duties()
        if time.monotonic() - self._last_stake_check > 10:
            self.ensure_stake()
        if time.monotonic() - self._last_bid_poll >= self.cfg.bid_interval_s:
            self._last_bid_poll = time.monotonic()
            self.bid_on_orders()
        trained = self.train(self.cfg.train_slice_s)
        self._refresh_job_gauge()
        return 0.0 if trained else self.cfg.poll_interval

    # ----------------------------------------------------------------------------------- event handler

    def apply(self, events: list[ChainEvent], block_number: int, block_hash: bytes) -> None:
        for e in events:
            if e.name == "JobMatched" and e.args.get("solver") == self.address:
                self._on_matched("0x" + bytes(e.args["jobId"]).hex(), int(e.args["deadline"]))
            elif e.name == "DisputeOpened" and e.args.get("solver") == self.address:
                job_id = "0x" + bytes(e.args["jobId"]).hex()
                if self.db.add_dispute(int(e.args["disputeId"]), job_id, block_number):
                    log_event(
                        log,
                        "dispute-opened",
                        logging.WARNING,
                        dispute_id=int(e.args["disputeId"]),
                        job_id=job_id,
                        challenger=e.args.get("challenger"),
                    )

    def rollback(self, block_number: int) -> None:
        self.db.rollback_disputes(block_number)

    def _on_matched(self, job_id: str, deadline: int) -> None:
        row = self.db.job(job_id)
        if row is None:
            log_event(
                log,
                "matched-unknown",
                logging.WARNING,
                job_id=job_id,
                msg="matched on a bid this data dir has no record of",
            )
            return
        if row.status in ("bid", "lost", "skipped"):
            self.db.update_job(job_id, status="matched", deadline=deadline)
            log_event(log, "matched", job_id=job_id, deadline=deadline, price=row.price)

    # ----------------------------------------------------------------------------------------- stake

    def position(self) -> Any:
        return staking.position(self.client)

    def ensure_stake(self, *, initial: bool = False) -> None:
        """Keeps free + locked stake at ``cfg.stake``. At start, raises SolverError when the tokens held are
        not enough to reach it; later a short wallet deposits what it has (and the shortfall is logged)."""
        self._last_stake_check = time.monotonic()
        try:
            change = staking.top_up(self.client, self.cfg.stake, partial=not initial)
        except staking.InsufficientTokens as exc:
            raise SolverError(str(exc)) from None
        if change.deposited:
            log_event(log, "staked", amount_wei=str(change.deposited))
        pos = self.position()
        short = self.cfg.stake - int(pos.free) - int(pos.locked)
        if short > 0:
            log_event(log, "stake-short", logging.WARNING, missing_wei=str(short))
        self.m_stake.set(int(pos.free), kind="free")
        self.m_stake.set(int(pos.locked), kind="locked")
        self.m_stake.set(int(pos.claimable), kind="claimable")

    # ------------------------------------------------------------------------------------------ profile

    def publish_profile(self) -> None:
        if self.profile is None:
            return
        doc = json.loads(canonical_json(self.profile))
        digest = hashlib.sha256(canonical_json(doc)).digest()
        issued = int(time.time())
        sig = SolverProfile(solver=self.address, profileHash=digest, issuedAt=issued).sign(
            self.domain, self.cfg.account.key
        )
        try:
            r = self.api.post(
                f"/solvers/{self.address}/profile",
                json={
                    "profile": doc,
                    "issued_at": issued,
                    "signature": "0x" + sig.hex(),
                    "chain_id": self.domain.chain_id,
                },
            )
        except httpx.HTTPError as exc:
            log_event(log, "profile-not-published", logging.WARNING, error=str(exc))
            return
        if r.status_code == 201:
            log_event(log, "profile-published", throughput=doc["throughput"])
        else:
            log_event(log, "profile-not-published", logging.WARNING, status=r.status_code, body=r.text[:300])

    # -------------------------------------------------------------------------------------------- bids

    def bid_on_orders(self) -> None:
        try:
            r = self.api.get("/jobs", params={"status": "open", "limit": 100})
            r.raise_for_status()
            items = r.json()["items"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log_event(log, "order-book-unavailable", logging.WARNING, api=self.cfg.api, error=str(exc))
            return
        for item in items:
            job_id = item["job_id"]
            if self.db.known(job_id) or time.monotonic() < self._deferred.get(job_id, 0.0):
                continue
            self._consider(job_id, item)
        self._check_bids()

    def _defer(self, job_id: str, reason: str) -> None:
        """Not now (a transient reason): the order is looked at again after ``defer_s``."""
        self._deferred[job_id] = time.monotonic() + self.cfg.defer_s
        log_event(log, "bid-deferred", logging.WARNING, job_id=job_id, reason=reason, retry_in_s=self.cfg.defer_s)

    def _warn_once(self, key: str, event: str, **fields: Any) -> None:
        if key not in self.warned:
            self.warned.add(key)
            log_event(log, event, logging.ERROR, **fields)

    def _skip(self, job_id: str, item: dict, reason: str) -> None:
        self.db.insert_job(job_id, "skipped", reason=reason, order_json=json.dumps(item.get("order")))
        log_event(log, "order-skipped", job_id=job_id, reason=reason)

    def _consider(self, job_id: str, item: dict) -> None:
        order = item["order"]
        now = max(int(time.time()), latest_timestamp(self.client))
        max_price = int(order["maxPrice"])
        if max_price < self.cfg.price_floor:
            return self._skip(
                job_id,
                item,
                f"maxPrice {format_tokens(max_price)} is below --price-floor {format_tokens(self.cfg.price_floor)}",
            )
        if int(order["totalSteps"]) > self.cfg.max_steps:
            return self._skip(
                job_id, item, f"totalSteps {order['totalSteps']} is above --max-steps {self.cfg.max_steps}"
            )
        kind = item.get("model_kind")
        if self.profile is None or kind not in self.profile["throughput"]:
            return self._skip(
                job_id,
                item,
                f"unsupported model {kind!r} (this solver runs {sorted((self.profile or {}).get('throughput', {}))})",
            )
        spec_hash = order["specHash"]
        try:
            raw = self.api_blobs.get(spec_hash)
        except BlobError as exc:
            if isinstance(exc, BlobNotFound):
                return self._skip(job_id, item, f"spec blob {spec_hash} is missing from the marketplace blob store")
            if isinstance(exc, BlobCorrupt):
                return self._skip(job_id, item, f"spec blob {spec_hash} is corrupt (malformed): {exc}")
            self._defer(job_id, f"spec blob unavailable: {exc}")
            return None  # transient: try again later
        try:
            spec = parse_spec(raw)
        except SpecError as exc:
            return self._skip(job_id, item, f"malformed spec blob {spec_hash}: {exc}")
        problem = self._spec_problem(spec, order)
        if problem:
            return self._skip(job_id, item, problem)
        try:
            dataset = load_dataset(spec.dataset, store=self._dataset_store(spec))
            init_root = state_root(Trainer(spec, dataset, self.cfg.device, weights=self._weights(spec)).init())
        except (VeritrainError, BlobError, ValueError, RuntimeError) as exc:
            return self._skip(job_id, item, f"cannot prepare the job: {exc}")
        if "0x" + init_root.hex() != order["initStateRoot"].lower():
            return self._skip(
                job_id, item, f"initStateRoot {order['initStateRoot']} is not this spec's C_init 0x{init_root.hex()}"
            )
        eta = eta_seconds(self.profile, spec)
        if now + eta >= int(order["deadline"]):
            return self._skip(
                job_id, item, f"deadline in {int(order['deadline']) - now}s is sooner than the ETA {eta}s"
            )
        price = min(self.cfg.price_floor, max_price)
        stake = int(self.client.call(self.client.job_market.functions.requiredStake(price)))
        free = int(self.position().free)
        if free < stake:
            self._defer(job_id, f"free stake {free} < required {stake}")
            return None
        nonce = secrets.randbits(128)
        bid = Bid(
            solver=self.address,
            orderHash=bytes.fromhex(job_id[2:]),
            price=price,
            stake=stake,
            expiry=now + self.cfg.bid_ttl_s,
            nonce=nonce,
            # the ETA already carries its margin (2x the measured training time + the commit): the contract
            # refuses to accept the bid later than deadline - workTime, so a late acceptance cannot slash us
            workTime=eta,
        )
        bid_digest = bid.digest(self.domain)
        eta_sig = BidEta(solver=self.address, bidHash=bid_digest, etaSeconds=eta).sign(
            self.domain, self.cfg.account.key
        )
        body = {
            "bid": bid.as_json(),
            "signature": "0x" + bid.sign(self.domain, self.cfg.account.key).hex(),
            "chain_id": self.domain.chain_id,
            "eta_seconds": eta,
            "eta_signature": "0x" + eta_sig.hex(),
        }
        try:
            r = self.api.post(f"/jobs/{job_id}/bids", json=body)
        except httpx.HTTPError as exc:
            self._defer(job_id, f"bid not posted: {exc}")
            return None
        if r.status_code != 201:
            return self._skip(job_id, item, f"the marketplace refused the bid ({r.status_code}): {r.text[:300]}")
        self.db.insert_job(
            job_id,
            "bid",
            spec=spec.canonical_json().decode(),
            order_json=json.dumps(order),
            bid_hash="0x" + bid_digest.hex(),
            bid_nonce=str(nonce),
            price=str(price),
            stake=str(stake),
            expiry=bid.expiry,
            eta_s=eta,
            deadline=int(order["deadline"]),
        )
        self.m_bids.inc()
        log_event(log, "bid", job_id=job_id, price_wei=str(price), stake_wei=str(stake), eta_s=eta)
        return None

    def _spec_problem(self, spec: JobSpec, order: dict) -> str | None:
        if "0x" + spec.spec_hash().hex() != order["specHash"].lower():
            return "the spec blob is not in canonical form (its hash differs from specHash)"
        if spec.model.kind not in (self.profile or {}).get("throughput", {}):
            return f"unsupported model {spec.model.kind!r}"
        if isinstance(spec.mode, ExactMode) and spec.mode.kernel_set != KERNEL_SET_VERSION:
            return f"unsupported kernel set {spec.mode.kernel_set!r} (this solver runs {KERNEL_SET_VERSION})"
        if spec.total_steps != int(order["totalSteps"]) or spec.checkpoint_interval != int(order["checkpointInterval"]):
            return "the spec's schedule differs from the order's"
        if spec.dataset.digest != order["datasetHash"].lower():
            return "the spec's dataset differs from the order's datasetHash"
        if spec.total_steps > self.cfg.max_steps:
            return f"total_steps {spec.total_steps} is above --max-steps {self.cfg.max_steps}"
        return None

    def _dataset_store(self, spec: JobSpec) -> LocalBlobStore | None:
        """For uploaded datasets: the local store, with the dataset fetched from the marketplace if needed."""
        if spec.dataset.format == "builtin":
            return None
        if not self.store.has(spec.dataset.digest):
            self.api_blobs.fetch_into(self.store, spec.dataset.digest)
        return self.store

    def _weights(self, spec: JobSpec) -> TrainingState | None:
        """The initial weights a fine-tuning spec names (fetched from the marketplace once, verified against
        their state root; kept in the node's store, which also serves them to verifiers); None if seeded."""
        if not isinstance(spec.init, WeightsInit):
            return None
        root = spec.init.state_root
        if not self.store.has(root, "state"):
            self.api_blobs.fetch_into(self.store, root, "state")
        return deserialize(self.store.get(root, "state"), expected_root=bytes.fromhex(root[2:]))

    def _check_bids(self) -> None:
        """Bids that were matched to someone else (or expired unmatched) are closed."""
        market = self.client.job_market
        for row in self.db.jobs("bid"):
            job = self.client.call(market.functions.getJob(row.job_bytes))
            if JobState(job.state) != JobState.NONE:
                if job.solver == self.address:
                    self._on_matched(row.job_id, int(job.deadline))
                else:
                    self.db.update_job(row.job_id, status="lost", reason=f"matched to {job.solver}")
                    log_event(log, "bid-lost", job_id=row.job_id, winner=job.solver)
            elif row.expiry is not None and latest_timestamp(self.client) > row.expiry:
                self.db.update_job(row.job_id, status="lost", reason="bid expired unmatched")

    # ---------------------------------------------------------------------------------------- training

    def _run_for(self, row) -> JobRun:
        run = self.runs.get(row.job_id)
        if run is None:
            spec = parse_spec(row.spec)
            dataset = load_dataset(spec.dataset, store=self._dataset_store(spec))
            run = JobRun(
                row.job_bytes,
                spec,
                dataset,
                self.store,
                self.data_dir / "jobs" / row.job_id,
                adversary=self.adversary,
                device=self.cfg.device,
                weights=self._weights(spec),
            )
            self.runs[row.job_id] = run
            if run.done:
                log_event(log, "training-resumed", job_id=row.job_id, leaves=run.done, of=spec.num_segments)
            else:
                log_event(log, "training-started", job_id=row.job_id, segments=spec.num_segments)
        return run

    def train(self, budget_s: float) -> bool:
        """Runs segments of matched jobs for up to ``budget_s``, with dispute duties between segments.
        Returns True if any segment ran."""
        t0 = time.monotonic()
        ran = False
        for row in self.db.jobs("matched"):
            run = self._run_for(row)
            while not run.complete:
                before = (run.timings.train_s, run.timings.checkpoint_s, self._duty_in_steps_s)
                cpu_before = (run.timings.train_cpu_s, self._duty_in_steps_cpu)
                index = run.step(self._between_steps)
                ran = True
                self.m_train.inc(max(0.0, run.timings.train_s - before[0] - (self._duty_in_steps_s - before[2])))
                self.m_train_cpu.inc(
                    max(0.0, run.timings.train_cpu_s - cpu_before[0] - (self._duty_in_steps_cpu - cpu_before[1]))
                )
                self.m_ckpt_s.inc(run.timings.checkpoint_s - before[1])
                self.m_ckpt.inc()
                n = run.spec.num_segments
                elapsed = run.timings.train_s + run.timings.checkpoint_s
                eta = elapsed / max(1, run.timings.segments) * (n - run.done)
                log_event(
                    log,
                    "segment",
                    job_id=row.job_id,
                    index=index,
                    of=n,
                    step=(index + 1) * run.spec.checkpoint_interval,
                    loss=run.trainer.last_loss,
                    eta_s=round(eta, 1),
                )
                self._duty_check()  # the dispute clock does not wait for training
                if not run.complete and time.monotonic() - t0 >= budget_s:  # a finished run is recorded now
                    return ran
            root = run.root()
            leaves = run.leaves()
            self.db.update_job(row.job_id, status="trained", root="0x" + root.hex(), final_root="0x" + leaves[-1].hex())
            log_event(log, "trained", job_id=row.job_id, root="0x" + root.hex(), leaves=len(leaves))
            self._publish_leaves(self.db.job(row.job_id))
        return ran

    def _between_steps(self, step: int, loss: float) -> None:
        t0, c0 = time.perf_counter(), compute_clock()
        self._duty_check()
        self._duty_in_steps_s += time.perf_counter() - t0  # not training: kept out of the train-seconds metric
        self._duty_in_steps_cpu += compute_clock() - c0

    def _duty_check(self) -> None:
        """Dispute duties during training, at most ``duty_interval_s`` apart: new chain events (a dispute opened
        since the tick began), then every move owed. A failure is logged; training goes on and the next check
        (or tick) retries."""
        if time.monotonic() - self._last_duty < self.cfg.duty_interval_s:
            return
        try:
            self.follower.poll_once()
            self.defend()
        except Exception as exc:
            log_event(log, "duty-failed", logging.WARNING, error=f"{exc.__class__.__name__}: {exc}")
            self._last_duty = time.monotonic()

    # ---------------------------------------------------------------------------------- serving leaves

    def _trajectory_for(self, job_id: bytes) -> Trajectory:
        key = "0x" + job_id.hex()
        run = self.runs.get(key)
        if run is not None:
            return run.trajectory
        t = self._trajectories.get(key)
        if t is None:
            path = self.data_dir / "jobs" / key / "trajectory.sqlite"
            if not path.exists():
                raise SolverError(f"no trajectory for job {key} in {self.data_dir}")
            t = self._trajectories[key] = Trajectory.open(path)
        return t

    def _init_root_for(self, job_id: bytes) -> bytes:
        row = self.db.job("0x" + job_id.hex())
        if row is not None and row.spec:
            spec = parse_spec(row.spec)
            if spec.init_state_root:
                return bytes.fromhex(spec.init_state_root[2:])
        return bytes(self.client.call(self.client.job_market.functions.getJob(job_id)).initStateRoot)

    def _publish_leaves(self, row) -> None:
        """Makes a trained job's leaf list servable (and computes what the adversary withholds)."""
        if row is None or not row.root:
            return
        traj = self._trajectory_for(row.job_bytes)
        leaves = traj.leaves()
        doc = {
            "job_id": row.job_id,
            "root": "0x" + traj.root().hex(),
            "n": len(leaves),
            "leaves": ["0x" + x.hex() for x in leaves],
        }
        withheld = self.adversary.withheld(row.job_bytes, self._init_root_for(row.job_bytes), leaves)
        with self._lock:
            self._leaf_docs[row.job_id] = doc
            self._withheld |= {"0x" + w.hex() for w in withheld}

    def _is_withheld(self, address: str) -> bool:
        return address.lower() in self._withheld

    def _challenged_bytes(self, root: bytes) -> bytes | None:
        """A checkpoint's bytes for an availability challenge, or None where the adversary withholds it."""
        if self._is_withheld("0x" + root.hex()) and not self.adversary.publishes_withheld:
            return None
        if not self.store.has(root, "state"):
            return None  # a made-up leaf (the fake adversary) has no bytes to publish: it loses on its clock
        return self.store.get(root, "state")

    # ------------------------------------------------------------------------------------- job duties

    def job_duties(self) -> None:
        for row in self.db.jobs("matched", "trained", "committed"):
            job = self.client.call(self.client.job_market.functions.getJob(row.job_bytes))
            state = int(job.state)
            if state in (FINALIZED, SLASHED, EXPIRED, VOIDED):
                self._ended(row, state)
                continue
            if row.status == "trained" and state == MATCHED:
                self._commit(row, job)
            elif row.status == "trained" and state in (COMMITTED, DISPUTED):
                if "0x" + bytes(job.trajectoryRoot).hex() == row.root:
                    self.db.update_job(row.job_id, status="committed")  # mined before a crash
                    log_event(log, "commit-found", job_id=row.job_id)
                else:
                    log_event(log, "commit-mismatch", logging.ERROR, job_id=row.job_id)
            elif row.status == "matched" and state == MATCHED and latest_timestamp(self.client) >= int(job.deadline):
                self._warn_once(
                    f"deadline-{row.job_id}", "deadline-missed", job_id=row.job_id, deadline=int(job.deadline)
                )
            row = self.db.job(row.job_id)
            if row.status == "committed":
                if not row.mirrored:
                    self._mirror(row)
                if state == COMMITTED and latest_timestamp(self.client) >= int(job.auditEnd):
                    self._finalize(row)
                elif state == DISPUTED:
                    self._track_dispute(row)
        self._withdraw()

    def _commit(self, row, job) -> None:
        now = latest_timestamp(self.client)
        if now + self.cfg.commit_margin_s >= int(job.deadline):
            self._warn_once(
                f"deadline-{row.job_id}", "deadline-missed", job_id=row.job_id, deadline=int(job.deadline), now=now
            )
            return
        traj = self._trajectory_for(row.job_bytes)
        n = len(traj)
        root, final = traj.root(), traj.leaf(n - 1)
        fn = self.client.job_market.functions.commit(row.job_bytes, root, n, final, traj.proof(n - 1), self.url or "")
        try:
            self.client.transact(fn)
        except ContractRevert as exc:
            current = self.client.call(self.client.job_market.functions.getJob(row.job_bytes))
            if int(current.state) in (COMMITTED, DISPUTED) and bytes(current.trajectoryRoot) == root:
                self.db.update_job(row.job_id, status="committed")
                return
            log_event(log, "commit-reverted", logging.ERROR, job_id=row.job_id, error=str(exc))
            return
        self.db.update_job(row.job_id, status="committed")
        log_event(log, "committed", job_id=row.job_id, root="0x" + root.hex(), leaves=n, uri=self.url)

    def _mirror(self, row) -> None:
        """Pushes the checkpoints (all but the withheld) and the leaf list to the marketplace mirror."""
        traj = self._trajectory_for(row.job_bytes)
        leaves = traj.leaves()
        init = self._init_root_for(row.job_bytes)
        try:
            for address in mirrorable(self.store, init, leaves, self._is_withheld):
                if self.api_blobs.head(address, "state") is None:
                    with self.store.open(address, "state") as blob:
                        self.api_blobs.put_state(blob.read(), expected=address)
            r = self.api.put(f"/jobs/{row.job_id}/leaves", json={"leaves": ["0x" + x.hex() for x in leaves]})
        except (BlobError, httpx.HTTPError) as exc:
            log_event(log, "mirror-failed", logging.WARNING, job_id=row.job_id, error=str(exc))
            return
        if r.status_code in (200, 201):
            self.db.update_job(row.job_id, mirrored=1)
            log_event(log, "mirrored", job_id=row.job_id, leaves=len(leaves))
        else:
            log_event(
                log, "mirror-refused", logging.WARNING, job_id=row.job_id, status=r.status_code, body=r.text[:300]
            )

    def _finalize(self, row) -> None:
        try:
            self.client.transact(self.client.job_market.functions.finalize(row.job_bytes))
        except ContractRevert as exc:
            log_event(log, "finalize-not-sent", job_id=row.job_id, error=exc.name)
            return
        log_event(log, "finalized", job_id=row.job_id)
        self._ended(row, FINALIZED)

    def _ended(self, row, state: int) -> None:
        outcome = {FINALIZED: "finalized", SLASHED: "slashed", EXPIRED: "expired", VOIDED: "voided"}[state]
        if state in (FINALIZED, VOIDED):  # no lie proven: the fees held by answered availability challenges are ours
            try:
                for dispute_id, _, fee in settle_fees(self.client, row.job_bytes):
                    log_event(log, "availability-fee", job_id=row.job_id, dispute_id=dispute_id, fee_wei=str(fee))
            except ContractRevert as exc:
                log_event(log, "availability-fee-not-settled", logging.ERROR, job_id=row.job_id, error=str(exc))
        self.db.update_job(row.job_id, status="done", outcome=outcome)
        level = logging.INFO if state == FINALIZED else logging.ERROR
        log_event(log, "job-ended", level, job_id=row.job_id, outcome=outcome)
        run = self.runs.pop(row.job_id, None)
        if run is not None and self.defender is not None:
            self._trajectories[row.job_id] = run.trajectory  # kept open for a late reader

    def _withdraw(self) -> None:
        try:
            change = staking.withdraw(self.client)
        except ContractRevert as exc:
            log_event(log, "withdraw-not-sent", error=exc.name)
            return
        if change.withdrawn:
            log_event(log, "withdrew", amount_wei=str(change.withdrawn))
        pos = self.position()
        for kind in ("free", "locked", "claimable"):
            self.m_stake.set(int(getattr(pos, kind)), kind=kind)

    # ---------------------------------------------------------------------------------------- disputes

    def _track_dispute(self, row) -> None:
        latest = int(self.client.call(self.client.dispute_game.functions.latestDisputeOf(row.job_bytes)))
        if latest and self.db.add_dispute(latest, row.job_id):
            log_event(log, "dispute-opened", logging.WARNING, dispute_id=latest, job_id=row.job_id)

    def defend(self) -> None:
        """Makes every dispute move owed now. With the ``stall`` adversary: none."""
        now = time.monotonic()
        self.max_duty_gap_s = max(self.max_duty_gap_s, now - self._last_duty)
        self.m_gap.set(round(self.max_duty_gap_s, 3))
        self._last_duty = now
        for dispute_id, job_id in self.db.open_disputes():
            d = self.defender.dispute(dispute_id)
            if Phase(d.phase) == Phase.RESOLVED:
                result = Outcome(int(d.outcome))
                outcome = api_name(result)
                self.db.resolve_dispute(dispute_id, outcome)
                self.m_disputes.inc(outcome=outcome)
                # lost: slashed; no decision: the job reopened, nothing lost
                level = logging.ERROR if result == Outcome.CHALLENGER_WON else logging.INFO
                log_event(log, "dispute-resolved", level, dispute_id=dispute_id, job_id=job_id, outcome=outcome)
                continue
            if not self.adversary.answers_disputes:
                if f"stall-{dispute_id}" not in self.warned:
                    self.warned.add(f"stall-{dispute_id}")
                    log_event(log, "dispute-ignored", logging.WARNING, dispute_id=dispute_id, adversary="stall")
                continue
            for _ in range(4):  # at most a few moves in a row (a reveal, then maybe a settlement duty)
                move = self.defender.step(dispute_id)
                if move == "withhold":
                    if f"withhold-{dispute_id}" not in self.warned:
                        self.warned.add(f"withhold-{dispute_id}")
                        log_event(log, "availability-refused", logging.WARNING, dispute_id=dispute_id, job_id=job_id)
                    break
                if move in ("wait", "resolved", "not-party"):
                    break
                log_event(log, "dispute-move", dispute_id=dispute_id, job_id=job_id, move=move)
        self._last_duty = time.monotonic()

    # ------------------------------------------------------------------------------------ ready info

    def ready_info(self) -> dict:
        return {
            "role": "solver",
            "address": self.address,
            "url": self.url,
            "metrics_url": f"{self.url}/metrics" if self.url else None,
            "adversary": self.adversary.name,
        }


def mirrorable(store: LocalBlobStore, init_root: bytes, leaves: list[bytes], withheld) -> list[str]:
    """The checkpoint addresses of a job that are pushed to the marketplace mirror: ``C_init`` and every leaf
    that has a checkpoint in ``store`` (a made-up leaf has none), minus those ``withheld(address)``."""
    out = []
    for root in [init_root, *leaves]:
        address = "0x" + root.hex()
        if not withheld(address) and store.has(address, "state") and address not in out:
            out.append(address)
    return out
