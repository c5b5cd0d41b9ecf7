"""Follow the protocol's contract events from a persisted cursor, with a confirmation depth and reorg rollback.

``EventFollower(client, cursor_path, handler=h, confirmations=N)`` reads every event of the four protocol
contracts in block order, decoded with the artifact ABIs into :class:`ChainEvent`, and hands them to the
handler block by block, only up to ``head - confirmations``.

**Handler protocol** (:class:`EventHandler`): ``apply(events, block_number, block_hash)`` is called once per
block that has events, in block order; it must be idempotent per ``(tx_hash, log_index)`` (after a crash a
block may be applied again). ``rollback(block_number)`` must delete everything stored *above*
``block_number``. A new follower instance first calls ``rollback(cursor block)``: anything applied after
the cursor was last saved (a crash in between) is dropped and re-applied from the canonical chain.

**Cursor.** A JSON file written atomically (:mod:`protocol.atomic`): chain id and contract addresses (a
cursor of another deployment is refused), the last processed block's number and hash, and the hashes of
the last ``window`` processed blocks.

**Reorgs.** Each poll first compares the cursor block's hash with the chain's. On a mismatch it walks back
through the stored hashes to the newest block still canonical (the common ancestor), calls
``handler.rollback(ancestor)``, rewinds the cursor and re-applies from there: nothing duplicated, nothing
lost. The newest ``window`` blocks below the confirmation target are read block by block: the header's
``parentHash`` must equal the hash stored for the block before (else: reorg, as above) and the logs are
fetched by block hash (EIP-234), so the events applied always belong to the recorded block. Older blocks
(catching up) are read with ranged ``eth_getLogs`` in ``batch_blocks`` steps; a reorg deeper than the
window cannot be located and triggers a full re-sync from the deployment block.

**Outages.** Every RPC goes through the client's retry policy; :meth:`EventFollower.run` keeps polling
through :class:`~protocol.errors.RpcUnavailable` (logged, with growing pauses) and resumes from its cursor
when the node is back.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from eth_utils import event_abi_to_log_topic, to_checksum_address
from eth_utils.abi import abi_to_signature
from hexbytes import HexBytes
from web3.exceptions import BlockNotFound, Web3RPCError
from web3.types import BlockData, LogReceipt

from protocol.atomic import atomic_write_json
from protocol.chain import ChainClient
from protocol.errors import CursorError, RpcUnavailable

log = logging.getLogger("veritrain.events")
CURSOR_VERSION = 1
ZERO_HASH = b"\x00" * 32
#: A poll gives up (until the next one) after the chain moved under it this many times in a row.
MAX_RESTARTS = 8


@dataclass(frozen=True)
class ChainEvent:
    """One decoded log of a protocol contract."""

    contract: str  # VeriToken / StakeManager / JobMarket / DisputeGame
    name: str  # the event name ("JobMatched"); "<unknown>" for a topic no ABI knows
    args: dict[str, Any]
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int
    address: str

    @property
    def key(self) -> tuple[bytes, int]:
        """The identity of a log on one chain: (transaction hash, log index in its block)."""
        return (self.tx_hash, self.log_index)


class EventHandler(Protocol):
    """What an :class:`EventFollower` feeds (the marketplace indexer, a node's job tracker, a test)."""

    def apply(self, events: Sequence[ChainEvent], block_number: int, block_hash: bytes) -> None:
        """Store one block's events; idempotent per (tx_hash, log_index)."""

    def rollback(self, block_number: int) -> None:
        """Delete everything stored for blocks above ``block_number``."""


@dataclass
class Cursor:
    """The last processed block and the hashes of the recent processed blocks (for reorg detection)."""

    block: int
    hash: bytes
    recent: dict[int, bytes] = field(default_factory=dict)

    def advance(self, number: int, block_hash: bytes, window: int) -> None:
        self.block, self.hash = number, block_hash
        self.recent[number] = block_hash
        if len(self.recent) > window:
            for old in sorted(self.recent)[: len(self.recent) - window]:
                del self.recent[old]

    def rewind(self, number: int, block_hash: bytes) -> None:
        self.block, self.hash = number, block_hash
        self.recent = {n: h for n, h in self.recent.items() if n < number}
        self.recent[number] = block_hash


class EventDecoder:
    """Decodes raw logs of the protocol contracts with their artifact ABIs."""

    def __init__(self, client: ChainClient) -> None:
        self._by_address: dict[str, tuple[str, Any, dict[bytes, str]]] = {}
        for name, contract in client.contracts.items():
            topics = {
                event_abi_to_log_topic(entry): abi_to_signature(entry)  # type: ignore[arg-type]
                for entry in contract.abi
                if entry.get("type") == "event" and not entry.get("anonymous")
            }
            self._by_address[contract.address.lower()] = (name, contract, topics)

    @property
    def addresses(self) -> list[str]:
        return [to_checksum_address(a) for a in self._by_address]

    def decode(self, raw: LogReceipt) -> ChainEvent:
        address = str(raw["address"])
        name, contract, topics = self._by_address[address.lower()]
        topic0 = bytes(raw["topics"][0]) if raw["topics"] else b""
        signature = topics.get(topic0)
        if signature is None:
            log.warning("log %s/%d of %s has an unknown topic", HexBytes(raw["transactionHash"]).to_0x_hex(),
                        raw["logIndex"], name)  # fmt: skip
            event_name = "<unknown>"
            args: dict[str, Any] = {"topics": [bytes(t) for t in raw["topics"]], "data": bytes(raw["data"])}
        else:
            decoded = contract.events[signature]().process_log(raw)
            event_name, args = str(decoded["event"]), dict(decoded["args"])
        return ChainEvent(
            contract=name,
            name=event_name,
            args=args,
            block_number=int(raw["blockNumber"]),
            block_hash=bytes(raw["blockHash"]),
            tx_hash=bytes(raw["transactionHash"]),
            log_index=int(raw["logIndex"]),
            address=to_checksum_address(address),
        )


class _Restart(Exception):
    """Internal: the chain moved under a poll (block vanished in a reorg); re-check from the cursor."""


class EventFollower:
    """Follows all events of the deployment's five contracts into ``handler`` (see the module docs)."""

    def __init__(
        self,
        client: ChainClient,
        cursor_path: str | Path,
        *,
        handler: EventHandler,
        confirmations: int = 2,
        batch_blocks: int = 500,
        window: int = 64,
        start_block: int | None = None,
    ) -> None:
        if confirmations < 0 or batch_blocks < 1 or window < 1:
            raise ValueError("confirmations must be >= 0, batch_blocks and window >= 1")
        self.client = client
        self.cursor_path = Path(cursor_path)
        self.handler = handler
        self.confirmations = confirmations
        self.batch_blocks = batch_blocks
        self.window = window
        self.start_block = client.deployment.start_block if start_block is None else start_block
        self.decoder = EventDecoder(client)
        self._cursor: Cursor | None = None
        self._recovered = False
        self._lock = threading.Lock()  # one poll at a time

    # ---------------------------------------------------------------- cursor file

    @property
    def cursor(self) -> Cursor | None:
        """The cursor in memory (None before the first poll)."""
        return self._cursor

    def _identity(self) -> dict[str, Any]:
        return {"chainId": self.client.deployment.chain_id, "addresses": dict(self.client.deployment.addresses)}

    def _load(self) -> Cursor | None:
        try:
            data = json.loads(self.cursor_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            raise CursorError(f"event cursor {self.cursor_path} is unreadable ({exc}); delete it to re-sync") from exc
        try:
            if data.get("version") != CURSOR_VERSION:
                raise CursorError(f"event cursor {self.cursor_path} has unsupported version {data.get('version')}")
            ident = self._identity()
            if (
                int(data["chainId"]) != ident["chainId"]
                or {k: to_checksum_address(v) for k, v in data["addresses"].items()} != ident["addresses"]
            ):
                raise CursorError(
                    f"event cursor {self.cursor_path} belongs to another deployment (chain {data['chainId']}, "
                    f"{data['addresses']}); use another cursor path or delete it to re-sync"
                )
            return Cursor(
                block=int(data["block"]),
                hash=bytes(HexBytes(data["hash"])),
                recent={int(n): bytes(HexBytes(h)) for n, h in data["recent"]},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, CursorError):
                raise
            raise CursorError(f"event cursor {self.cursor_path} is malformed ({exc!r}); delete it to re-sync") from exc

    def _save(self, cursor: Cursor) -> None:
        atomic_write_json(
            self.cursor_path,
            {
                "version": CURSOR_VERSION,
                **self._identity(),
                "block": cursor.block,
                "hash": HexBytes(cursor.hash).to_0x_hex(),
                "recent": [[n, HexBytes(h).to_0x_hex()] for n, h in sorted(cursor.recent.items())],
            },
        )

    def _initial(self) -> Cursor:
        before = self.start_block - 1
        block_hash = self._header(before)["hash"] if before >= 0 else ZERO_HASH
        return Cursor(before, bytes(block_hash), {before: bytes(block_hash)})

    # ---------------------------------------------------------------- RPC helpers

    def _header(self, number: int) -> BlockData:
        return self.client.with_retries(f"eth_getBlockByNumber {number}", lambda: self.client.w3.eth.get_block(number))

    def _header_or_none(self, number: int) -> BlockData | None:
        try:
            return self._header(number)
        except BlockNotFound:
            return None

    # ---------------------------------------------------------------- polling

    def poll_once(self, stop: threading.Event | None = None) -> int:
        """Processes every block up to ``head - confirmations`` (checking for a reorg first); returns the
        number of events applied. Raises RpcUnavailable when the node stays away (the cursor is kept)."""
        with self._lock:
            self.client.ensure_chain()
            if self._cursor is None:
                self._cursor = self._load() or self._initial()
            cursor = self._cursor
            if not self._recovered:
                self.handler.rollback(cursor.block)  # drop what a crashed predecessor applied past the cursor
                self._recovered = True
            applied = restarts = 0
            while (stop is None or not stop.is_set()) and restarts <= MAX_RESTARTS:
                self._check_reorg(cursor)
                target = self.client.block_number() - self.confirmations
                if cursor.block >= target:
                    break
                try:
                    if target - cursor.block > self.window:
                        applied += self._range_step(cursor, min(cursor.block + self.batch_blocks, target - self.window))
                    else:
                        applied += self._block_steps(cursor, min(cursor.block + self.batch_blocks, target))
                except _Restart as why:
                    restarts += 1
                    log.info("chain moved during the poll (%s); re-checking from block %d", why, cursor.block)
                finally:
                    self._save(cursor)
            return applied

    def _check_reorg(self, cursor: Cursor) -> None:
        if cursor.block < 0:
            return
        header = self._header_or_none(cursor.block)
        if header is not None and bytes(header["hash"]) == cursor.hash:
            return
        ancestor: tuple[int, bytes] | None = None
        for number in sorted(cursor.recent, reverse=True):
            if number >= cursor.block:
                continue
            canonical = self._header_or_none(number)
            if canonical is not None and bytes(canonical["hash"]) == cursor.recent[number]:
                ancestor = (number, cursor.recent[number])
                break
        if ancestor is None:
            before = self.start_block - 1
            log.error(
                "reorg deeper than the %d stored block hashes below block %d: re-syncing from block %d",
                self.window, cursor.block, self.start_block,
            )  # fmt: skip
            ancestor = (before, bytes(self._header(before)["hash"]) if before >= 0 else ZERO_HASH)
        log.warning("reorg: block %d is no longer canonical; rolling back to block %d", cursor.block, ancestor[0])
        self.handler.rollback(ancestor[0])
        cursor.rewind(*ancestor)
        self._save(cursor)

    def _range_step(self, cursor: Cursor, end: int) -> int:
        """Blocks ``cursor+1 .. end``, all deeper than the reorg window: one ranged eth_getLogs."""
        start = cursor.block + 1
        params = {"fromBlock": start, "toBlock": end, "address": self.decoder.addresses}
        try:
            raw = self.client.with_retries(
                f"eth_getLogs {start}..{end}",
                lambda: self.client.w3.eth.get_logs(params),  # type: ignore[arg-type]
            )
        except Web3RPCError as exc:  # e.g. a provider's cap on the range or result size: split the range
            if end == start:
                raise
            mid = (start + end) // 2
            log.info("eth_getLogs %d..%d refused (%s); splitting at %d", start, end, exc, mid)
            return self._range_step(cursor, mid) + self._range_step(cursor, end)
        end_header = self._header_or_none(end)
        if end_header is None:
            raise _Restart(f"block {end} vanished")
        end_hash = bytes(end_header["hash"])
        events = sorted((self.decoder.decode(r) for r in raw), key=lambda e: (e.block_number, e.log_index))
        by_block: dict[int, list[ChainEvent]] = {}
        for event in events:
            by_block.setdefault(event.block_number, []).append(event)
        for number, block_events in by_block.items():
            hashes = {e.block_hash for e in block_events}
            if len(hashes) != 1 or (number == end and hashes != {end_hash}):
                raise _Restart(f"logs of block {number} from different forks")
        for number, block_events in by_block.items():
            self.handler.apply(block_events, number, block_events[0].block_hash)
        cursor.advance(end, end_hash, self.window)
        return len(events)

    def _block_steps(self, cursor: Cursor, end: int) -> int:
        """Blocks ``cursor+1 .. end`` one at a time, each linked to the previous by parentHash and its logs
        fetched by block hash."""
        applied = 0
        for number in range(cursor.block + 1, end + 1):
            header = self._header_or_none(number)
            if header is None:
                raise _Restart(f"block {number} vanished")
            if bytes(header["parentHash"]) != cursor.hash:
                raise _Restart(f"block {number} does not extend block {cursor.block}")
            block_hash = bytes(header["hash"])
            params = {"blockHash": HexBytes(block_hash), "address": self.decoder.addresses}
            try:
                raw = self.client.with_retries(
                    f"eth_getLogs block {number}",
                    lambda: self.client.w3.eth.get_logs(params),  # type: ignore[arg-type]  # noqa: B023
                )
            except Web3RPCError as exc:  # "unknown block": replaced between the two requests
                raise _Restart(f"block {number} ({HexBytes(block_hash).to_0x_hex()}): {exc}") from exc
            events = sorted((self.decoder.decode(r) for r in raw), key=lambda e: e.log_index)
            if any(e.block_hash != block_hash for e in events):
                raise _Restart(f"logs of block {number} from another fork")
            if events:
                self.handler.apply(events, number, block_hash)
                applied += len(events)
            cursor.advance(number, block_hash, self.window)
        return applied

    def run(self, stop: threading.Event, interval: float = 1.0, *, max_pause: float = 30.0) -> None:
        """Polls every ``interval`` seconds until ``stop`` is set. An unreachable node (or one answering
        JSON-RPC errors) is logged and retried with growing pauses (up to ``max_pause``); the cursor stays
        where it was. Handler errors, a chain id mismatch and cursor errors stop the loop (raised)."""
        failures = 0
        while not stop.is_set():
            try:
                self.poll_once(stop)
                failures = 0
            except (RpcUnavailable, Web3RPCError) as exc:  # node away, or answering errors: not ours to fix
                failures += 1
                log.warning(
                    "event follower: %s; keeping the cursor at block %s and trying again",
                    exc, self._cursor.block if self._cursor else "?",
                )  # fmt: skip
            pause = interval if failures == 0 else min(max_pause, interval * 2 ** min(failures, 16))
            stop.wait(pause)


__all__ = ["ChainEvent", "Cursor", "EventDecoder", "EventFollower", "EventHandler"]
