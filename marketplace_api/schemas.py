"""Request and response shapes (pydantic v2): ``*Create`` is what a client posts, ``*Public`` what it reads.

On the wire a 32-byte value is ``0x`` + 64 hex, an address is checksummed, and an unsigned integer that may
exceed 2^53 (prices, stakes, nonces) is a decimal string (integers are accepted on input).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from eth_utils import is_address, to_checksum_address
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from protocol.constants import JobState, Outcome, Phase, api_names
from protocol.eip712 import Bid, JobOrder

_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_SIG = re.compile(r"^0x[0-9a-fA-F]{130}$")
U256_MAX = (1 << 256) - 1
U64_MAX = (1 << 64) - 1


def _uint(bits: int):
    top = (1 << bits) - 1

    def parse(v: Any) -> int:
        if isinstance(v, bool):
            raise ValueError("must be an unsigned integer (a JSON integer or a decimal string)")
        if isinstance(v, str):
            if not v.isdigit() or len(v) > 80:
                raise ValueError("must be an unsigned decimal integer string")
            v = int(v)
        if not isinstance(v, int):
            raise ValueError("must be an unsigned integer (a JSON integer or a decimal string)")
        if not 0 <= v <= top:
            raise ValueError(f"must be between 0 and 2^{bits}-1")
        return v

    return parse


def _hex32(v: Any) -> str:
    if not isinstance(v, str) or not _HEX32.match(v):
        raise ValueError("must be 0x followed by 64 hex digits")
    return v.lower()


def _address(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("must be a 20-byte hex address (0x + 40 hex digits)")
    return _checksummed(v)


@lru_cache(maxsize=1 << 14)
def _checksummed(v: str) -> str:
    """``v`` checked and checksummed (cached: the same few accounts come back in every request)."""
    if not v.startswith("0x") or not is_address(v):
        raise ValueError("must be a 20-byte hex address (0x + 40 hex digits)")
    if v != v.lower() and v[2:] != v[2:].upper() and to_checksum_address(v) != v:
        raise ValueError("mixed-case address with a wrong EIP-55 checksum")
    return to_checksum_address(v)


def _signature(v: Any) -> str:
    if not isinstance(v, str) or not _SIG.match(v):
        raise ValueError("must be a 65-byte signature r‖s‖v as 0x + 130 hex digits")
    return v.lower()


_UINT_SCHEMA = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]{1,78}$"}]}

U256 = Annotated[
    int,
    BeforeValidator(_uint(256)),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({**_UINT_SCHEMA, "examples": ["100000000000000000000"]}, mode="validation"),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]{1,78}$"}, mode="serialization"),
]
U64 = Annotated[
    int,
    BeforeValidator(_uint(64)),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": U64_MAX}, mode="validation"),
]
Hex32 = Annotated[
    str,
    BeforeValidator(_hex32),
    WithJsonSchema({"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$", "examples": ["0x" + "ab" * 32]}),
]
Address = Annotated[
    str,
    BeforeValidator(_address),
    WithJsonSchema(
        {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$", "examples": ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]}
    ),
]
Signature = Annotated[
    str,
    BeforeValidator(_signature),
    WithJsonSchema({"type": "string", "pattern": "^0x[0-9a-fA-F]{130}$"}),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# ------------------------------------------------------------------------------------------- orders


class JobOrderFields(_In):
    """The EIP-712 ``JobOrder`` exactly as signed (field names as in the contract)."""

    submitter: Address
    specHash: Hex32
    datasetHash: Hex32
    initStateRoot: Hex32
    totalSteps: U64
    checkpointInterval: U64
    maxPrice: U256
    deadline: U64 = Field(description="unix seconds by which the solver must commit")
    nonce: U256

    def typed(self) -> JobOrder:
        return JobOrder(
            submitter=self.submitter,
            specHash=bytes.fromhex(self.specHash[2:]),
            datasetHash=bytes.fromhex(self.datasetHash[2:]),
            initStateRoot=bytes.fromhex(self.initStateRoot[2:]),
            totalSteps=self.totalSteps,
            checkpointInterval=self.checkpointInterval,
            maxPrice=self.maxPrice,
            deadline=self.deadline,
            nonce=self.nonce,
        )


class JobCreate(_In):
    """A signed order. The spec (``specHash``) and the dataset (``datasetHash``) must already be in the blob
    store (``POST /blobs``), unless ``spec`` carries the spec document itself, which is then stored."""

    order: JobOrderFields
    signature: Signature = Field(description="the submitter's EIP-712 signature over the order")
    chain_id: int | None = Field(None, description="the chain the order was signed for (checked when given)")
    spec: dict[str, Any] | None = Field(None, description="the job spec document (optional, see above)")


class JobOrderPublic(_Out):
    submitter: str
    specHash: str
    datasetHash: str
    initStateRoot: str
    totalSteps: int
    checkpointInterval: int
    maxPrice: U256
    deadline: int
    nonce: U256


#: ``IJobMarket.JobState`` by index with ``NONE`` served as ``open`` (no job on-chain yet: the order is open),
#: then ``cancelled``: an order nobody was matched to whose nonce its submitter cancelled on-chain
#: (``NonceCancelled``), a state of the order book only.
JOB_STATES: tuple[str, ...] = ("open", *api_names(JobState)[1:], "cancelled")
JobStatus = Literal[JOB_STATES]  # type: ignore[valid-type]
ORDER_CANCELLED = JOB_STATES.index("cancelled")


class ProtocolEnums(BaseModel):
    """Enum names as the API serves them (in the contracts' integer order)."""

    job_status: list[str] = Field(description="'open' (no job on-chain yet), IJobMarket.JobState, 'cancelled'")
    dispute_phase: list[str] = Field(description="IDisputeGame.Phase")
    dispute_outcome: list[str] = Field(description="IDisputeGame.Outcome")
    vote_status: list[str] = Field(description="IDisputeGame.VoteStatus")


class JobSummary(_Out):
    job_id: str = Field(description="the order's EIP-712 digest: the on-chain job id")
    status: JobStatus
    order: JobOrderPublic
    signature: str
    model_kind: str
    mode: str
    batch_size: int
    bids: int
    created_at: datetime
    solver: str | None = Field(None, description="the matched solver (from the chain); null while open")


class JobList(BaseModel):
    items: list[JobSummary]
    next_cursor: int | None = Field(description="pass as `cursor` for the next page; null at the end")


class ChainJobPublic(BaseModel):
    """``JobMarket.getJob`` as of the newest indexed block that touched the job."""

    block_number: int
    state: JobStatus
    submitter: str
    solver: str
    deadline: int
    num_leaves: int
    price: U256
    stake: U256
    init_state_root: str
    trajectory_root: str
    final_state_root: str
    committed_at: int
    audit_end: int
    seed_block: int
    seed: str


class EventPublic(BaseModel):
    name: str
    contract: str
    block_number: int
    block_time: int
    tx_hash: str
    log_index: int
    args: dict[str, Any]
    job_id: str | None = Field(None, description="the job this event is about (also via its transaction)")
    dispute_id: int | None = Field(None, description="the dispute this event is about (also via its transaction)")


class TrajectoryPublic(BaseModel):
    root: str
    num_leaves: int
    final_state_root: str
    uri: str
    committed_in_tx: str
    block_number: int


class AuditPublic(BaseModel):
    seed: str | None
    verifiers: list[str]
    segments: list[int]
    attested: list[str]


class JobDetail(BaseModel):
    job_id: str
    status: JobStatus
    order: JobOrderPublic | None = Field(description="null for a job matched on-chain from an order never posted here")
    signature: str | None
    spec: dict[str, Any] | None
    bids: list[RankedBid]
    chain: ChainJobPublic | None
    trajectory: TrajectoryPublic | None
    audit: AuditPublic | None
    disputes: list[DisputeSummary]
    events: list[EventPublic]


# --------------------------------------------------------------------------------------------- bids


class BidFields(_In):
    """The EIP-712 ``Bid`` exactly as signed."""

    solver: Address
    orderHash: Hex32
    price: U256
    stake: U256
    expiry: U64
    nonce: U256
    workTime: U64 = Field(description="seconds the solver needs from acceptance to commit (signed)")

    def typed(self) -> Bid:
        return Bid(
            solver=self.solver,
            orderHash=bytes.fromhex(self.orderHash[2:]),
            price=self.price,
            stake=self.stake,
            expiry=self.expiry,
            nonce=self.nonce,
            workTime=self.workTime,
        )


class BidCreate(_In):
    """A signed bid, with an optional signed ETA (``BidEta`` typed data over the bid's digest)."""

    bid: BidFields
    signature: Signature
    chain_id: int | None = None
    eta_seconds: U64 | None = Field(None, description="seconds after acceptance by which the solver commits")
    eta_signature: Signature | None = Field(None, description="the solver's BidEta signature (needs eta_seconds)")


class BidPublic(_Out):
    solver: str
    orderHash: str
    price: U256
    stake: U256
    expiry: int
    nonce: U256
    workTime: int = Field(description="seconds the solver needs from acceptance to commit (signed)")


class SolverRecord(BaseModel):
    jobs_matched: int
    jobs_finalized: int
    jobs_slashed: int
    jobs_expired: int


class RankedBid(BaseModel):
    rank: int | None = Field(description="1 = best feasible bid; null for infeasible bids")
    bid_hash: str
    bid: BidPublic
    signature: str
    eta_seconds: int | None
    eta_source: Literal["signed", "profile"] | None
    feasible: bool
    infeasible_reasons: list[str]
    solver_record: SolverRecord
    created_at: datetime


class BidList(BaseModel):
    job_id: str
    items: list[RankedBid]
    total: int


class AcceptCall(BaseModel):
    """The transaction a submitter signs and sends to accept a bid (the API holds no keys)."""

    to: str = Field(description="JobMarket address")
    data: str = Field(description="ABI-encoded acceptBid(order, orderSig, bid, bidSig)")
    value: str = "0"
    chain_id: int
    sender: str = Field(description="the submitter, who must send it (escrow is pulled from it)")
    function: str = "acceptBid"
    job_id: str
    bid_hash: str
    price: U256


# ---------------------------------------------------------------------------------------- solvers


class ProfileDocument(_In):
    """Measured exact-mode throughput per example model, as ``veritrain bench`` reports it."""

    throughput: dict[Literal["mlp", "cnn", "transformer_lm"], Annotated[float, Field(gt=0, le=1e12)]] = Field(
        description="training examples per second, exact mode, per example model", min_length=1
    )
    kernel_set: str = Field(min_length=1, max_length=64)
    device: str | None = Field(None, max_length=128)


class ProfileCreate(_In):
    profile: ProfileDocument
    issued_at: U64 = Field(description="unix seconds; must be newer than the stored profile's")
    signature: Signature = Field(description="EIP-712 SolverProfile(solver, profileHash, issuedAt)")
    chain_id: int | None = None


class ProfilePublic(BaseModel):
    solver: str
    profile: dict[str, Any]
    profile_hash: str
    issued_at: int
    signature: str


class SolverPublic(BaseModel):
    solver: str
    profile: ProfilePublic | None
    record: SolverRecord


# --------------------------------------------------------------------------------------- disputes


DisputePhase = Literal[api_names(Phase)]  # type: ignore[valid-type]
DisputeOutcome = Literal[api_names(Outcome)]  # type: ignore[valid-type]


class DisputeSummary(BaseModel):
    dispute_id: int
    job_id: str
    phase: DisputePhase
    outcome: DisputeOutcome
    solver: str
    challenger: str
    lo: int
    hi: int
    num_leaves: int
    solver_clock: int = Field(description="seconds left on the solver's chess clock")
    challenger_clock: int
    bond: U256
    block_number: int


class DisputeMove(BaseModel):
    name: str
    tx_hash: str
    block_number: int
    block_time: int
    log_index: int
    args: dict[str, Any]
    solver_clock: int | None = Field(description="solver's clock (s) after the block of this move")
    challenger_clock: int | None


class DisputeList(BaseModel):
    items: list[DisputeSummary]
    next_cursor: int | None


class VotePublic(BaseModel):
    arbiter: str
    commitment: str | None = Field(description="H(result ‖ salt ‖ arbiter), once committed")
    result: str | None = Field(description="the revealed result (a state root, or UNAVAILABLE), once revealed")
    committed_in_tx: str | None
    revealed_in_tx: str | None


class DisputeDetail(DisputeSummary):
    node: str
    pre_state_root: str
    post_state_root: str
    committee: list[str]
    moves: list[DisputeMove]
    last_move_at: int = Field(description="chain time (s) of the last move; the party on turn spends from here")
    leaf_index: int | None = Field(description="the disputed leaf (0-based), once the descent reached it")
    availability_leaf: int | None = Field(
        None, description="an availability challenge: the leaf whose state bytes the solver must publish on chain"
    )
    fee_settled: DisputeMove | None = Field(
        None, description="AvailabilityFeeSettled: where the fee a Published availability challenge held went"
    )
    votes_for_solver: int
    votes_for_challenger: int
    commit_deadline: int
    reveal_deadline: int
    votes: list[VotePublic] = Field(description="one per committee member, in committee order")
    transfers: list[EventPublic] = Field(
        description="StakeManager and escrow events of the resolving transaction: slashes (with the burned part), "
        "credits, unlocks"
    )


# ---------------------------------------------------------------------------------------- stakers


class LockPublic(BaseModel):
    key: str
    amount: U256
    job_id: str | None = Field(description="the job whose stake this is, when the key is a job id")
    dispute_id: int | None = Field(description="the dispute of a bond or arbiter stake")
    locked_in_tx: str
    block_number: int


class StakerPublic(BaseModel):
    address: str
    free: U256
    locked: U256
    unbonding: U256
    release_at: int
    claimable: U256
    verifier: bool
    block_number: int | None
    history: list[EventPublic]
    slashes: list[EventPublic]
    record: SolverRecord
    locks: list[LockPublic] = Field(description="stake locked now, per key (job stake, dispute bond, arbiter stake)")
    slashed_total: U256 = Field(
        description="sum of every StakeSlashed amount of this account but availability fees it paid to solvers "
        "that published what it asked for (a price, not a slash)"
    )


class StakerSummary(BaseModel):
    address: str
    free: U256
    locked: U256
    unbonding: U256
    claimable: U256
    verifier: bool
    block_number: int
    slashes: int = Field(description="how many times this account was slashed")
    slashed_total: U256


class StakerList(BaseModel):
    items: list[StakerSummary]
    next_cursor: str | None = Field(description="pass as `after` for the next page; null at the end")


# ------------------------------------------------------------------------------------------- misc


class IndexerHealth(BaseModel):
    enabled: bool
    running: bool
    block_number: int | None
    error: str | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    chain_id: int | None
    job_market: str | None
    indexer: IndexerHealth


JobDetail.model_rebuild()
