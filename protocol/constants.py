"""The protocol's enums and unit constants, one copy for every Python part (nodes, CLI, API, auditor).

The enums mirror the Solidity ones member by member (``IJobMarket.JobState``, ``IDisputeGame.Phase``,
``IDisputeGame.Outcome``, ``IDisputeGame.VoteStatus``): the integer is what the contract stores and emits, the
member name is the Solidity name in UPPER_SNAKE_CASE. ``tests/test_constants.py`` reads the Solidity sources and
fails if either side has a member the other lacks, or in another order.

:func:`api_name` is the lower-snake name the marketplace API serves (``"challenger_won"``), so web pages and
other clients need no table of integers.
"""

from __future__ import annotations

import re
from enum import IntEnum

#: Decimals of the stake/payment token (VeriToken, as any ERC-20 the deployment names): 1 token = 10**18 wei.
TOKEN_DECIMALS = 18
WEI_PER_TOKEN = 10**TOKEN_DECIMALS
#: Basis points: 10 000 bps = 100 %, the unit of every rate parameter of the contracts.
BPS = 10_000


class JobState(IntEnum):
    """``IJobMarket.JobState``."""

    NONE = 0
    MATCHED = 1
    COMMITTED = 2
    DISPUTED = 3
    FINALIZED = 4
    SLASHED = 5
    EXPIRED = 6
    VOIDED = 7  # a dispute found no full committee in time: submitter refunded, stake unlocked, no pay


#: States a job never leaves.
FINAL_JOB_STATES = frozenset({JobState.FINALIZED, JobState.SLASHED, JobState.EXPIRED, JobState.VOIDED})


class Phase(IntEnum):
    """``IDisputeGame.Phase``: whose move it is."""

    NONE = 0
    AWAITING_REVEAL = 1  # solver: reveal the children of the current node
    AWAITING_CHOICE = 2  # challenger: pick left or right
    AWAITING_LEAF = 3  # solver: open the single remaining leaf
    AWAITING_COMMITTEE = 4  # anyone: draw the committee once the seed block is mined
    VOTING = 5  # arbiters: commit, then reveal
    RESOLVED = 6
    QUEUED = 7  # filed while another dispute on the job ran: starts in filing order when those before it end
    AWAITING_DATA = 8  # availability challenge, solver: publish the named leaf on the StatePublisher


class StepPhase(IntEnum):
    """``ExactStepGame.Phase``: whose move it is in the game below one segment (DESIGN §8)."""

    NONE = 0
    AWAITING_STEP_ROOT = 1  # defender: the state root after the middle step of the disputed steps
    AWAITING_STEP_CHOICE = 2  # challenger: agree (the lie is later) or not
    AWAITING_TRACE = 3  # defender: commit the step's trace root
    AWAITING_RECORD_REVEAL = 4  # defender: reveal a node's children (records)
    AWAITING_RECORD_CHOICE = 5  # challenger: pick a side
    AWAITING_RECORD = 6  # defender: open the reached record and its inputs
    AWAITING_OUTPUT = 7  # challenger: name the disputed output
    AWAITING_LEAF_REVEAL = 8  # defender: reveal a node's children (the output's leaves)
    AWAITING_LEAF_CHOICE = 9  # challenger: pick a side
    AWAITING_LEAF = 10  # defender: open the reached leaf's bytes
    AWAITING_ELEMENT = 11  # challenger: name the disputed element
    AWAITING_SETTLE = 12  # either (the challenger's clock): recompute the element
    AWAITING_PARTIAL = 13  # defender: a long fold's partial result at the middle term
    AWAITING_PARTIAL_CHOICE = 14  # challenger: agree or not
    AWAITING_TERM_SETTLE = 15  # either (the challenger's clock): recompute the one term left
    AWAITING_TENSOR = 16  # defender: show where the agreed pre-state holds the disputed input (its manifest entry)
    AWAITING_STATE_BYTES = 17  # either (the challenger's clock): the pre-state's bytes of the reached leaf
    ENDED = 18


class Outcome(IntEnum):
    """``IDisputeGame.Outcome``."""

    NONE = 0
    SOLVER_WON = 1
    CHALLENGER_WON = 2
    NO_DECISION = 3  # the committee produced no majority: bond returned, job reopened
    SUPERSEDED = 4  # still queued when an earlier dispute slashed or voided the job: bond returned, never played
    NO_COMMITTEE = 5  # fewer than R eligible arbiters until committeeWait: job voided, nobody paid or slashed
    PUBLISHED = 6  # availability challenge answered: the leaf is on chain, job reopened, the solver earns a fee


class VoteStatus(IntEnum):
    """``IDisputeGame.VoteStatus`` of one arbiter's vote."""

    NONE = 0
    COMMITTED = 1
    REVEALED = 2


#: The Solidity enum each Python enum mirrors, as ``Interface.Enum`` (how forge's ABI ``internalType`` names it).
SOLIDITY_ENUMS: dict[str, type[IntEnum]] = {
    "IJobMarket.JobState": JobState,
    "IDisputeGame.Phase": Phase,
    "IDisputeGame.Outcome": Outcome,
    "IDisputeGame.VoteStatus": VoteStatus,
    "ExactStepGame.Phase": StepPhase,
}


def api_name(member: IntEnum) -> str:
    """The name the API serves for an enum member: ``Outcome.CHALLENGER_WON`` → ``"challenger_won"``."""
    return member.name.lower()


def api_names(enum: type[IntEnum]) -> tuple[str, ...]:
    """:func:`api_name` of every member, in integer order."""
    return tuple(api_name(m) for m in enum)


def solidity_to_python_name(name: str) -> str:
    """``ChallengerWon`` → ``CHALLENGER_WON`` (the rule that links the two sides' member names)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def enum_name(internal_type: str, value: int) -> str | None:
    """The API name of ``value`` for an ABI ``internalType`` such as ``"enum IDisputeGame.Outcome"``; ``None``
    if the type is not one of the protocol's enums or the value is out of range."""
    enum = SOLIDITY_ENUMS.get(internal_type.removeprefix("enum "))
    if enum is None:
        return None
    try:
        return api_name(enum(value))
    except ValueError:
        return None
