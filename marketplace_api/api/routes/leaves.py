"""The leaf-list mirror (DESIGN §9): at commit a solver pushes its trajectory's leaf list here, so verifiers and
arbiters can read it even when the solver's own server does not answer them.

``PUT /jobs/{job_id}/leaves`` with ``{"leaves": ["0x…", …]}`` is accepted only when the list hashes (RFC 9162)
to the trajectory root committed on chain for that job, with the committed leaf count: the root comes from
the indexed job snapshot, or — when the indexer has not seen the commit yet — from ``JobMarket.getJob`` over
the API's RPC URL. The list is stored under ``<data dir>/leaf-lists/<job id>.json`` (atomic write); putting
the same list again is harmless. ``GET`` returns ``{"job_id", "root", "n", "leaves"}`` like the solver's own
``/leaves/{job_id}``.

``GET /jobs/{job_id}/metrics`` reads the metrics each mirrored checkpoint commits to in its manifest (spec
``evaluation``): what the job page draws as the loss curve.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from marketplace_api import views
from marketplace_api.api.deps import CtxDep, JobIdDep, SessionDep, errors
from marketplace_api.context import AppContext
from marketplace_api.core.errors import ApiError
from marketplace_api.schemas import _hex32
from protocol.atomic import atomic_write_bytes
from protocol.errors import BlobError
from protocol.state import StateFormatError
from protocol.trajectory import Trajectory, TrajectoryError

router = APIRouter(prefix="/jobs", tags=["jobs"])

#: JobMarket.JobState values at and after a commit (Committed, Disputed, Finalized, Slashed).
_COMMITTED_STATES = (2, 3, 4, 5)
ZERO_ROOT = "0x" + "00" * 32


class LeavesIn(BaseModel):
    leaves: list[str] = Field(description="the trajectory's leaves (state roots), 0x + 64 hex each, in order")


class LeavesOut(BaseModel):
    job_id: str
    root: str
    n: int
    leaves: list[str]


def _dir(ctx: AppContext) -> Path:
    return Path(ctx.settings.data_dir) / "leaf-lists"


@lru_cache(maxsize=4)
def _chain_client(rpc_url: str, deployment_path: str):
    from protocol.chain import ChainClient
    from protocol.deploy import load_deployment

    return ChainClient(rpc_url, load_deployment(deployment_path), retries=1, timeout=5.0, connect=False)


def committed_root(ctx: AppContext, session, job_id: str) -> tuple[str, int] | None:
    """``(trajectory root, numLeaves)`` committed for ``job_id``, or None if it is not committed (yet)."""
    snap = views.latest_job_snapshot(session, job_id)
    if snap is not None and snap.state in _COMMITTED_STATES and snap.trajectory_root != ZERO_ROOT:
        return snap.trajectory_root, int(snap.num_leaves)
    settings = ctx.settings
    if settings.rpc_url and settings.deployment:
        try:
            client = _chain_client(settings.rpc_url, str(settings.deployment))
            job = client.call(client.job_market.functions.getJob(bytes.fromhex(job_id[2:])))
        except Exception as exc:
            raise ApiError(503, "chain_unavailable", f"cannot read job {job_id} from the chain: {exc}") from None
        if int(job.state) in _COMMITTED_STATES:
            return "0x" + bytes(job.trajectoryRoot).hex(), int(job.numLeaves)
    return None


@router.put(
    "/{job_id}/leaves",
    response_model=LeavesOut,
    summary="Mirror a committed job's leaf list",
    responses=errors(400, 409, 413, 422, 503),
)
async def put_leaves(job_id: JobIdDep, body: LeavesIn, ctx: CtxDep, session: SessionDep) -> LeavesOut:
    """Stores the leaf list if it hashes to the trajectory root committed on chain (409 ``not_committed`` when
    the job has no commit yet; 422 ``root_mismatch`` when the list is not the committed one)."""
    try:
        leaves = [_hex32(x) for x in body.leaves]
    except ValueError as exc:
        raise ApiError(422, "bad_leaf", f"every leaf is 0x + 64 hex: {exc}") from None
    committed = await run_in_threadpool(committed_root, ctx, session, job_id)
    if committed is None:
        raise ApiError(409, "not_committed", f"job {job_id} has no trajectory root on chain yet; commit first")
    root, n = committed
    try:
        Trajectory.from_leaf_list([bytes.fromhex(x[2:]) for x in leaves], bytes.fromhex(root[2:]), n)
    except TrajectoryError as exc:
        raise ApiError(422, "root_mismatch", f"this is not the committed leaf list of job {job_id}: {exc}") from None
    doc = {"job_id": job_id, "root": root, "n": n, "leaves": leaves}
    path = _dir(ctx) / f"{job_id}.json"
    await run_in_threadpool(atomic_write_bytes, path, json.dumps(doc).encode())
    return LeavesOut(**doc)


@router.get(
    "/{job_id}/leaves",
    response_model=LeavesOut,
    summary="A committed job's mirrored leaf list",
    responses=errors(400, 404),
)
def get_leaves(job_id: JobIdDep, ctx: CtxDep) -> LeavesOut:
    path = _dir(ctx) / f"{job_id}.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ApiError(404, "not_found", f"no mirrored leaf list for job {job_id}") from None
    return LeavesOut(**doc)


class MetricsPoint(BaseModel):
    leaf: int = Field(description="leaf index i (the checkpoint after (i+1)·interval steps)")
    step: int
    state_root: str
    train_loss: float | None = None
    heldout_loss: float | None = None
    heldout_accuracy: float | None = None
    heldout_examples: int | None = None
    lr: float | None = None


class MetricsOut(BaseModel):
    job_id: str
    n: int
    points: list[MetricsPoint] = Field(description="one per leaf whose checkpoint records metrics, in leaf order")
    missing: list[int] = Field(description="leaves whose checkpoint is not in this API's blob store")


def _number(v) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


@router.get(
    "/{job_id}/metrics",
    response_model=MetricsOut,
    summary="Checkpoint metrics of a committed job (from its mirrored checkpoints' manifests)",
    responses=errors(400, 404),
)
def get_metrics(job_id: JobIdDep, ctx: CtxDep) -> MetricsOut:
    """For each leaf of the mirrored leaf list whose checkpoint the blob store holds, the ``meta.metrics`` its
    manifest commits to (spec ``evaluation``: held-out loss and accuracy, the segment's training loss, the
    learning rate). Each point names its state root: a client that downloads that checkpoint checks it. A job
    without a mirrored leaf list (not committed, or committed elsewhere) has no points."""
    try:
        doc = get_leaves(job_id, ctx)
    except ApiError as exc:
        if exc.status != 404:
            raise
        return MetricsOut(job_id=job_id, n=0, points=[], missing=[])
    points, missing = [], []
    for i, leaf in enumerate(doc.leaves):
        try:
            layout = ctx.blobs.state_layout(leaf)
        except BlobError:
            missing.append(i)
            continue
        except StateFormatError:  # pragma: no cover - the store validated the state at upload
            missing.append(i)
            continue
        m = layout.meta.get("metrics")
        if not isinstance(m, dict):
            continue
        ex = m.get("heldout_examples")
        points.append(
            MetricsPoint(
                leaf=i,
                step=layout.step,
                state_root=leaf,
                train_loss=_number(m.get("train_loss")),
                heldout_loss=_number(m.get("heldout_loss")),
                heldout_accuracy=_number(m.get("heldout_accuracy")),
                heldout_examples=ex if type(ex) is int else None,
                lr=_number(m.get("lr")),
            )
        )
    return MetricsOut(job_id=job_id, n=doc.n, points=points, missing=missing)
