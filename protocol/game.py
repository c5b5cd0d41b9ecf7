"""Shared rules for playing the dispute game from Python (DESIGN §8): the phases of ``IDisputeGame``, which
reverts only mean "the chain moved on", and the permissionless duties any party may perform. The solver's
defender (``solver/defence.py``) and the verifier's challenger and arbiter (``verifier/``) build on this;
the nodes never import each other.
"""

from __future__ import annotations

import logging
from typing import Any

from protocol.chain import ChainClient
from protocol.constants import Phase
from protocol.errors import ContractRevert

log = logging.getLogger("veritrain.game")


#: What the players' ``step`` returns when it sent nothing (``"missed"``: an arbiter's deadline passed).
IDLE = frozenset({"wait", "resolved", "not-party", "missed"})

#: Reverts that only mean the chain moved on between our read and our send (another party, or our own
#: earlier incarnation, already made a move): the right reaction is to read again, not to fail.
RACE_ERRORS = frozenset(
    {
        "WrongPhase",
        "ClockNotExpired",
        "SeedNotReady",
        "VotingNotOver",
        "RevealNotOpen",
        "AlreadyCommitted",
        "AlreadyRevealed",
    }
)


def latest_timestamp(client: ChainClient) -> int:
    """The latest block's timestamp: the clock the contract's next transaction is checked against (at least)."""
    return int(client.with_retries("eth_getBlock", lambda: client.w3.eth.get_block("latest")["timestamp"]))


def settlement_duty(client: ChainClient, dispute_id: int, d: Any, *, mover_clock_out: bool) -> str | None:
    """The permissionless moves anyone may make on dispute ``d``: ``confirmPublished`` once the leaf an
    availability challenge names is on the StatePublisher, ``drawCommittee`` once its seed block is
    mined, ``resolve`` after the reveal deadline, and ``timeout`` when ``mover_clock_out`` (the caller has
    checked that the party to move is the *other* one and its clock ran out). Returns the move sent, if any."""
    game = client.dispute_game
    phase = Phase(d.phase)
    if phase == Phase.AWAITING_DATA and client.call(
        client.state_publisher.functions.publishedAt(bytes(d.jobId), int(d.lo))
    ):
        return send_move(client, "confirm-published", game.functions.confirmPublished(dispute_id))
    if phase == Phase.AWAITING_COMMITTEE and client.block_number() > d.seedBlock:
        header = client.seed_header(int(d.seedBlock))
        return send_move(client, "draw-committee", game.functions.drawCommittee(dispute_id, header))
    if phase == Phase.VOTING and latest_timestamp(client) >= d.revealDeadline:
        return send_move(client, "resolve", game.functions.resolve(dispute_id))
    if mover_clock_out:
        return send_move(client, "timeout", game.functions.timeout(dispute_id))
    return None


def send_move(client: ChainClient, label: str, fn: Any) -> str:
    """Sends ``fn``; returns ``label``, or ``"wait"`` if the move lost a race with the chain."""
    try:
        client.transact(fn)
    except ContractRevert as exc:
        if exc.name in RACE_ERRORS:
            log.info("%s not sent: %s (the game moved on; reading it again next step)", label, exc.name)
            return "wait"
        raise
    log.info("dispute move sent: %s", label)
    return label


def clock_out(client: ChainClient, d: Any, *, challenger_moves: bool) -> bool:
    """True when the party to move (the challenger if ``challenger_moves``) has spent its chess clock."""
    left = d.challengerClock if challenger_moves else d.solverClock
    return latest_timestamp(client) > int(d.lastMoveAt) + int(left)
