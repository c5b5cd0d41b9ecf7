"""Block headers as the contracts read them (``contracts/src/libraries/BlockHeader.sol``).

Every draw (the audit of a job, the committee of a dispute) is seeded by the RANDAO value of a fixed later
block: header field 13, ``mixHash``, which since the merge holds ``prevrandao``. The contract cannot read an
older block's RANDAO value itself, so whoever calls the draw passes the block's RLP-encoded header; the contract
checks that it hashes to ``blockhash(seedBlock)`` and reads field 13 from it. This module rebuilds that header
from the RPC node's block fields and checks the same hash before anything is sent or trusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rlp
from eth_utils import keccak, to_bytes

# The header fields in RLP order (Yellow Paper §4.3), then those later forks append, each in the fork's order:
# London baseFeePerGas, Shanghai withdrawalsRoot, Cancun blobGasUsed/excessBlobGas/parentBeaconBlockRoot,
# Prague requestsHash.
_BASE = (
    ("parentHash", "bytes"),
    ("sha3Uncles", "bytes"),
    ("miner", "bytes"),
    ("stateRoot", "bytes"),
    ("transactionsRoot", "bytes"),
    ("receiptsRoot", "bytes"),
    ("logsBloom", "bytes"),
    ("difficulty", "int"),
    ("number", "int"),
    ("gasLimit", "int"),
    ("gasUsed", "int"),
    ("timestamp", "int"),
    ("extraData", "bytes"),
    ("mixHash", "bytes"),
    ("nonce", "bytes"),
)
_LATER = (
    ("baseFeePerGas", "int"),
    ("withdrawalsRoot", "bytes"),
    ("blobGasUsed", "int"),
    ("excessBlobGas", "int"),
    ("parentBeaconBlockRoot", "bytes"),
    ("requestsHash", "bytes"),
)
MIX_HASH_FIELD = 13


class HeaderError(ValueError):
    """A block's header cannot be rebuilt, or does not hash to the block's hash."""


def _value(block: Mapping[str, Any], name: str, kind: str) -> int | bytes:
    raw = block[name]
    if kind == "int":
        return int(raw)
    return bytes(raw) if isinstance(raw, (bytes, bytearray)) else to_bytes(hexstr=str(raw))


def encode_header(block: Mapping[str, Any]) -> bytes:
    """The RLP encoding of ``block``'s header (a web3 block or an ``eth_getBlockByNumber`` result)."""
    try:
        fields = [_value(block, name, kind) for name, kind in _BASE]
    except KeyError as exc:
        raise HeaderError(f"block lacks header field {exc.args[0]!r}") from None
    present = [name in block and block[name] is not None for name, _ in _LATER]
    for i, (name, _) in enumerate(_LATER):
        if present[i] and not all(present[:i]):
            missing = [n for (n, _), p in zip(_LATER[:i], present[:i], strict=True) if not p]
            raise HeaderError(f"block has {name} but not the earlier fork fields {missing}")
    fields += [_value(block, name, kind) for (name, kind), p in zip(_LATER, present, strict=True) if p]
    return rlp.encode(fields)


def checked_header(block: Mapping[str, Any]) -> bytes:
    """``encode_header(block)``, after checking that it hashes to the block's own hash."""
    header = encode_header(block)
    got, want = keccak(header), bytes(block["hash"])
    if got != want:
        raise HeaderError(
            f"block {int(block['number'])}'s header rebuilt from the RPC node's fields hashes to 0x{got.hex()}, "
            f"not to the block hash 0x{want.hex()}: the node serves header fields this encoder does not know"
        )
    return header


def seed_header(w3: Any, number: int) -> bytes:
    """Block ``number``'s RLP header from ``w3``, checked against its hash (``ChainClient.seed_header`` adds
    retries)."""
    return checked_header(w3.eth.get_block(number))


def randao_of(header: bytes) -> bytes:
    """Field 13 (``mixHash`` = prevrandao) of an RLP header, as ``BlockHeader.mixHash`` reads it."""
    fields = rlp.decode(header)
    if not isinstance(fields, list) or len(fields) <= MIX_HASH_FIELD or len(fields[MIX_HASH_FIELD]) != 32:
        raise HeaderError("not an RLP header with a 32-byte field 13")
    return bytes(fields[MIX_HASH_FIELD])
