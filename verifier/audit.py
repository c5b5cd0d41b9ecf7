"""Audit by sampled replay (DESIGN §5.6–7, §8.5): fetch, verify, replay, compare.

Everything a verifier reads is checked before it is used:

* the **sample** — the contract's ``sampledSegments`` must equal :func:`protocol.sampling.sampled_segments`
  of the job's seed, and the seed must be ``audit_seed(prevrandao(seedBlock), jobId, root)`` with the RANDAO
  value read from the seed block's header checked against its hash, so a broken or malicious RPC cannot steer
  the audit;
* the **leaf list** — from the solver's ``GET {uri}/leaves/{jobId}`` first, then the marketplace mirror
  ``GET {api}/jobs/{jobId}/leaves``; accepted only if it has ``N`` leaves and hashes (RFC 9162) to the committed
  trajectory root;
* **blobs** — state blobs are addressed by their state root, the spec by its SHA-256 (= the order's
  ``specHash``), the dataset by its digest; every read goes through
  :class:`protocol.blobstore.MirroredBlobReader` (local cache, solver, marketplace mirror), which verifies each
  copy against its address.

A segment's result is ``match``, ``mismatch`` (replay gave another state root than the committed leaf), or
``unavailable`` (the leaf list or the pre-state could not be fetched or did not verify — evidence too:
arbiters vote ``UNAVAILABLE`` on what nobody can fetch, DESIGN §8.5).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocol.budget import FetchBudget
from protocol.replay import (
    AuditError,
    Evidence,
    JobRef,
    SegmentReplayer,
    Unavailable,
)
from protocol.sampling import audit_seed, sampled_segments

log = logging.getLogger("veritrain.verifier.audit")

MATCH, MISMATCH, INVALID, UNAVAILABLE, TIMEOUT, UNCHECKED = (
    Evidence.MATCH.value,
    Evidence.MISMATCH.value,
    Evidence.INVALID.value,
    Evidence.UNAVAILABLE.value,
    Evidence.TIMEOUT.value,
    Evidence.UNCHECKED.value,
)


@dataclass
class AuditResult:
    """Per sampled segment, its :class:`~protocol.replay.Evidence` (match, mismatch, invalid, unavailable,
    timeout, or unchecked: this node ran out of time before it could try, which is no evidence and leaves the
    job neither attested nor disputed by it); ``replay_seconds`` is the engine time spent."""

    job_id: bytes
    segments: dict[int, str]
    replay_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    replay_cpu_seconds: float = 0.0  # the same replays in CPU seconds (protocol.engine.runner.compute_clock)

    @property
    def clean(self) -> bool:
        return all(r == MATCH for r in self.segments.values())

    @property
    def bad_leaf(self) -> int | None:
        """The leaf to steer the dispute to, strongest evidence first:

        1. the first mismatched segment (its replay gives another root than its leaf);
        2. the leaf *before* the first segment whose pre-state is invalid: that leaf commits to bytes no replay
           can produce, so segment ``i - 1`` is the lie (its arbiters replay from leaf ``i - 2`` or C_init);
        3. the first unavailable or timed-out segment whose pre-state is not ``C_init`` (the arbiters too need a
           blob only the solver can serve), else the first such segment."""
        mismatched = sorted(i for i, r in self.segments.items() if r == MISMATCH)
        if mismatched:
            return mismatched[0]
        invalid = sorted(i for i, r in self.segments.items() if r == INVALID and i > 0)
        if invalid:
            return invalid[0] - 1
        unavailable = sorted(i for i, r in self.segments.items() if r in (UNAVAILABLE, TIMEOUT))
        if not unavailable:
            return None
        return next((i for i in unavailable if i > 0), unavailable[0])

    @property
    def evidence(self) -> str:
        """One word for the whole audit: ``clean``, or the strongest evidence found."""
        found = set(self.segments.values())
        for kind in (MISMATCH, INVALID, TIMEOUT, UNAVAILABLE, UNCHECKED):
            if kind in found:
                return kind
        return "clean"

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": "0x" + self.job_id.hex(),
            "segments": {str(i): r for i, r in sorted(self.segments.items())},
            "replay_seconds": round(self.replay_seconds, 4),
            "replay_cpu_seconds": round(self.replay_cpu_seconds, 4),
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> AuditResult:
        return cls(
            job_id=bytes.fromhex(doc["job_id"][2:]),
            segments={int(i): r for i, r in doc["segments"].items()},
            replay_seconds=float(doc.get("replay_seconds", 0.0)),
            replay_cpu_seconds=float(doc.get("replay_cpu_seconds", 0.0)),
            notes=list(doc.get("notes", [])),
        )


def check_sample(
    *, seed: bytes, num_leaves: int, chain_segments: Sequence[int], rate_bps: int, max_samples: int
) -> list[int]:
    """The segments to replay: the contract's list, after checking it equals the Python sampler's."""
    mine = sampled_segments(seed, num_leaves, rate_bps, max_samples)
    if list(chain_segments) != mine:
        raise AuditError(
            f"the contract sampled segments {list(chain_segments)} but protocol.sampling gives {mine} for seed "
            f"0x{seed.hex()}, N={num_leaves}: the RPC node or the deployment is not what this verifier expects"
        )
    return mine


def check_seed(*, seed: bytes, randao: bytes, job_id: bytes, trajectory_root: bytes) -> None:
    """Checks the job's audit seed against its seed block's RANDAO value (from the header checked against the
    block hash). A re-armed seed block (AuditSeedRearmed) moves the block; the caller passes the final one."""
    expected = audit_seed(randao, job_id, trajectory_root)
    if expected != seed:
        raise AuditError(
            f"audit seed 0x{seed.hex()} is not derived from its seed block's RANDAO value (expected 0x{expected.hex()})"
        )


class Replayer(SegmentReplayer):
    """A :class:`SegmentReplayer` that audits a job's sampled segments against its leaf list."""

    def audit(
        self,
        job: JobRef,
        segments: Sequence[int],
        between: Callable[[], None] | None = None,
        deadline: float | None = None,
    ) -> AuditResult:
        """Replays each sampled segment and compares it with the committed leaf. ``between()`` is called
        before each segment (the node runs urgent work there: an arbitration replay with a deadline).

        ``deadline`` (``time.monotonic()``) is when the evidence must be in, a safety margin before the audit
        window closes: every download shares what is left of it (:class:`protocol.budget.FetchBudget`), so a
        stalled or trickling server costs at most its share, and a segment whose data is not in by then is
        ``timeout`` — evidence, not a reason to sleep through the window."""
        result = AuditResult(job_id=job.job_id, segments={})
        budget = None if deadline is None else FetchBudget(max_bytes=1 << 62, deadline=deadline)
        try:
            leaves = self.sources.leaves(job, budget)
        except Unavailable as exc:
            result.notes.append(str(exc))
            result.segments = {i: exc.evidence.value for i in segments}
            return result
        for n, i in enumerate(segments):
            if between is not None:
                between()
            pre_root = job.init_state_root if i == 0 else leaves[i - 1]
            # each segment still to check gets an equal share of the time left
            part = None if budget is None else budget.share(len(segments) - n)
            try:
                got, took = self.replay_timed(job, pre_root, i, part)
                result.replay_seconds += took
                result.replay_cpu_seconds += self.last_cpu
            except Unavailable as exc:
                result.notes.append(str(exc))
                result.segments[i] = exc.evidence.value
                continue
            result.segments[i] = MATCH if got == leaves[i] else MISMATCH
            if got != leaves[i]:
                result.notes.append(f"segment {i}: replay 0x{got.hex()} != leaf 0x{leaves[i].hex()}")
        return result


def accuse_leaf(job_id: bytes, address: str, segments: Sequence[int]) -> int:
    """The ``accuse`` adversary's target: one of ``segments`` (those its replay found honest), picked from
    (job, verifier)."""
    h = hashlib.sha256(job_id + bytes.fromhex(address.removeprefix("0x"))).digest()
    return sorted(segments)[int.from_bytes(h[:4], "big") % len(segments)]
