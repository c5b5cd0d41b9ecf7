"""Audit records: everything an auditor needs about one dispute or one job, read straight from an RPC node.

A record holds raw chain data only — each transaction's decoded calldata (forge-artifact ABIs), its block,
timestamp and sender, the decoded logs of its receipt, the hashes of the seed blocks, the deployed
parameters — plus two answers of ``eth_call`` at historical blocks (the committee and verifier draws, which
depend on the stake pool's state at that moment and are not derivable from one dispute's events). Nothing is
taken from the marketplace API or from any party's node.

Records are plain JSON (``to_json`` / ``from_json``): ``veritrain audit … --export FILE`` writes one and
``--record FILE`` checks one offline, so the checks can be run (and tested) against doctored records.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound

from protocol.atomic import atomic_write_json
from protocol.blockheader import HeaderError, checked_header, randao_of
from protocol.chain import ChainClient
from protocol.constants import BPS
from protocol.errors import VeritrainError
from protocol.events import EventDecoder
from protocol.publication import PublicationError, published_event, read_published
from protocol.sampling import draw_weights_block
from protocol.state import chunked_root

DISPUTE_FORMAT = "veritrain.audit.dispute/1"
JOB_FORMAT = "veritrain.audit.job/1"

# Domain tags the contracts hash into keys and seeds (private constants there; a test checks the lock keys
# these give against the StakeLocked events of a real dispute).
BOND_TAG = keccak(text="veritrain.dispute.bond")  # DisputeGame.BOND_TAG
ARBITER_TAG = keccak(text="veritrain.dispute.arbiter")  # DisputeGame.ARBITER_TAG
FEE_TAG = keccak(text="veritrain.dispute.availability-fee")  # DisputeGame.FEE_TAG
COMMITTEE_TAG = keccak(text="veritrain.committee")  # DisputeGame.COMMITTEE_TAG
VERIFIER_DRAW_TAG = keccak(text="veritrain.verifiers")  # JobMarket.VERIFIER_DRAW_TAG
UNAVAILABLE = keccak(text="veritrain.UNAVAILABLE")  # DisputeGame.UNAVAILABLE
BURN_ADDRESS = "0x000000000000000000000000000000000000dEaD"  # StakeManager.BURN_ADDRESS


class AuditReadError(VeritrainError, RuntimeError):
    """The chain (or a record file) could not be read well enough to audit: exit code 2, not a verdict."""


def dispute_key(tag: bytes, dispute_id: int) -> bytes:
    """keccak256(abi.encode(tag, disputeId)): the StakeManager lock key of a dispute's bond / arbiter stakes /
    held availability fee."""
    return keccak(abi_encode(["bytes32", "uint256"], [tag, dispute_id]))


# ---------------------------------------------------------------------------------------------- JSON


def to_hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def from_hex(s: str) -> bytes:
    if not isinstance(s, str) or not s.startswith("0x"):
        raise ValueError(f"expected 0x-hex, got {s!r}")
    return bytes.fromhex(s[2:])


def jsonify(value: Any) -> Any:
    """web3 values → JSON: bytes as 0x-hex, addresses checksummed, named tuples as dicts, tuples as lists."""
    if isinstance(value, bytes | bytearray | HexBytes):
        return to_hex(bytes(value))
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        return value
    if isinstance(value, str):
        if value.startswith("0x") and len(value) == 42:
            try:
                return to_checksum_address(value)
            except ValueError:
                return value
        return value
    if hasattr(value, "_asdict"):
        return {k: jsonify(v) for k, v in value._asdict().items()}
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): jsonify(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonify(v) for v in value]
    return str(value)


@dataclass
class Event:
    """One decoded log of a protocol contract (VeriToken, StakeManager, JobMarket, DisputeGame)."""

    contract: str
    name: str
    args: dict[str, Any]
    log_index: int


@dataclass
class Tx:
    """One mined transaction that emitted events of the audited dispute or job."""

    hash: str
    block: int
    index: int  # position in its block
    timestamp: int
    sender: str
    to: str | None
    function: str | None  # None when the calldata is not a protocol call (e.g. sent through a contract)
    args: dict[str, Any]
    events: list[Event]

    def events_named(self, name: str, contract: str | None = None) -> list[Event]:
        return [e for e in self.events if e.name == name and (contract is None or e.contract == contract)]


@dataclass
class Draw:
    """A stake-weighted draw (``StakeManager.drawDistinct``) re-run by ``eth_call`` at the block before the
    drawing transaction, with the weights of block ``weights_block`` (the draw's seed block - 2, DrawSeed.sol).
    ``exact`` is true when no earlier transaction of the drawing block touched the StakeManager, so that state
    (which decides who is still seatable) is the one the contract drew from; ``weights`` are the members' draw
    weights at the end of ``weights_block``."""

    block: int  # the state the call ran against
    weights_block: int  # the block whose end-of-block draw weights the draw reads
    seed: str
    count: int
    exclude: list[str]
    drawn: list[str]
    exact: bool
    weights: dict[str, int]
    note: str = ""
    min_weight: int = 0  # drawDistinct's minWeight: members below it are stepped over (the arbiter lock)


def _tx_from_json(d: dict[str, Any]) -> Tx:
    return Tx(**{**d, "events": [Event(**e) for e in d["events"]]})


@dataclass
class JobRecord:
    """A job: its transactions (match, commit, audit draw, attestations, disputes, settlement) in order."""

    chain_id: int
    contracts: dict[str, str]
    params: dict[str, Any]
    job_id: str
    txs: list[Tx]
    blocks: dict[str, dict[str, Any]]  # seed blocks: number → {hash, timestamp}
    audit_draw: Draw | None = None
    dispute_ids: list[int] = field(default_factory=list)
    format: str = JOB_FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> JobRecord:
        if d.get("format") != JOB_FORMAT:
            raise AuditReadError(f"not a job audit record (format {d.get('format')!r}, expected {JOB_FORMAT!r})")
        try:
            return cls(
                **{
                    **d,
                    "txs": [_tx_from_json(t) for t in d["txs"]],
                    "audit_draw": Draw(**d["audit_draw"]) if d.get("audit_draw") else None,
                }
            )
        except (KeyError, TypeError) as exc:
            raise AuditReadError(f"malformed job audit record: {exc}") from exc


@dataclass
class DisputeRecord:
    """A dispute: its own transactions in order, and its job's (for the committed root, stake, window)."""

    chain_id: int
    contracts: dict[str, str]
    params: dict[str, Any]
    dispute_id: int
    job_id: str
    txs: list[Tx]
    job_txs: list[Tx]
    blocks: dict[str, dict[str, Any]]
    committee_draw: Draw | None = None
    unavailable: str = to_hex(UNAVAILABLE)
    format: str = DISPUTE_FORMAT
    #: For an availability challenge whose leaf is on the StatePublisher: the StatePublished event (block,
    #: timestamp, root), the inclusion proof from the publishing calldata, and the state root of the bytes rebuilt
    #: from all the publishing calldata (``bytes_root``; ``bytes_error`` when they could not be read back).
    publication: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DisputeRecord:
        if d.get("format") != DISPUTE_FORMAT:
            raise AuditReadError(
                f"not a dispute audit record (format {d.get('format')!r}, expected {DISPUTE_FORMAT!r})"
            )
        try:
            return cls(
                **{
                    **d,
                    "txs": [_tx_from_json(t) for t in d["txs"]],
                    "job_txs": [_tx_from_json(t) for t in d["job_txs"]],
                    "committee_draw": Draw(**d["committee_draw"]) if d.get("committee_draw") else None,
                }
            )
        except (KeyError, TypeError) as exc:
            raise AuditReadError(f"malformed dispute audit record: {exc}") from exc


def save_record(record: DisputeRecord | JobRecord, path: str | Path) -> None:
    atomic_write_json(Path(path), record.to_json())


def load_record(path: str | Path) -> DisputeRecord | JobRecord:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuditReadError(f"no record file at {path}") from None
    except json.JSONDecodeError as exc:
        raise AuditReadError(f"record file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise AuditReadError(f"record file {path} does not hold a JSON object")
    if data.get("format") == JOB_FORMAT:
        return JobRecord.from_json(data)
    return DisputeRecord.from_json(data)


# ------------------------------------------------------------------------------------------- reading


class ChainReader:
    """Reads transactions, logs and historical state for records, through a :class:`ChainClient` (retries,
    chain-id check against the deployment)."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self.w3 = client.w3
        self.decoder = EventDecoder(client)
        self.start_block = client.deployment.start_block
        self._blocks: dict[int, Any] = {}
        self._txs: dict[str, Tx] = {}
        self._by_address = {c.address.lower(): (name, c) for name, c in client.contracts.items()}

    def _rpc(self, what: str, fn):
        return self.client.with_retries(what, fn)

    def block(self, number: int) -> Any:
        if number not in self._blocks:
            blk = self._rpc("eth_getBlockByNumber", lambda: self.w3.eth.get_block(number))
            self._blocks[number] = blk
        return self._blocks[number]

    def block_info(self, number: int) -> dict[str, Any]:
        """Hash, timestamp and RANDAO value of block ``number``; ``randao`` is None (and ``header_error`` says
        why) when the header rebuilt from the node's fields does not hash to the block hash."""
        if number > self._rpc("eth_blockNumber", lambda: self.w3.eth.block_number):
            return {"hash": None, "timestamp": None, "randao": None}
        blk = self.block(number)
        info: dict[str, Any] = {"hash": to_hex(blk["hash"]), "timestamp": int(blk["timestamp"])}
        try:
            info["randao"] = to_hex(randao_of(checked_header(blk)))
        except HeaderError as exc:
            info["randao"], info["header_error"] = None, str(exc)
        return info

    def logs(self, contract: str, topic1: bytes) -> list[Any]:
        address = self.client.contract(contract).address
        return self._rpc(
            "eth_getLogs",
            lambda: self.w3.eth.get_logs(
                {
                    "address": address,
                    "fromBlock": self.start_block,
                    "toBlock": "latest",
                    "topics": [None, HexBytes(topic1)],
                }
            ),
        )

    def tx(self, tx_hash: bytes) -> Tx:
        key = to_hex(tx_hash)
        if key in self._txs:
            return self._txs[key]
        try:
            h = HexBytes(tx_hash)
            raw = self._rpc("eth_getTransactionByHash", lambda: self.w3.eth.get_transaction(h))
            receipt = self._rpc("eth_getTransactionReceipt", lambda: self.w3.eth.get_transaction_receipt(h))
        except TransactionNotFound as exc:
            raise AuditReadError(f"transaction {key} is not on this chain: {exc}") from exc
        function, args = None, {}
        to = raw.get("to")
        if to is not None and to.lower() in self._by_address:
            _, contract = self._by_address[to.lower()]
            try:
                fn, decoded = contract.decode_function_input(raw["input"])
                function, args = fn.fn_name, jsonify(decoded)
            except ValueError:
                function = None
        events = []
        for lg in receipt["logs"]:
            if str(lg["address"]).lower() not in self._by_address:
                continue
            ev = self.decoder.decode(lg)
            events.append(Event(ev.contract, ev.name, jsonify(ev.args), ev.log_index))
        tx = Tx(
            hash=key,
            block=int(receipt["blockNumber"]),
            index=int(receipt["transactionIndex"]),
            timestamp=int(self.block(int(receipt["blockNumber"]))["timestamp"]),
            sender=to_checksum_address(raw["from"]),
            to=to_checksum_address(to) if to else None,
            function=function,
            args=args,
            events=events,
        )
        self._txs[key] = tx
        return tx

    def txs_of(self, logs: list[Any]) -> list[Tx]:
        hashes: dict[bytes, tuple[int, int]] = {}
        for lg in logs:
            hashes.setdefault(bytes(lg["transactionHash"]), (int(lg["blockNumber"]), int(lg["transactionIndex"])))
        return [self.tx(h) for h, _ in sorted(hashes.items(), key=lambda kv: kv[1])]

    def params(self) -> dict[str, Any]:
        c = self.client
        market = jsonify(c.call(c.job_market.functions.params()))
        game = jsonify(c.call(c.dispute_game.functions.params()))
        return {
            "market": market,
            "game": game,
            "minVerifierStake": int(c.call(c.stake_manager.functions.minVerifierStake())),
        }

    def contracts(self) -> dict[str, str]:
        return dict(self.client.deployment.addresses)

    def draw(
        self,
        tx: Tx,
        seed: bytes,
        count: int,
        exclude: list[str],
        members: list[str],
        weights_block: int,
        min_weight: int = 0,
    ) -> Draw:
        """Re-runs ``drawDistinct(seed, count, exclude, min_weight, weights_block)`` against the state before
        ``tx``'s block; ``members`` (those the contract drew) get their draw weight at ``weights_block`` recorded."""
        c = self.client
        parent = tx.block - 1
        stakes = c.stake_manager
        earlier = [
            lg
            for lg in self._rpc(
                "eth_getLogs",
                lambda: self.w3.eth.get_logs({"address": stakes.address, "fromBlock": tx.block, "toBlock": tx.block}),
            )
            if int(lg["transactionIndex"]) < tx.index
        ]
        note = ""
        drawn: list[str]
        try:
            drawn = [
                to_checksum_address(a)
                for a in c.call(
                    stakes.functions.drawDistinct(seed, count, exclude, min_weight, weights_block), block=parent
                )
            ]
        except Exception as exc:
            drawn, note = [], f"eth_call at block {parent} failed ({type(exc).__name__}: {exc})"
        weights: dict[str, int] = {}
        for who in {*drawn, *members, *exclude}:
            try:
                weights[to_checksum_address(who)] = int(
                    c.call(stakes.functions.drawWeightAt(who, weights_block), block=parent)
                )
            except Exception:
                pass
        if earlier and not note:
            note = (
                f"{len(earlier)} StakeManager log(s) from earlier transactions of block {tx.block}: the state the "
                f"contract drew from is not the state at the end of block {parent}"
            )
        return Draw(
            block=parent,
            weights_block=weights_block,
            seed=to_hex(seed),
            count=count,
            exclude=[to_checksum_address(a) for a in exclude],
            drawn=drawn,
            exact=not earlier and not note,
            weights=weights,
            note=note,
            min_weight=min_weight,
        )


def _seed_blocks(txs: list[Tx], after_open_leaf: bool) -> set[int]:
    out: set[int] = set()
    for t in txs:
        for e in t.events:
            if "seedBlock" in e.args:
                out.add(int(e.args["seedBlock"]))
            if after_open_leaf and e.name == "LeafOpened":
                out.add(t.block + 1)
    return out


def _word(topic: int | bytes) -> bytes:
    return topic.to_bytes(32, "big") if isinstance(topic, int) else bytes(topic)


def arbiter_lock(game: dict[str, Any], job_stake: int) -> int:
    """What each arbiter locks in a dispute over ``job_stake``: max(arbiterStake, job stake · arbiterStakeBps / 10 000)
    (``DisputeGame.arbiterLockFor``)."""
    return max(int(game["arbiterStake"]), job_stake * int(game["arbiterStakeBps"]) // BPS)


def dispute_bond_for(game: dict[str, Any], job_stake: int, price: int) -> int:
    """The bond a challenger locks to dispute a job of ``job_stake`` and ``price``: max(disputeBond, (job stake +
    price) · disputeBondBps / 10 000) (``DisputeGame.disputeBondFor``; docs/parameters.md sizes it)."""
    return max(int(game["disputeBond"]), (job_stake + price) * int(game["disputeBondBps"]) // BPS)


def read_publication(client: ChainClient, job_id: bytes, leaf: int, start_block: int) -> dict[str, Any] | None:
    """What the chain holds of leaf ``leaf``'s publication (see ``DisputeRecord.publication``), None if none."""
    pub = client.state_publisher
    ev = published_event(client, job_id, leaf, start_block)
    if ev is None:
        return None
    tx = client.with_retries("eth_getTransactionByHash", lambda: client.w3.eth.get_transaction(ev["transactionHash"]))
    _, args = pub.decode_function_input(tx["input"])
    block = client.with_retries("eth_getBlockByNumber", lambda: client.w3.eth.get_block(ev["blockNumber"]))
    out: dict[str, Any] = {
        "leaf": leaf,
        "block": int(ev["blockNumber"]),
        "timestamp": int(block["timestamp"]),
        "publisher": to_checksum_address(ev["args"]["publisher"]),
        "root": to_hex(bytes(ev["args"]["root"])),
        "tx": to_hex(bytes(ev["transactionHash"])),
        "proof": [to_hex(bytes(p)) for p in args["proof"]],
    }
    try:
        data = read_published(client, job_id, leaf, start_block)
        out["bytes_root"] = to_hex(chunked_root([data or b""], threads=False))
    except PublicationError as exc:
        out["bytes_root"], out["bytes_error"] = None, str(exc)
    return out


def read_dispute(client: ChainClient, dispute_id: int) -> DisputeRecord:
    """Builds the record of dispute ``dispute_id`` from the chain."""
    r = ChainReader(client)
    logs = r.logs("DisputeGame", _word(dispute_id))
    if not logs:
        raise AuditReadError(
            f"no events of dispute {dispute_id} on chain {client.deployment.chain_id} (DisputeGame "
            f"{client.dispute_game.address}, from block {r.start_block}): wrong id, RPC or deployment?"
        )
    txs = r.txs_of(logs)
    opened = [e for t in txs for e in t.events_named("DisputeOpened", "DisputeGame")]
    if not opened:
        raise AuditReadError(f"dispute {dispute_id} has events but no DisputeOpened")
    job_id = from_hex(opened[0].args["jobId"])
    job_txs = r.txs_of(r.logs("JobMarket", job_id))
    params = r.params()
    blocks = {str(n): r.block_info(n) for n in sorted(_seed_blocks(txs, True))}
    draw = None
    drawn_tx = next((t for t in txs if t.events_named("CommitteeDrawn")), None)
    matched = next((e for t in job_txs for e in t.events_named("JobMatched")), None)
    if drawn_tx is not None and matched is not None:
        ev = drawn_tx.events_named("CommitteeDrawn")[0]
        exclude = [opened[0].args["solver"], opened[0].args["challenger"], matched.args["submitter"]]
        size = int(params["game"]["committeeSize"])
        lock = arbiter_lock(params["game"], int(matched.args["stake"]))
        seed_block = int(client.call(client.dispute_game.functions.getDispute(dispute_id)).seedBlock)
        draw = r.draw(
            drawn_tx,
            from_hex(ev.args["seed"]),
            size,
            exclude,
            list(ev.args["arbiters"]),
            draw_weights_block(seed_block),
            lock,
        )
    unavailable = to_hex(bytes(client.call(client.dispute_game.functions.UNAVAILABLE())))
    asked = [e for t in txs for e in t.events_named("AvailabilityRequested", "DisputeGame")]
    publication = read_publication(client, job_id, int(asked[0].args["leaf"]), r.start_block) if asked else None
    return DisputeRecord(
        chain_id=client.deployment.chain_id,
        contracts=r.contracts(),
        params=params,
        dispute_id=dispute_id,
        job_id=to_hex(job_id),
        txs=txs,
        job_txs=job_txs,
        blocks=blocks,
        committee_draw=draw,
        unavailable=unavailable,
        publication=publication,
    )


def read_job(client: ChainClient, job_id: bytes) -> JobRecord:
    """Builds the record of job ``job_id`` from the chain (its disputes are read separately)."""
    r = ChainReader(client)
    txs = r.txs_of(r.logs("JobMarket", job_id))
    if not txs:
        raise AuditReadError(
            f"no events of job {to_hex(job_id)} on chain {client.deployment.chain_id} (JobMarket "
            f"{client.job_market.address}): wrong id, RPC or deployment?"
        )
    params = r.params()
    blocks = {str(n): r.block_info(n) for n in sorted(_seed_blocks(txs, False))}
    draw = None
    drawn = next((t for t in txs if t.events_named("AuditDrawn")), None)
    matched = next((e for t in txs for e in t.events_named("JobMatched")), None)
    if drawn is not None and matched is not None:
        seed = from_hex(drawn.events_named("AuditDrawn")[0].args["seed"])
        draw_seed = keccak(abi_encode(["bytes32", "bytes32"], [seed, VERIFIER_DRAW_TAG]))
        exclude = [matched.args["solver"], matched.args["submitter"]]
        verifiers = list(drawn.events_named("AuditDrawn")[0].args["verifiers"])
        seed_block = int(client.call(client.job_market.functions.getJob(job_id)).seedBlock)
        draw = r.draw(
            drawn,
            draw_seed,
            int(params["market"]["verifiersPerJob"]),
            exclude,
            verifiers,
            draw_weights_block(seed_block),
        )
    disputes = sorted({int(e.args["disputeId"]) for t in txs for e in t.events_named("JobDisputed", "JobMarket")})
    return JobRecord(
        chain_id=client.deployment.chain_id,
        contracts=r.contracts(),
        params=params,
        job_id=to_hex(job_id),
        txs=txs,
        blocks=blocks,
        audit_draw=draw,
        dispute_ids=disputes,
    )
