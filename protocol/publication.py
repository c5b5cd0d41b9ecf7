"""Checkpoints published on chain: the answer to an availability challenge (``contracts/src/StatePublisher.sol``).

A solver challenged to make leaf ``i`` available (``DisputeGame.requestAvailability``, phase ``AwaitingData``)
publishes that checkpoint's canonical state bytes in the calldata of ``StatePublisher.publish`` calls; the
contract checks that they hash (DESIGN §3, chunked RFC 9162 root) to leaf ``i`` of the committed trajectory.
Everyone then reads the bytes back from those transactions: each call emits ``StateBytes(jobId, leaf,
publisher, offset, length)``, the last one ``StatePublished(jobId, leaf, publisher, root)``.

:func:`publish_leaf` is resumable (it continues from what this publisher already fed, so a solver killed
mid-publication goes on where it stopped); :func:`read_published` trusts nothing from the RPC node: it
rebuilds the bytes from the transactions' calldata and checks their state root against the published root,
which the contract checked against the trajectory.

An answered challenge (outcome ``Published``) holds ``availabilityFeeBps`` of the challenger's bond until the job
ends; :func:`settle_fees` then pays it to the solver, or back to the challenger if the job ended slashed.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from eth_utils import to_checksum_address
from web3.logs import DISCARD

from protocol.chain import ChainClient
from protocol.constants import Outcome
from protocol.errors import ContractRevert
from protocol.state import chunked_root

CHUNK = 4096
#: Bytes per publish transaction: 128 KiB of calldata is about 2.1 M gas, well inside a block.
PIECE = 32 * CHUNK


class PublicationError(ValueError):
    """Published bytes could not be read back, or do not hash to the published root."""


def publish_leaf(
    client: ChainClient, job_id: bytes, leaf: int, data: bytes, proof: list[bytes], piece: int = PIECE
) -> int:
    """Publishes ``data`` (leaf ``leaf``'s state bytes) from ``client``'s account, ``piece`` bytes per
    transaction, the last with ``proof`` (the leaf's inclusion proof in the trajectory). Returns the bytes sent
    now (0 if the leaf was published already, by anyone)."""
    if piece <= 0 or piece % CHUNK:
        raise ValueError(f"piece must be a positive multiple of {CHUNK}, got {piece}")
    pub = client.state_publisher
    if int(client.call(pub.functions.publishedAt(job_id, leaf))):
        return 0
    offset = int(client.call(pub.functions.bytesFed(job_id, leaf, client.address)))
    if offset > len(data) or offset % CHUNK:
        # Fed by an earlier run of something else under this key: start over.
        client.transact(pub.functions.restart(job_id, leaf))
        offset = 0
    sent = 0
    while True:
        end = min(len(data), offset + piece)
        last = end == len(data)
        client.transact(pub.functions.publish(job_id, leaf, data[offset:end], last, proof if last else []))
        sent += end - offset
        offset = end
        if last:
            return sent


def settle_fees(client: ChainClient, job_id: bytes) -> list[tuple[int, str, int]]:
    """Settles the fees still held by the answered availability challenges of ``job_id`` (which has ended), from
    ``client``'s account (anyone may). Returns (dispute id, recipient, fee) for each fee settled now."""
    game = client.dispute_game
    asked = client.with_retries(
        "eth_getLogs AvailabilityRequested",
        lambda: game.events.AvailabilityRequested().get_logs(
            argument_filters={"jobId": job_id}, from_block=client.deployment.start_block
        ),
    )
    done: list[tuple[int, str, int]] = []
    for ev in asked:
        dispute_id = int(ev["args"]["disputeId"])
        if Outcome(client.call(game.functions.getDispute(dispute_id)).outcome) != Outcome.PUBLISHED:
            continue
        try:
            receipt = client.transact(game.functions.settleAvailabilityFee(dispute_id))
        except ContractRevert as exc:
            if exc.name == "NoFeeHeld":
                continue  # settled already (by anyone), or a zero fee
            raise
        for settled in game.events.AvailabilityFeeSettled().process_receipt(receipt, errors=DISCARD):
            done.append((dispute_id, to_checksum_address(settled["args"]["to"]), int(settled["args"]["fee"])))
    return done


def published_event(client: ChainClient, job_id: bytes, leaf: int, from_block: int | None = None) -> Any | None:
    """The ``StatePublished`` event of leaf ``leaf`` of ``job_id`` (there is at most one), or None."""
    start = client.deployment.start_block if from_block is None else from_block
    done = client.with_retries(
        "eth_getLogs StatePublished",
        lambda: client.state_publisher.events.StatePublished().get_logs(
            argument_filters={"jobId": job_id, "leaf": leaf}, from_block=start
        ),
    )
    return done[0] if done else None


def read_published(client: ChainClient, job_id: bytes, leaf: int, from_block: int | None = None) -> bytes | None:
    """The published state bytes of leaf ``leaf`` of ``job_id``, rebuilt from calldata and checked against the
    published root; None if it is not published."""
    pub = client.state_publisher
    start = client.deployment.start_block if from_block is None else from_block
    event = published_event(client, job_id, leaf, start)
    if event is None:
        return None
    publisher = to_checksum_address(event["args"]["publisher"])
    root = bytes(event["args"]["root"])
    pieces = client.with_retries(
        "eth_getLogs StateBytes",
        lambda: pub.events.StateBytes().get_logs(
            argument_filters={"jobId": job_id, "leaf": leaf, "publisher": publisher},
            from_block=start,
            to_block=int(event["blockNumber"]),
        ),
    )
    # What the contract's hasher absorbed: walking back from the publishing transaction's piece, each time the
    # latest earlier piece that ends where the chain starts, down to offset 0 (pieces fed before a restart, the
    # only others there can be, are older than every piece of the run that completed).
    final_tx = bytes(event["transactionHash"])
    ordered = sorted(pieces, key=lambda ev: (int(ev["blockNumber"]), int(ev["logIndex"])))
    finals = [i for i, ev in enumerate(ordered) if bytes(ev["transactionHash"]) == final_tx]
    if not finals:
        raise PublicationError(f"no StateBytes event in the transaction that published leaf {leaf}")
    chain = [ordered[finals[-1]]]
    for ev in reversed(ordered[: finals[-1]]):
        start = int(chain[-1]["args"]["offset"])
        if start == 0:
            break
        if int(ev["args"]["offset"]) + int(ev["args"]["length"]) == start:
            chain.append(ev)
    if int(chain[-1]["args"]["offset"]) != 0:
        raise PublicationError(f"the pieces of leaf {leaf} of job 0x{job_id.hex()} do not reach back to byte 0")
    data = bytearray()
    for ev in reversed(chain):
        tx_hash = ev["transactionHash"]
        tx = client.with_retries("eth_getTransactionByHash", partial(client.w3.eth.get_transaction, tx_hash))
        data += _publish_data(pub, tx, job_id, leaf)
    got = chunked_root([bytes(data)], threads=False)
    if got != root:
        raise PublicationError(
            f"the calldata of leaf {leaf}'s publication hashes to 0x{got.hex()}, not the published root "
            f"0x{root.hex()}: the RPC node served other transactions"
        )
    return bytes(data)


def read_published_into(cache: Any, client: ChainClient, job_id: bytes, leaf: int) -> int | None:
    """Reads leaf ``leaf``'s published bytes (checked as :func:`read_published`) into the blob store ``cache``;
    returns their size, None if the leaf is not published (a cheap ``publishedAt`` call decides that first)."""
    if not int(client.call(client.state_publisher.functions.publishedAt(job_id, leaf))):
        return None
    data = read_published(client, job_id, leaf)
    if data is None:
        return None
    cache.put_state(data)
    return len(data)


def _publish_data(pub: Any, tx: Any, job_id: bytes, leaf: int) -> bytes:
    fn, args = pub.decode_function_input(tx["input"])
    if fn.fn_name != "publish" or bytes(args["jobId"]) != job_id or int(args["leaf"]) != leaf:
        raise PublicationError(f"transaction 0x{bytes(tx['hash']).hex()} is not a publish of leaf {leaf}")
    return bytes(args["data"])
