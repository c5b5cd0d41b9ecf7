"""Replay of one segment from its sources: the one implementation verifiers, arbiters and auditors share.

A replay needs the job's spec (addressed by its SHA-256, the order's ``specHash``), its dataset (by digest) and
the segment's pre-state (by its state root); the result is the state root after ``checkpoint_interval``
optimizer steps, to compare with the committed leaf. :class:`Sources` reads each of them from a local cache,
then the solver's checkpoint server (the ``uri`` of its commit), then the marketplace API mirror, and verifies
every copy against its address (:class:`protocol.blobstore.MirroredBlobReader`); the leaf list is accepted
only if it has ``N`` leaves and hashes (RFC 9162) to the committed trajectory root. :class:`SegmentReplayer`
computes ``C_init`` locally (no fetch) and runs the engine.

What could not be had or did not verify raises :class:`Unavailable` — evidence against the solver (arbiters
vote ``UNAVAILABLE`` on what nobody can fetch, DESIGN §8.5); :class:`AuditError` means the replay cannot be
run at all and says nothing about the solver (e.g. the spec named by the order is not a canonical spec).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx

from protocol import merkle
from protocol.blobstore import HttpBlobClient, LocalBlobStore, MirroredBlobReader
from protocol.budget import FetchBudget
from protocol.errors import BlobError, BlobTimeout, BlobTooLarge, BlobUnavailable, BudgetExhausted, VeritrainError
from protocol.spec import JobSpec, SpecError, WeightsInit, parse_spec
from protocol.state import StateFormatError, StateRootMismatch, TrainingState, deserialize, read_layout, state_root


class AuditError(VeritrainError, RuntimeError):
    """The audit cannot be run at all (not a verdict about the solver): e.g. the chain's sample disagrees
    with the Python sampler, or the spec/dataset named by the order cannot be found anywhere."""


class Evidence(StrEnum):
    """What checking one segment found. Every kind but ``MATCH`` is evidence against the solver's commitment."""

    MATCH = "match"  # the replay gives the committed leaf
    MISMATCH = "mismatch"  # the replay gives another state root
    INVALID = "invalid"  # a blob that hashes to the committed root but is not a state this job can have
    UNAVAILABLE = "unavailable"  # refused, missing, or bytes that do not hash to their address, from every source
    TIMEOUT = "timeout"  # every source stalled, trickled or overran its byte cap within the deadline
    #: Not evidence: the check could not be made in time because *this* node was late (its deadline passed
    #: before a source was tried: a long queue, a slow machine). Neither attested nor disputed.
    UNCHECKED = "unchecked"


class Unavailable(VeritrainError, RuntimeError):
    """Something the solver owes (leaf list, a checkpoint) could not be fetched or did not verify. ``evidence``
    says which way: :attr:`Evidence.UNAVAILABLE`, :attr:`Evidence.TIMEOUT` or :attr:`Evidence.INVALID`."""

    def __init__(self, message: str, evidence: Evidence = Evidence.UNAVAILABLE) -> None:
        super().__init__(message)
        self.evidence = evidence


def _fetch_evidence(exc: BaseException) -> Evidence:
    """Unchecked if no source was even tried in time (this node was late); timeout if every source tried ran
    out of its budget (stalled, trickled, overran); else unavailable."""
    attempts = getattr(exc, "attempts", None) or [(None, exc)]
    remote = [e for src, e in attempts if not isinstance(src, LocalBlobStore)]
    tried = [e for e in remote if not isinstance(e, BudgetExhausted)]
    if remote and not tried:
        return Evidence.UNCHECKED
    if all(isinstance(e, BlobTimeout | BlobTooLarge) for e in tried):
        return Evidence.TIMEOUT
    return Evidence.UNAVAILABLE


#: Byte cap of a spec document (they are a few KB).
MAX_SPEC_BYTES = 1 << 20


@dataclass(frozen=True)
class JobRef:
    """What an audit needs to know about a committed job (from the chain and its events)."""

    job_id: bytes
    spec_hash: bytes
    solver: str
    submitter: str
    uri: str
    num_leaves: int
    trajectory_root: bytes
    init_state_root: bytes

    @property
    def hex_id(self) -> str:
        return "0x" + self.job_id.hex()


def leaves_match_root(leaves: Sequence[bytes], num_leaves: int, root: bytes) -> bool:
    return len(leaves) == num_leaves and merkle.rfc9162_root([merkle.leaf_hash(x) for x in leaves]) == root


def max_leaf_list_bytes(num_leaves: int) -> int:
    """The most a leaf-list document of ``num_leaves`` leaves can take (``"0x…",`` per leaf plus its envelope)."""
    return 70 * num_leaves + 4096


def _parse_leaves(doc: Any) -> list[bytes]:
    if not isinstance(doc, dict) or not isinstance(doc.get("leaves"), list):
        raise ValueError("not a leaf-list document")
    out = []
    for x in doc["leaves"]:
        if not isinstance(x, str) or len(x) != 66 or not x.startswith("0x"):
            raise ValueError(f"bad leaf {str(x)[:80]!r}")
        out.append(bytes.fromhex(x[2:]))
    return out


class Sources:
    """Where a verifier reads a job's data: its local cache, then the solver (the commit ``uri``), then the
    marketplace API (mirror). Thread-safe (one httpx client; the blob store is content-addressed)."""

    def __init__(self, cache_dir: str | Path, api_url: str | None, *, timeout: float = 10.0, retries: int = 1):
        self.cache = LocalBlobStore(cache_dir)
        self.api_url = api_url.rstrip("/") if api_url else None
        self.timeout = timeout
        self.retries = retries
        self.http = httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=True)
        self._clients: dict[str, HttpBlobClient] = {}
        self._lock = threading.Lock()
        self._leaves: dict[bytes, list[bytes]] = {}
        self._specs: dict[bytes, JobSpec] = {}
        self._datasets: dict[str, Any] = {}
        #: Checkpoints found to hash to their root yet not be a state of their job: the verdict is final (the
        #: bytes are fixed by the root), so they are never downloaded again (an arbiter after the auditor).
        self._invalid: dict[bytes, str] = {}
        self._slow: dict[str, float] = {}
        self._weights: dict[str, TrainingState] = {}

    def close(self) -> None:
        self.http.close()
        for c in self._clients.values():
            c.close()

    def _client(self, base: str) -> HttpBlobClient:
        with self._lock:
            if base not in self._clients:
                self._clients[base] = HttpBlobClient(base, timeout=self.timeout, retries=self.retries)
            return self._clients[base]

    #: How long a source that stalled, trickled or overran stays at the back of the queue (seconds).
    DEMOTE_S = 600.0

    def _demote(self, base: str, exc: BaseException) -> None:
        if isinstance(exc, BlobTimeout | BlobTooLarge):
            with self._lock:
                self._slow[base.rstrip("/")] = time.monotonic() + self.DEMOTE_S

    def _order(self, bases: list[str]) -> list[str]:
        """``bases`` with the ones that recently stalled or overran moved last: one hostile server costs its
        budget once per job, not once per blob."""
        now = time.monotonic()
        with self._lock:
            slow = {b for b, until in self._slow.items() if until > now}
        return sorted(bases, key=lambda b: b.rstrip("/") in slow)

    def reader(self, job: JobRef | None) -> MirroredBlobReader:
        bases = []
        if job is not None and job.uri.startswith(("http://", "https://")):
            bases.append(job.uri)
        if self.api_url:
            bases.append(self.api_url)
        sources: list[Any] = [self.cache, *(self._client(b) for b in self._order(bases))]
        return MirroredBlobReader(
            sources, cache=self.cache, on_failure=lambda src, exc: self._demote(getattr(src, "base_url", ""), exc)
        )

    # ------------------------------------------------------------------ leaf list

    def leaf_urls(self, job: JobRef) -> list[str]:
        bases = []
        if job.uri.startswith(("http://", "https://")):
            bases.append(job.uri)
        if self.api_url:
            bases.append(self.api_url)
        return [
            f"{b.rstrip('/')}/leaves/{job.hex_id}" if b == job.uri else f"{b}/jobs/{job.hex_id}/leaves"
            for b in self._order(bases)
        ]

    def _get_json(self, url: str, budget: FetchBudget, what: str) -> Any:
        """A JSON document from ``url`` within ``budget`` (streamed: the byte cap and the deadline hold)."""
        started = time.monotonic()
        body = bytearray()
        try:
            with self.http.stream("GET", url, timeout=httpx.Timeout(budget.timeout(self.timeout))) as r:
                if r.status_code != 200:
                    raise BlobUnavailable(f"HTTP {r.status_code}")
                for chunk in r.iter_bytes():
                    body += chunk
                    budget.check(len(body), started, what)
        except httpx.TimeoutException as exc:
            if budget.late(started):
                raise BudgetExhausted(f"{what}: given less than a fair {budget.fair_s():.1f} s ({exc})") from exc
            raise
        try:
            return json.loads(body)
        except RecursionError:
            raise ValueError("the document nests JSON too deeply") from None

    def leaves(self, job: JobRef, budget: FetchBudget | None = None) -> list[bytes]:
        """The job's leaf list, verified against the committed root; raises :class:`Unavailable` (evidence
        ``timeout`` when every source stalled or overran the list's size). ``budget``'s deadline is shared by
        the sources in turn; its byte cap is what ``N`` leaves can take."""
        if job.job_id in self._leaves:
            return self._leaves[job.job_id]
        urls = self.leaf_urls(job)
        budget = (budget or FetchBudget(max_bytes=0)).capped(max_leaf_list_bytes(job.num_leaves))
        if budget.max_bytes == 0:
            budget = FetchBudget(max_bytes=max_leaf_list_bytes(job.num_leaves))
        tried: list[str] = []
        timeouts = 0
        skipped = 0
        for i, url in enumerate(urls):
            part = budget.share(len(urls) - i)
            if part.expired():
                skipped += 1
                tried.append(f"{url}: not tried, no time left before the deadline")
                continue
            try:
                leaves = _parse_leaves(self._get_json(url, part, f"leaf list of {job.hex_id} from {url}"))
            except BudgetExhausted as exc:  # this node was late: no evidence against the source
                skipped += 1
                tried.append(f"{url}: {exc}")
                continue
            except (BlobTimeout, BlobTooLarge, httpx.TimeoutException) as exc:
                timeouts += 1
                tried.append(f"{url}: {type(exc).__name__}: {exc}")
                base = job.uri if url.startswith(job.uri.rstrip("/") + "/leaves/") else (self.api_url or "")
                self._demote(base, BlobTimeout(str(exc)))
                continue
            except (httpx.HTTPError, BlobError, ValueError) as exc:
                tried.append(f"{url}: {type(exc).__name__}: {exc}")
                continue
            if not leaves_match_root(leaves, job.num_leaves, job.trajectory_root):
                tried.append(f"{url}: {len(leaves)} leaves that do not hash to the committed root")
                continue
            self._leaves[job.job_id] = leaves
            return leaves
        if urls and skipped == len(urls):
            evidence = Evidence.UNCHECKED
        elif urls and timeouts and timeouts + skipped == len(urls):
            evidence = Evidence.TIMEOUT
        else:
            evidence = Evidence.UNAVAILABLE
        raise Unavailable(f"no verified leaf list for job {job.hex_id} ({'; '.join(tried) or 'no source'})", evidence)

    # ------------------------------------------------------------------ spec, data, states

    def spec(self, job: JobRef, budget: FetchBudget | None = None) -> JobSpec:
        if job.spec_hash in self._specs:
            return self._specs[job.spec_hash]
        cap = MAX_SPEC_BYTES if budget is None else budget.capped(MAX_SPEC_BYTES)
        try:
            raw = self.reader(job).get(job.spec_hash, "sha256", budget=_as_budget(cap))
            spec = parse_spec(raw)
        except (BlobError, SpecError) as exc:
            raise AuditError(f"spec 0x{job.spec_hash.hex()} of job {job.hex_id}: {exc}") from exc
        if spec.spec_hash() != job.spec_hash:  # parse_spec may normalise; the order signs the canonical bytes
            raise AuditError(f"spec blob 0x{job.spec_hash.hex()} is not a canonical spec")
        self._specs[job.spec_hash] = spec
        return spec

    def dataset(self, job: JobRef, spec: JobSpec, budget: FetchBudget | None = None):
        from protocol.engine import DatasetError, load_dataset

        key = spec.dataset.digest
        if key not in self._datasets:
            try:
                store = _BudgetedReader(self.reader(job), budget)
                self._datasets[key] = load_dataset(spec.dataset, store=store)
            except (DatasetError, BlobError) as exc:
                raise AuditError(f"dataset {key} of job {job.hex_id}: {exc}") from exc
        return self._datasets[key]

    def weights(self, job: JobRef, spec: JobSpec, budget: FetchBudget | None = None) -> TrainingState | None:
        """The initial weights a fine-tuning spec names (verified against their state root), None for a seeded
        spec; like the dataset they are the submitter's input, so a failure is an :class:`AuditError`."""
        if not isinstance(spec.init, WeightsInit):
            return None
        root = spec.init.state_root
        if root not in self._weights:
            try:
                data = self.reader(job).get(root, "state", budget=budget)
                self._weights[root] = deserialize(data, expected_root=bytes.fromhex(root[2:]))
            except (BlobError, StateFormatError, StateRootMismatch) as exc:
                raise AuditError(f"initial weights {root} of job {job.hex_id}: {exc}") from exc
        return self._weights[root]

    def state(
        self, job: JobRef, root: bytes, trainer: Any, step: int, budget: FetchBudget | None = None
    ) -> TrainingState:
        """The checkpoint whose state root is ``root``, which must be a state of ``trainer``'s job after ``step``
        steps. Its download is capped at what such a state can weigh; its manifest is checked against the job
        (:meth:`protocol.engine.Trainer.check_layout`) before any tensor byte is parsed. Raises
        :class:`Unavailable`: evidence ``invalid`` for bytes that hash to ``root`` but are no such state,
        ``timeout``/``unavailable`` when no source delivered them."""
        from protocol.engine import EngineError

        if root in self._invalid:
            raise Unavailable(self._invalid[root], Evidence.INVALID)
        cap = trainer.max_state_bytes(step)
        part = FetchBudget(max_bytes=cap) if budget is None else budget.capped(cap)
        try:
            data = self.reader(job).get(root, "state", budget=part)
        except BlobError as exc:
            raise Unavailable(f"checkpoint 0x{root.hex()} of job {job.hex_id}: {exc}", _fetch_evidence(exc)) from exc
        try:
            layout = read_layout(data)
            trainer.check_layout(layout)
            if layout.step != step:
                raise StateFormatError(f"it is the state after step {layout.step}, not {step}")
            return deserialize(data, expected_root=root)
        except (StateFormatError, StateRootMismatch, EngineError) as exc:
            message = f"checkpoint 0x{root.hex()} of job {job.hex_id} is not a state of this job: {exc}"
            self._invalid[root] = message
            raise Unavailable(message, Evidence.INVALID) from exc


def _as_budget(b: FetchBudget | int) -> FetchBudget:
    return FetchBudget(max_bytes=b) if isinstance(b, int) else b


class _BudgetedReader:
    """A blob reader with a fixed budget, for code that calls ``get(address)`` (the dataset loader)."""

    def __init__(self, reader: MirroredBlobReader, budget: FetchBudget | None) -> None:
        self.reader, self.budget = reader, budget

    def get(self, address: Any, kind: Any = None) -> bytes:
        return self.reader.get(address, kind, budget=self.budget)

    def __str__(self) -> str:
        return ", ".join(repr(s) for s in self.reader.sources)


#: Kinds of job (see :func:`_warm_key`) whose kernels this process has warmed up; JIT state is per process.
_WARMED: set[str] = set()
_WARM_LOCK = threading.Lock()


def _warm_key(spec: JobSpec, device: str) -> str:
    """What decides which kernels a segment runs: everything in the spec but seed, schedule and C_init."""
    doc = spec.model_dump(mode="json")
    for k in ("seed", "total_steps", "checkpoint_interval", "init_state_root"):
        doc.pop(k, None)
    return json.dumps([doc, device], sort_keys=True)


class SegmentReplayer:
    """Replays segments with the engine. ``init_state`` of a spec is computed locally (C_init needs no fetch)."""

    def __init__(self, sources: Sources, device: str = "cpu") -> None:
        self.sources = sources
        self.device = device
        self._init_roots: dict[bytes, tuple[bytes, TrainingState]] = {}
        self.seconds = 0.0  # engine time spent replaying segments, in total (warm-up excluded)
        self.cpu_seconds = 0.0  # the same in CPU seconds (protocol.engine.runner.compute_clock)
        self.last_cpu = 0.0  # CPU seconds of the last replay's optimizer steps
        self._trainers: dict[bytes, Any] = {}  # one engine per job (model, optimizer, batch order): reloaded
        self.warmup_seconds = 0.0  # one-time warm-up of this process's kernels (see :meth:`warm_up`)

    def warm_up(self, trainer: Any, pre: TrainingState) -> None:
        """The first segment of a kind of job (model, data, optimizer, mode, device) in a process pays one-time
        costs — numba kernels loaded or compiled, torch's first calls — that are not replay work. Before timing
        it, one optimizer step from ``pre`` is taken (and thrown away: :meth:`replay` reloads ``pre``), timed
        into ``warmup_seconds`` instead of ``seconds``. Once per kind per process."""
        key = _warm_key(trainer.spec, self.device)
        with _WARM_LOCK:
            if key in _WARMED:
                return
            t0 = time.perf_counter()
            trainer.load(pre)
            trainer.train_steps(1)
            _WARMED.add(key)
            self.warmup_seconds += time.perf_counter() - t0

    def _trainer(self, job: JobRef, budget: FetchBudget | None = None):
        """The job's trainer, built once per job and reloaded for every segment (building one costs a model,
        an optimizer and the batch order: a fixed cost per replay otherwise). Kept for the last few jobs."""
        t = self._trainers.get(job.job_id)
        if t is None:
            t = self._build_trainer(job, budget)
            self._trainers[job.job_id] = t
            while len(self._trainers) > 4:
                self._trainers.pop(next(iter(self._trainers)))
        return t

    def _build_trainer(self, job: JobRef, budget: FetchBudget | None = None):
        from protocol.engine import Trainer

        spec = self.sources.spec(job, budget)
        return Trainer(
            spec,
            self.sources.dataset(job, spec, budget),
            self.device,
            weights=self.sources.weights(job, spec, budget),
        )

    def pre_state(
        self, job: JobRef, pre_root: bytes, index: int, trainer: Any = None, budget: FetchBudget | None = None
    ) -> TrainingState:
        """The pre-state of segment ``index`` whose root is ``pre_root``: computed when it is the job's
        C_init, else fetched (solver, mirror) within ``budget`` and checked to be this job's state at the
        segment's first step. Raises :class:`Unavailable`."""
        trainer = trainer or self._trainer(job, budget)
        if pre_root == job.init_state_root:
            if job.spec_hash not in self._init_roots:
                init = trainer.init()
                self._init_roots[job.spec_hash] = (state_root(init), init)
            root, init = self._init_roots[job.spec_hash]
            if root != pre_root:
                raise Unavailable(f"C_init of job {job.hex_id} computes to 0x{root.hex()}, not 0x{pre_root.hex()}")
            return init
        return self.sources.state(job, pre_root, trainer, index * trainer.spec.checkpoint_interval, budget)

    def replay(self, job: JobRef, pre_root: bytes, index: int, budget: FetchBudget | None = None) -> bytes:
        """The state root after segment ``index`` replayed from ``pre_root``. Raises :class:`Unavailable` if
        the pre-state cannot be had (within ``budget``) or is not the start of segment ``index``."""
        return self.replay_timed(job, pre_root, index, budget)[0]

    def replay_timed(
        self, job: JobRef, pre_root: bytes, index: int, budget: FetchBudget | None = None
    ) -> tuple[bytes, float]:
        """:meth:`replay` and the seconds its optimizer steps took (also added to ``seconds``): like the solver's
        train seconds, loading and exporting the state and the one-time warm-up are not counted."""
        from protocol.engine import EngineError
        from protocol.engine.runner import compute_clock

        trainer = self._trainer(job, budget)
        pre = self.pre_state(job, pre_root, index, trainer, budget)
        if pre.step != index * trainer.spec.checkpoint_interval:
            raise Unavailable(
                f"pre-state 0x{pre_root.hex()} is at step {pre.step}, segment {index} starts elsewhere",
                Evidence.INVALID,
            )
        try:
            self.warm_up(trainer, pre)
            trainer.load(pre)
            t0, c0 = time.perf_counter(), compute_clock()  # the optimizer steps only, as the solver's train seconds
            try:
                trainer.train_steps(trainer.spec.checkpoint_interval)
            finally:
                took = time.perf_counter() - t0
                self.last_cpu = compute_clock() - c0
                self.seconds += took
                self.cpu_seconds += self.last_cpu
            post = trainer.state()
        except EngineError as exc:
            raise Unavailable(
                f"segment {index} of job {job.hex_id} cannot start from 0x{pre_root.hex()}: {exc}", Evidence.INVALID
            ) from exc
        return state_root(post), took
