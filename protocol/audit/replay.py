"""``veritrain audit dispute --replay``: replay the opened segment locally to say which side told the truth.

The job spec (its SHA-256 is the order's ``specHash``), the dataset (``datasetHash``) and the opened pre-state
(addressed by its state root) are fetched from the solver's checkpoint server (the ``uri`` of its commit),
then from the marketplace API mirror if one is given; every blob is verified against its address by the
blob client. The segment is run with the engine (:func:`protocol.engine.runner.run_segment`) and the state
root of the result compared with the opened leaf C_i.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from protocol.audit.dispute import DisputeAudit
from protocol.audit.record import DisputeRecord, from_hex, to_hex
from protocol.blobstore import HttpBlobClient
from protocol.errors import BlobError


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


class _Sources:
    """get(address, kind) from each source in turn; remembers why each failed."""

    def __init__(self, urls: list[str]) -> None:
        self.clients = [HttpBlobClient(u, timeout=30.0, retries=1) for u in urls if u]
        self.errors: list[str] = []

    def get(self, address: str, kind: str = "sha256") -> bytes:
        for c in self.clients:
            try:
                return c.get(address, kind)
            except (BlobError, OSError, ValueError) as exc:
                self.errors.append(f"{c.base_url}: {type(exc).__name__}: {exc}")
        raise BlobError(f"blob {address} ({kind}) not available: " + "; ".join(self.errors[-len(self.clients) :]))

    def close(self) -> None:
        for c in self.clients:
            c.close()


def replay_dispute(rec: DisputeRecord, api_url: str | None = None, device: str = "cpu") -> ReplayResult:
    """Replays the opened segment of ``rec`` (which must have a LeafOpened)."""
    from protocol.engine.data import load_dataset
    from protocol.engine.runner import run_segment
    from protocol.spec import parse_spec
    from protocol.state import deserialize, state_root

    a = DisputeAudit(rec)
    if a.leaf is None:
        raise ValueError(f"dispute {rec.dispute_id} has no opened leaf to replay")
    index = int(a.leaf.event["index"])
    pre, post = a.leaf.event["preStateRoot"], a.leaf.event["postStateRoot"]
    uri = str(a.committed.get("uri") or "")
    urls = [u for u in (uri if uri.startswith("http") else "", api_url or "") if u]
    sources = _Sources(urls)
    try:
        try:
            spec = parse_spec(sources.get(a.matched["specHash"], "sha256"))
            dataset = load_dataset(spec.dataset, store=_DatasetStore(sources))
            pre_bytes = sources.get(pre, "state")
        except (BlobError, OSError, ValueError) as exc:
            return ReplayResult(
                index, pre, post, None, "unknown",
                f"could not fetch the inputs from {urls or 'no source'} ({exc}); an arbiter in this position votes "
                "UNAVAILABLE, which counts against the solver",
            )  # fmt: skip
        state = deserialize(pre_bytes, expected_root=from_hex(pre))
        replayed = to_hex(state_root(run_segment(spec, state, dataset, device)))
    finally:
        sources.close()
    if replayed == post:
        return ReplayResult(index, pre, post, replayed, "solver", f"segment {index} replays to the opened leaf")
    return ReplayResult(
        index, pre, post, replayed, "challenger", f"segment {index} replays to {replayed[:10]}…, not {post[:10]}…"
    )


class _DatasetStore:
    def __init__(self, sources: _Sources) -> None:
        self.sources = sources

    def get(self, address: str) -> bytes:
        return self.sources.get(address, "sha256")

    def __str__(self) -> str:
        return ", ".join(c.base_url for c in self.sources.clients) or "no source"
