"""The order book's rules: what makes a signed order, bid or profile acceptable, and how bids are ranked.

Each check raises :class:`~marketplace_api.core.errors.ApiError` with a precise code; nothing is written
before every check has passed (the insert is the last step, and unique constraints close the races).
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import Connection, bindparam, exists, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace_api.context import AppContext
from marketplace_api.core.errors import ApiError, not_found
from marketplace_api.models import BidRow, ChainEventRow, JobSnapshot, Order, SolverProfileRow, StakerSnapshot
from marketplace_api.schemas import (
    JOB_STATES,
    BidCreate,
    JobCreate,
    ProfileCreate,
    RankedBid,
    SolverRecord,
)
from protocol.blobstore import BadAddress, BlobError
from protocol.eip712 import BidEta, Domain, SolverProfile, recover_digest_raw
from protocol.spec import JobSpec, SpecError, WeightsInit, parse_spec
from protocol.state import canonical_json

SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
MAX_SPEC_BYTES = 1 << 20


def hex0x(b: bytes) -> str:
    return "0x" + b.hex()


def require_domain(ctx: AppContext, chain_id: int | None) -> Domain:
    if ctx.domain is None:
        raise ApiError(
            503,
            "no_deployment",
            "this API has no deployment configured (VERITRAIN_DEPLOYMENT); it cannot check signatures",
        )
    if chain_id is not None and chain_id != ctx.domain.chain_id:
        raise ApiError(
            422, "wrong_chain", f"signed for chain {chain_id}, but this marketplace is on chain {ctx.domain.chain_id}"
        )
    return ctx.domain


def check_signature(
    typed: Any, domain: Domain, signature: str, expected: str, what: str, digest: bytes | None = None
) -> bytes:
    """Recovers the EIP-712 signer and compares it with ``expected``; the same rules as OpenZeppelin's ECDSA
    (``v`` 27/28, low ``s``), so whatever passes here also passes ``acceptBid``. ``digest`` is
    ``typed.digest(domain)`` when the caller has it already."""
    sig = bytes.fromhex(signature[2:])
    if sig[64] not in (27, 28):
        raise ApiError(422, "bad_signature", f"{what} signature has v={sig[64]}; expected 27 or 28")
    if int.from_bytes(sig[32:64], "big") > SECP256K1_HALF_N:
        raise ApiError(
            422, "bad_signature", f"{what} signature has a high s value (malleable); the contract rejects it"
        )
    try:
        signer = recover_digest_raw(typed.digest(domain) if digest is None else digest, sig)
    except Exception as exc:
        raise ApiError(422, "bad_signature", f"{what} signature is not a valid secp256k1 signature ({exc})") from None
    if signer != bytes.fromhex(expected[2:]):
        raise ApiError(
            422,
            "bad_signature",
            f"{what} signature recovers to {to_checksum_address(signer)}, not {to_checksum_address(expected)}: "
            f"signed by another key, over other fields, or for another domain than chain {domain.chain_id} / "
            f"JobMarket {domain.verifying_contract}",
        )
    return sig


# ------------------------------------------------------------------------------------------- orders


def _load_spec(ctx: AppContext, spec_hash: str, inline: dict[str, Any] | None) -> tuple[JobSpec, bytes | None]:
    """The spec named by ``spec_hash``: from the cache, the blob store or the inline document. Returns the spec
    and, when it came inline and is not stored yet, its canonical bytes (to store once every check passed)."""
    cached = ctx.specs.get(spec_hash)
    if cached is not None and inline is None:
        return cached, None
    try:
        present = ctx.blobs.has(spec_hash)
    except BadAddress as exc:  # pragma: no cover - the schema already checked the form
        raise ApiError(422, "invalid_request", str(exc)) from None
    if present and inline is None:
        info = ctx.blobs.info(spec_hash)
        if info.size > MAX_SPEC_BYTES:
            raise ApiError(422, "invalid_spec", f"spec blob {spec_hash} is {info.size} bytes; a spec is at most 1 MiB")
        try:
            raw = ctx.blobs.get(spec_hash)
        except BlobError as exc:
            raise ApiError(422, "spec_unreadable", f"spec blob {spec_hash}: {exc}") from None
        spec = _parse(raw)
        pending = None
    elif inline is not None:
        spec = _parse(inline)
        pending = None if present else spec.canonical_json()
    else:
        raise ApiError(
            422,
            "spec_missing",
            f"no spec blob {spec_hash} in the blob store: upload the spec (POST /blobs) first, or send it as `spec`",
        )
    actual = hex0x(spec.spec_hash())
    if actual != spec_hash:
        raise ApiError(
            422,
            "spec_hash_mismatch",
            f"the spec's hash (SHA-256 of its canonical JSON) is {actual}, but the order names {spec_hash}"
            + ("; the stored blob is not in canonical form" if pending is None and inline is None else ""),
        )
    ctx.specs.put(spec_hash, spec)
    return spec, pending


def _parse(data: bytes | dict[str, Any]) -> JobSpec:
    try:
        return parse_spec(data)
    except SpecError as exc:
        raise ApiError(422, "invalid_spec", "; ".join(f"{path}: {msg}" for path, msg in exc.errors)) from None


def _spec_matches_order(spec: JobSpec, body: JobCreate) -> None:
    order = body.order
    wrong = []
    if spec.total_steps != order.totalSteps:
        wrong.append(f"totalSteps is {order.totalSteps} but the spec's total_steps is {spec.total_steps}")
    if spec.checkpoint_interval != order.checkpointInterval:
        wrong.append(f"checkpointInterval is {order.checkpointInterval} but the spec says {spec.checkpoint_interval}")
    if spec.dataset.digest != order.datasetHash:
        wrong.append(f"datasetHash is {order.datasetHash} but the spec's dataset.digest is {spec.dataset.digest}")
    if spec.init_state_root is None:
        wrong.append("the spec has no init_state_root (fill in C_init before signing)")
    elif spec.init_state_root != order.initStateRoot:
        wrong.append(f"initStateRoot is {order.initStateRoot} but the spec's init_state_root is {spec.init_state_root}")
    if wrong:
        raise ApiError(422, "spec_mismatch", "; ".join(wrong))


def nonce_cancelled(session: Session, signer: str, nonce: int) -> bool:
    return (
        session.scalar(
            select(ChainEventRow.id).where(
                ChainEventRow.name == "NonceCancelled", ChainEventRow.account == signer, ChainEventRow.ref == str(nonce)
            )
        )
        is not None
    )


# The statements of the order hot path, built once (SQLAlchemy caches their compiled form by this identity).
_NONCE_CANCELLED = exists().where(
    ChainEventRow.name == "NonceCancelled",
    ChainEventRow.account == bindparam("signer"),
    ChainEventRow.ref == bindparam("nonce_ref"),
)
_JOB_ON_CHAIN = exists().where(JobSnapshot.job_id == bindparam("snap_job_id"))
_ORDER_BLOCKED = select(_NONCE_CANCELLED, _JOB_ON_CHAIN)
_ORDER_BY_ID = select(Order.seq).where(Order.job_id == bindparam("job_id"))
_ORDER_BY_NONCE = select(Order.seq).where(Order.submitter == bindparam("signer"), Order.nonce == bindparam("nonce"))
_ORDER_COLUMNS = [c for c in Order.__table__.c if c.name != "seq"]
#: INSERT … SELECT :values WHERE the nonce is not cancelled and the job is not on-chain: one round trip that
#: checks and stores (no row back = blocked; a unique violation = duplicate or reused nonce).
_ORDER_INSERT = (
    insert(Order)
    .from_select(
        [c.name for c in _ORDER_COLUMNS],
        select(*(bindparam(c.name, type_=c.type) for c in _ORDER_COLUMNS)).where(~_NONCE_CANCELLED, ~_JOB_ON_CHAIN),
    )
    .returning(Order.seq)
)


def _order_conflict(conn: Connection, job_id: str, submitter: str, nonce: int) -> ApiError | None:
    """The 409 for an order that is already stored (same digest) or reuses its submitter's nonce, else None."""
    if conn.scalar(_ORDER_BY_ID, {"job_id": job_id}) is not None:
        return ApiError(409, "duplicate", f"order {job_id} is already posted")
    if conn.scalar(_ORDER_BY_NONCE, {"signer": submitter, "nonce": nonce}) is not None:
        return ApiError(409, "nonce_reused", f"{submitter} already posted an order with nonce {nonce}")
    return None


def create_order(ctx: AppContext, body: JobCreate) -> Order:
    """Checks and stores a signed order; returns it (a transient ``Order``). The database sees one statement
    and a commit on a Core connection (no ORM unit of work): an INSERT … SELECT that inserts only when the
    nonce is not cancelled on-chain and the job is not on-chain; duplicates and reused nonces are caught by
    the unique constraints (job id; submitter + nonce). Only a refused order costs the look-ups that name why."""
    domain = require_domain(ctx, body.chain_id)
    order = body.order
    typed = order.typed()
    digest = typed.digest(domain)
    job_id = hex0x(digest)
    check_signature(typed, domain, body.signature, order.submitter, "order", digest)
    now = ctx.now()
    if order.deadline <= now:
        raise ApiError(422, "expired", f"the order's deadline {order.deadline} has passed (now {now})")
    spec, pending = _load_spec(ctx, order.specHash, body.spec)
    _spec_matches_order(spec, body)
    if isinstance(spec.init, WeightsInit) and not ctx.blobs.has(spec.init.state_root, "state"):
        raise ApiError(
            422,
            "weights_missing",
            f"the spec starts from the weights state {spec.init.state_root}, which is not in the blob store: "
            "upload it first (POST /blobs?kind=state)",
        )
    try:
        dataset_present = ctx.blobs.has(order.datasetHash)
    except BadAddress as exc:  # pragma: no cover
        raise ApiError(422, "invalid_request", str(exc)) from None
    values = {
        "job_id": job_id,
        "submitter": order.submitter,
        "spec_hash": order.specHash,
        "dataset_hash": order.datasetHash,
        "init_state_root": order.initStateRoot,
        "total_steps": order.totalSteps,
        "checkpoint_interval": order.checkpointInterval,
        "max_price": order.maxPrice,
        "deadline": order.deadline,
        "nonce": order.nonce,
        "signature": body.signature,
        "model_kind": spec.model.kind,
        "mode": spec.mode.kind,
        "batch_size": spec.batch_size,
        "chain_state": 0,
        "created_at": datetime.now(UTC),
    }
    keys = {"signer": order.submitter, "nonce_ref": str(order.nonce), "snap_job_id": job_id}
    with ctx.engine.connect() as conn:
        if not dataset_present:
            conflict = _order_conflict(conn, job_id, order.submitter, order.nonce)
            raise conflict or ApiError(
                422, "dataset_missing", f"no dataset blob {order.datasetHash}: upload it (POST /blobs) first"
            )
        try:
            seq = conn.execute(_ORDER_INSERT, {**values, **keys}).scalar()
            if seq is not None and pending is not None:
                ctx.blobs.put(pending, expected=order.specHash)
            conn.commit()
        except IntegrityError:
            conn.rollback()
            conflict = _order_conflict(conn, job_id, order.submitter, order.nonce)
            raise conflict or ApiError(
                409, "duplicate", f"order {job_id} (or its nonce) was posted concurrently"
            ) from None
        if seq is None:  # blocked on-chain; a duplicate is still named a duplicate first
            conflict = _order_conflict(conn, job_id, order.submitter, order.nonce)
            if conflict is not None:
                raise conflict
            cancelled, _ = conn.execute(_ORDER_BLOCKED, keys).one()
            if cancelled:
                raise ApiError(409, "nonce_cancelled", f"{order.submitter} cancelled nonce {order.nonce} on-chain")
            raise ApiError(409, "already_matched", f"job {job_id} is already matched on-chain")
    ctx.metrics.inc("orders_accepted")
    return Order(seq=seq, **values)


# --------------------------------------------------------------------------------------------- bids


def get_order(session: Session, job_id: str) -> Order:
    row = session.scalar(select(Order).where(Order.job_id == job_id))
    if row is None:
        raise not_found("job", job_id)
    return row


def create_bid(ctx: AppContext, session: Session, job_id: str, body: BidCreate) -> BidRow:
    domain = require_domain(ctx, body.chain_id)
    order = get_order(session, job_id)
    bid = body.bid
    if bid.orderHash != job_id:
        raise ApiError(422, "order_mismatch", f"the bid is for order {bid.orderHash}, not {job_id}")
    typed = bid.typed()
    bid_digest = typed.digest(domain)
    bid_hash = hex0x(bid_digest)
    check_signature(typed, domain, body.signature, bid.solver, "bid", bid_digest)
    if (body.eta_seconds is None) != (body.eta_signature is None):
        raise ApiError(422, "eta_incomplete", "eta_seconds and eta_signature come together")
    if body.eta_seconds is not None and body.eta_signature is not None:
        eta = BidEta(solver=bid.solver, bidHash=bytes.fromhex(bid_hash[2:]), etaSeconds=body.eta_seconds)
        check_signature(eta, domain, body.eta_signature, bid.solver, "ETA")
    now = ctx.now()
    if bid.expiry <= now:
        raise ApiError(422, "expired", f"the bid's expiry {bid.expiry} has passed (now {now})")
    if order.deadline <= now:
        raise ApiError(422, "order_expired", f"the order's deadline {order.deadline} has passed (now {now})")
    if now + bid.workTime > order.deadline:
        raise ApiError(
            422,
            "too_late_to_accept",
            f"the bid's workTime {bid.workTime}s from now ends at {now + bid.workTime}, after the order's deadline "
            f"{order.deadline}: the contract would refuse it (TooLateToAccept)",
        )
    if bid.price > order.max_price:
        raise ApiError(422, "price_above_max", f"price {bid.price} is above the order's maxPrice {order.max_price}")
    required = ctx.required_stake(bid.price)
    if required is not None and bid.stake < required:
        raise ApiError(
            422, "stake_too_low", f"stake {bid.stake} is below the required {required} for price {bid.price}"
        )
    if order.chain_state:
        raise ApiError(409, "job_taken", f"job {job_id} is already {JOB_STATES[order.chain_state]} on-chain")
    if session.scalar(select(BidRow.seq).where(BidRow.bid_hash == bid_hash)) is not None:
        raise ApiError(409, "duplicate", f"bid {bid_hash} is already posted")
    if session.scalar(select(BidRow.seq).where(BidRow.solver == bid.solver, BidRow.nonce == bid.nonce)):
        raise ApiError(409, "nonce_reused", f"{bid.solver} already posted a bid with nonce {bid.nonce}")
    if nonce_cancelled(session, bid.solver, bid.nonce):
        raise ApiError(409, "nonce_cancelled", f"{bid.solver} cancelled nonce {bid.nonce} on-chain")
    count = session.scalar(select(func.count()).select_from(BidRow).where(BidRow.job_id == job_id)) or 0
    if count >= ctx.settings.max_bids_per_job:
        raise ApiError(409, "too_many_bids", f"job {job_id} already has {count} bids (the limit)")
    row = BidRow(
        bid_hash=bid_hash,
        job_id=job_id,
        solver=bid.solver,
        price=bid.price,
        stake=bid.stake,
        expiry=bid.expiry,
        nonce=bid.nonce,
        work_time=bid.workTime,
        signature=body.signature,
        eta_seconds=body.eta_seconds,
        eta_signature=body.eta_signature,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "duplicate", f"bid {bid_hash} (or its nonce) was posted concurrently") from None
    ctx.metrics.inc("bids_accepted")
    return row


# ------------------------------------------------------------------------------------------ solvers


def profile_hash(doc: dict[str, Any]) -> bytes:
    """SHA-256 of the profile document's canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(canonical_json(doc)).digest()


def upsert_profile(ctx: AppContext, session: Session, solver: str, body: ProfileCreate) -> SolverProfileRow:
    domain = require_domain(ctx, body.chain_id)
    doc = body.profile.model_dump(mode="json", exclude_none=True)
    digest = profile_hash(doc)
    typed = SolverProfile(solver=solver, profileHash=digest, issuedAt=body.issued_at)
    check_signature(typed, domain, body.signature, solver, "profile")
    now = ctx.now()
    if body.issued_at > now + ctx.settings.max_clock_skew_s:
        raise ApiError(422, "issued_in_future", f"issued_at {body.issued_at} is in the future (now {now})")
    row = session.get(SolverProfileRow, solver)
    if row is not None and body.issued_at <= row.issued_at:
        raise ApiError(
            409,
            "stale_profile",
            f"the stored profile was issued at {row.issued_at}; a new one must be issued later (got {body.issued_at})",
        )
    if row is None:
        row = SolverProfileRow(solver=solver)
        session.add(row)
    row.profile, row.profile_hash, row.issued_at, row.signature = doc, hex0x(digest), body.issued_at, body.signature
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "stale_profile", "another profile for this solver was stored concurrently") from None
    ctx.metrics.inc("profiles_accepted")
    return row


# ------------------------------------------------------------------------------------------ ranking


def latest_job_states(session: Session, job_ids: list[str] | None = None, solver: str | None = None):
    """(job_id, state) of each job's newest snapshot, optionally only for some jobs or one solver."""
    newest = select(JobSnapshot.job_id, func.max(JobSnapshot.block_number).label("bn")).group_by(JobSnapshot.job_id)
    if job_ids is not None:
        newest = newest.where(JobSnapshot.job_id.in_(job_ids))
    newest = newest.subquery()
    q = select(JobSnapshot).join(
        newest, (JobSnapshot.job_id == newest.c.job_id) & (JobSnapshot.block_number == newest.c.bn)
    )
    if solver is not None:
        q = q.where(JobSnapshot.solver == solver)
    return session.scalars(q).all()


def solver_record(session: Session, solver: str) -> SolverRecord:
    states = [s.state for s in latest_job_states(session, solver=solver)]
    return SolverRecord(
        jobs_matched=len(states),
        jobs_finalized=states.count(4),
        jobs_slashed=states.count(5),
        jobs_expired=states.count(6),
    )


def latest_position(session: Session, account: str) -> StakerSnapshot | None:
    return session.scalar(
        select(StakerSnapshot).where(StakerSnapshot.account == account).order_by(StakerSnapshot.block_number.desc())
    )


def rank_bids(ctx: AppContext, session: Session, order: Order) -> list[RankedBid]:
    """Bids on ``order``, best first: feasible bids by price (then ETA, then arrival), then the infeasible ones
    with their reasons. A bid is feasible when it has not expired, the job is still open, its ETA (signed, or
    estimated from the solver's profile) meets the deadline, and (when the chain is indexed) the solver has
    the stake free."""
    from marketplace_api.schemas import BidPublic

    now = ctx.now()
    bids = session.scalars(select(BidRow).where(BidRow.job_id == order.job_id).order_by(BidRow.seq)).all()
    solvers = {b.solver for b in bids}
    profiles = {
        p.solver: p for p in session.scalars(select(SolverProfileRow).where(SolverProfileRow.solver.in_(solvers)))
    }
    records = {s: solver_record(session, s) for s in solvers}
    indexed = ctx.indexer is not None
    positions = {s: latest_position(session, s) for s in solvers} if indexed else {}
    ranked: list[tuple[tuple, RankedBid]] = []
    for b in bids:
        reasons: list[str] = []
        eta, source = b.eta_seconds, "signed" if b.eta_seconds is not None else None
        if eta is None and b.solver in profiles:
            rate = profiles[b.solver].profile.get("throughput", {}).get(order.model_kind)
            if rate:
                eta, source = math.ceil(order.total_steps * order.batch_size / float(rate)), "profile"
        if order.chain_state:
            reasons.append(f"job already {JOB_STATES[order.chain_state]} on-chain")
        if b.expiry <= now:
            reasons.append(f"expired at {b.expiry}")
        if now + b.work_time > order.deadline:
            reasons.append(f"too late to accept: its workTime {b.work_time}s from now ends after {order.deadline}")
        if eta is None:
            reasons.append("no ETA: the bid carries none and the solver has no profile for this model")
        elif now + eta > order.deadline:
            reasons.append(f"misses the deadline: ETA {eta}s from now ends at {now + eta}, after {order.deadline}")
        if indexed:
            pos = positions.get(b.solver)
            if pos is None:
                reasons.append("the solver has no stake on record")
            elif pos.free < b.stake:
                reasons.append(f"the solver's free stake {pos.free} is below the offered stake {b.stake}")
        public = RankedBid(
            rank=None,
            bid_hash=b.bid_hash,
            bid=BidPublic(
                solver=b.solver,
                orderHash=b.job_id,
                price=b.price,
                stake=b.stake,
                expiry=b.expiry,
                nonce=b.nonce,
                workTime=b.work_time,
            ),
            signature=b.signature,
            eta_seconds=eta,
            eta_source=source,  # type: ignore[arg-type]
            feasible=not reasons,
            infeasible_reasons=reasons,
            solver_record=records[b.solver],
            created_at=b.created_at,
        )
        key = (0 if not reasons else 1, b.price, eta if eta is not None else 1 << 64, b.seq)
        ranked.append((key, public))
    ranked.sort(key=lambda kv: kv[0])
    out = [r for _, r in ranked]
    for i, r in enumerate(x for x in out if x.feasible):
        r.rank = i + 1
    return out
