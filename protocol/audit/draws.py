"""What every draw must satisfy, audit and committee alike (contracts/src/libraries/DrawSeed.sol).

A draw's seed is the RANDAO value of its seed block, read from a header that hashes to the block hash; its
weights are those at the end of ``seed block - 2``, before the block whose transaction fixed the seed block.
"""

from __future__ import annotations

from typing import Any

from protocol.audit.record import Draw, from_hex
from protocol.audit.verdict import Violation, require
from protocol.sampling import draw_weights_block


def seed_randao(blocks: dict[str, dict[str, Any]], seed_block: int) -> bytes:
    """The RANDAO value the record holds for ``seed_block`` (its header checked against its hash)."""
    info = blocks.get(str(seed_block))
    if info is None or not info.get("hash"):
        raise Violation(f"the record lacks seed block {seed_block}")
    if not info.get("randao"):
        raise Violation(
            f"seed block {seed_block}'s RANDAO value is not proven: {info.get('header_error', 'no header')}"
        )
    return from_hex(info["randao"])


def check_draw_weights(draw: Draw, seed_block: int, members: list[str], need: int) -> str:
    """The re-run draw read the weights of ``seed_block - 2``, and every member drawn weighed ``need`` then."""
    want = draw_weights_block(seed_block)
    require(
        draw.weights_block == want,
        f"the draw was re-run with the weights of block {draw.weights_block}, seed block {seed_block} gives {want}",
    )
    light = [m for m in members if draw.weights.get(m, 0) < need]
    require(not light, f"{light} weighed less than {need} at the end of block {want}, the draw's weights block")
    return f"{len(members)} drawn by the weights at the end of block {want} (seed block {seed_block}), each >= {need}"
