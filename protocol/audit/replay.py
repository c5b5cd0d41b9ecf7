"""``veritrain audit dispute --replay``: replay the opened segment locally to say which side told the truth.

The job spec (its SHA-256 is the order's ``specHash``), the dataset and the opened pre-state (addressed by its
state root; C_init is computed, not fetched) are read from the solver's checkpoint server (the ``uri`` of its
commit), then from the marketplace API mirror if one is given, each verified against its address — the same
code a verifier and an arbiter run (:mod:`protocol.replay`). A pre-state nobody serves may be on chain (an
availability challenge made the solver publish it, :mod:`protocol.publication`): with a chain client it is read
from there first, as arbiters do. The state root after the segment is compared with the opened leaf C_i.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from typing import Any

from protocol.audit.dispute import DisputeAudit
from protocol.audit.record import DisputeRecord, from_hex, to_hex
from protocol.chain import ChainClient
from protocol.publication import PublicationError, read_published_into
from protocol.replay import AuditError, JobRef, SegmentReplayer, Sources, Unavailable


@dataclass
class ReplayResult:
    index: int
    pre_state_root: str
    claimed: str  # C_i the solver opened
    replayed: str | None  # None when the inputs could not be fetched
    truthful: str  # "solver" / "challenger" / "unknown"
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def replay_dispute(
    rec: DisputeRecord, api_url: str | None = None, device: str = "cpu", client: ChainClient | None = None
) -> ReplayResult:
    """Replays the opened segment of ``rec`` (which must have a LeafOpened) with :mod:`protocol.replay`, the
    code verifiers and arbiters run: inputs from the solver's server, then the mirror, all verified; with
    ``client``, a pre-state published on chain first."""
    a = DisputeAudit(rec)
    if a.leaf is None:
        raise ValueError(f"dispute {rec.dispute_id} has no opened leaf to replay")
    index = int(a.leaf.event["index"])
    pre, post = a.leaf.event["preStateRoot"], a.leaf.event["postStateRoot"]
    job = JobRef(
        job_id=from_hex(rec.job_id),
        spec_hash=from_hex(a.matched["specHash"]),
        solver=a.solver,
        submitter=a.submitter,
        uri=str(a.committed.get("uri") or ""),
        num_leaves=a.n,
        trajectory_root=a.root,
        init_state_root=from_hex(a.matched["initStateRoot"]),
    )
    with tempfile.TemporaryDirectory(prefix="veritrain-audit-") as cache:
        sources = Sources(cache, api_url, timeout=30.0)
        published = ""
        if client is not None and index > 0:
            try:
                size = read_published_into(sources.cache, client, job.job_id, index - 1)
            except PublicationError as exc:
                published = f"; its chain publication could not be read: {exc}"
            else:
                if size is not None:
                    published = f" (pre-state read from its chain publication, {size} bytes)"
        try:
            replayed = to_hex(SegmentReplayer(sources, device).replay(job, from_hex(pre), index))
        except (Unavailable, AuditError) as exc:
            return ReplayResult(
                index, pre, post, None, "unknown",
                f"could not fetch or verify the inputs ({exc}){published}; an arbiter in this position votes "
                "UNAVAILABLE, which counts against the solver",
            )  # fmt: skip
        finally:
            sources.close()
    if replayed == post:
        return ReplayResult(
            index, pre, post, replayed, "solver", f"segment {index} replays to the opened leaf{published}"
        )
    return ReplayResult(
        index, pre, post, replayed, "challenger",
        f"segment {index} replays to {replayed[:10]}…, not {post[:10]}…{published}",
    )  # fmt: skip
