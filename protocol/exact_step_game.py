"""The exact-mode game below one segment (``contracts/src/ExactStepGame.sol``, DESIGN §8 "The game below a
step"): the step descent, the step's agreed context, the two players and a driver that plays them against the
contract.

* :func:`segment_roots` — the state roots before and after each step of a segment (what the step descent compares),
  and the trace of one of its steps.
* :func:`step_context` — the program root, the floats root and the inputs root of a traced step (what both parties
  agree before the game; in the full dispute they come from the job order and the pre-state).
* :class:`Defender` — answers for a trace it committed (honest, or a liar's doctored copy, see :func:`lie`).
* :class:`Challenger` — steers every descent towards the first leaf where the defender's tree differs from its own
  honest trace, names the first differing output and element, and settles with reads proven from its own values.
* :func:`play` — runs one game to its end, a move per transaction, and returns the winner, rounds and gas.

Every byte the other party sends is checked by the contract; the players only choose moves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from eth_abi import decode, encode
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3

from protocol import merkle
from protocol.constants import StepPhase
from protocol.repro.elements import DTYPE_CODES, element, fold_partials, fold_term, operands
from protocol.repro.trace import LEAF_BYTES, UNDEFINED, Trace, commitment, committed_bytes, element_proof
from protocol.revert import RevertDecoder, default_decoder
from protocol.state_reader import StateOpener
from protocol.tx import send

#: The ABI of an inputs-root entry: (kind, index, name, dtype code, shape, commitment); kind 1 a pre-state tensor
#: (by name, index 0), 2 an external input (by index, name "").
INPUT_ENTRY_ABI = ("uint8", "uint32", "string", "uint8", "uint32[]", "bytes32")

#: A fold element of more terms is settled one term at a time (ExactStepGame.DIRECT_TERMS).
DIRECT_TERMS = 16


#: The contracts a move's revert can come from.
GAME_CONTRACTS = ("ExactStepGame", "ElementChecker", "ElementEvaluator", "StateReader")


def decoder() -> RevertDecoder:
    return default_decoder(*GAME_CONTRACTS)


def deploy_game(w3: Web3, account: LocalAccount, clock_budget: int) -> Any:
    """Deploys ExactStepGame with its ElementEvaluator, ElementChecker and StateReader (forge artifacts) from
    ``account``; returns the game (struct results as named tuples)."""
    from protocol.artifacts import load_artifact

    def deploy(name: str, *args: Any) -> ChecksumAddress:
        art = load_artifact(name)
        receipt = send(w3, account, w3.eth.contract(abi=art.abi_list(), bytecode=art.bytecode).constructor(*args))
        address = receipt["contractAddress"]
        if address is None:
            raise GameError(f"deploying {name} created no contract")
        return Web3.to_checksum_address(address)

    checker = deploy("ElementChecker", deploy("ElementEvaluator"))
    game = deploy("ExactStepGame", checker, deploy("StateReader"), clock_budget)
    return w3.eth.contract(address=game, abi=load_artifact("ExactStepGame").abi_list(), decode_tuples=True)


def send_move(w3: Web3, account: LocalAccount, fn: Any) -> Any:
    """Sends one move (a bound ExactStepGame function); a revert is raised as its named custom error."""
    return send(w3, account, fn, decoder=decoder())


class GameError(RuntimeError):
    """A player cannot make its move (it has no data for it, or the game is not in a state it knows)."""


class GameStopped(GameError):
    """:func:`play` reached the phase it was asked to stop at (``stop_at``), before moving in it."""


def segment(pre_root: bytes, post_root: bytes, first_step: int, steps: int) -> tuple[bytes, bytes, int, int]:
    """``ExactStepGame.Segment``: the agreed state root before the segment, the disputed one after it, the job's
    index of its first step and its number of steps."""
    return (pre_root, post_root, first_step, steps)


def segment_roots(trainer: Any, steps: int, trace_at: Collection[int] = ()) -> tuple[list[bytes], dict[int, Trace]]:
    """Runs ``trainer``'s next ``steps`` steps and returns the ``steps + 1`` state roots before and after each (the
    values the step descent reveals and compares) and the ``keep_values`` trace of each step of the segment named in
    ``trace_at`` (0-based; the trainer takes those on the reference path, same bits)."""
    from protocol.repro.trace import trace_step
    from protocol.state import state_root

    roots = [state_root(trainer.state())]
    traces = {}
    for k in range(steps):
        if k in trace_at:
            traces[k] = trace_step(trainer, keep_values=True)
        else:
            trainer.train_steps(1)
        roots.append(state_root(trainer.state()))
    return roots, traces


def _f32_bits(x: Any) -> int:
    b = int(np.asarray(x, dtype=np.float32).view(np.uint32))
    return 0x7FC00000 if b & 0x7FFFFFFF > 0x7F800000 else b


def float_bits(f: float) -> int:
    return struct.unpack(">Q", struct.pack(">d", f))[0]


def floats_hash(floats: Sequence[float]) -> bytes:
    """The floats root's leaf entry of a record: sha256 of its floats as 8-byte big-endian binary64."""
    return hashlib.sha256(b"".join(struct.pack(">d", f) for f in floats)).digest()


def input_entry(ref: str, dtype: str, shape: Sequence[int], commitment_: bytes) -> bytes:
    """The inputs-root entry of ``s:<name>`` or ``x:<k>`` (:data:`INPUT_ENTRY_ABI`)."""
    if ref.startswith("s:"):
        kind, index, name = 1, 0, ref[2:]
    elif ref.startswith("x:"):
        kind, index, name = 2, int(ref[2:]), ""
    else:
        raise GameError(f"{ref} is a record's output, not a pre-state tensor or external input")
    return encode(list(INPUT_ENTRY_ABI), [kind, index, name, DTYPE_CODES.index(dtype), list(shape), commitment_])


@dataclass(frozen=True)
class Context:
    """A step's program root, floats root and record count (``ExactStepGame.Context``, agreed when the game opens),
    and the inputs root a player computes from its own trace (the defender commits its own with the trace)."""

    program_root: bytes
    floats_root: bytes
    inputs_root: bytes
    records: int
    entries: tuple[bytes, ...]  # the inputs root's entries
    positions: dict[str, int] = field(hash=False)  # "s:<name>" / "x:<k>" → position in the inputs root

    def as_tuple(self) -> tuple[bytes, bytes, int]:
        return (self.program_root, self.floats_root, self.records)

    def commitment_of(self, ref: str) -> bytes:
        """The commitment the inputs root gives pre-state tensor or external ``ref``."""
        return bytes(decode(list(INPUT_ENTRY_ABI), self.entries[self.positions[ref]])[5])

    def entry_leaves(self) -> list[bytes]:
        return [merkle.leaf_hash(hashlib.sha256(e).digest()) for e in self.entries]


def step_context(trace: Trace, pre_state: Mapping[str, torch.Tensor] | None = None) -> Context:
    """The context of a traced step: the program root, the floats root (a leaf per record) and the inputs root over
    the pre-state tensors (by name; their values from the trace, or from ``pre_state`` for a trace that did not keep
    them) then the external inputs (by index) the step has."""
    refs = [f"s:{n}" for n in sorted(trace.state)] + [f"x:{k}" for k in range(len(trace.externals))]
    entries = []
    for ref in refs:
        dtype, shape = trace.shape_of(ref)
        if ref.startswith("x:"):
            c = trace.externals[int(ref[2:])][2]
        elif ref in trace.values:
            c = commitment(trace.values[ref])
        elif pre_state is not None and ref[2:] in pre_state:
            c = commitment(pre_state[ref[2:]])
        else:
            raise GameError(f"the step's context needs the value of {ref}: a keep_values trace, or the pre-state")
        entries.append(input_entry(ref, dtype, shape, c))
    floats = [merkle.leaf_hash(floats_hash(r.floats)) for r in trace.records]
    return Context(
        program_root=trace.program_root,
        floats_root=merkle.rfc9162_root(floats),
        inputs_root=merkle.rfc9162_root([merkle.leaf_hash(hashlib.sha256(e).digest()) for e in entries]),
        records=len(trace.records),
        entries=tuple(entries),
        positions={ref: i for i, ref in enumerate(refs)},
    )


def lie(trace: Trace, index: int, j: int = 0, o: int = 0) -> Trace:
    """A copy of ``trace`` whose record ``index`` says its output ``j`` has element ``o`` one unit in the last
    place off (its lowest bit flipped) and commits to that: the smallest lie a solver can tell. Nothing else
    changes (a liar that went on computing from the lie would differ in later records too; the game finds the
    first)."""
    r = trace.records[index]
    ref = f"r{index}.{j}"
    out = trace.values[ref].clone().contiguous()
    flat = out.view(-1).view({1: torch.uint8, 4: torch.int32, 8: torch.int64}[out.element_size()])
    flat[o] ^= 1
    commits = list(r.commitments)
    commits[j] = commitment(out)
    records = list(trace.records)
    records[index] = dataclasses.replace(r, commitments=tuple(commits))
    values = dict(trace.values)
    values[ref] = out
    return dataclasses.replace(trace, records=records, values=values)


def _children(leaves: Sequence[bytes], lo: int, hi: int) -> tuple[bytes, bytes]:
    mid = lo + merkle.split_point(hi - lo)
    return merkle.rfc9162_root(leaves[lo:mid]), merkle.rfc9162_root(leaves[mid:hi])


def _chunk_leaves(data: bytes) -> list[bytes]:
    return [merkle.leaf_hash(data[i : i + LEAF_BYTES]) for i in range(0, len(data), LEAF_BYTES)]


#: A tensor being descended: an output ``(record, j)``, or a pre-state input ``"s:<name>"`` under dispute.
TensorKey = tuple[int, int] | str


#: Computes the values of the named references of a step again (``trace_step(..., keep_values=refs).values`` from
#: the step's pre-state): how a player of a step too large to keep whole gets what one record needs.
Recompute = Callable[[Collection[str]], Mapping[str, torch.Tensor]]


class _Player:
    """``pre_state``: the serialised pre-state of the step (what input disputes open against the agreed root).
    ``recompute``: where values the trace did not keep come from (:data:`Recompute`); without it the trace must
    hold every value the game asks for (``keep_values``)."""

    def __init__(
        self, trace: Trace, ctx: Context, pre_state: bytes | None = None, recompute: Recompute | None = None
    ) -> None:
        self.trace = trace
        self.ctx = ctx
        self.recompute = recompute
        self.state = StateOpener(pre_state) if pre_state is not None else None
        self.leaves = [merkle.leaf_hash(r.record_hash()) for r in trace.records]
        self._out_leaves: dict[TensorKey, list[bytes]] = {}

    def need(self, refs: Collection[str]) -> None:
        """Makes sure the trace holds the values of ``refs`` (recomputing the missing ones in one pass)."""
        missing = {r for r in refs if r not in self.trace.values}
        if not missing:
            return
        if self.recompute is None:
            raise GameError(f"no value for {sorted(missing)[:3]}: a keep_values trace or a recompute is needed")
        got = self.recompute(missing)
        self.trace.values.update({r: got[r] for r in missing})

    def prepare(self, t: int) -> None:
        """Everything record ``t`` can be asked about: its inputs' and outputs' values."""
        r = self.trace.records[t]
        self.need([*r.inputs, *(f"r{t}.{j}" for j in range(len(r.outputs)))])

    def output_bytes(self, t: int, j: int) -> bytes:
        self.need([f"r{t}.{j}"])
        return committed_bytes(self.trace.values[f"r{t}.{j}"])

    def tensor_bytes(self, key: TensorKey) -> bytes:
        if isinstance(key, str):
            self.need([key])
            return committed_bytes(self.trace.values[key])
        return self.output_bytes(*key)

    def output_leaves(self, key: TensorKey) -> list[bytes]:
        if key not in self._out_leaves:
            self._out_leaves[key] = _chunk_leaves(self.tensor_bytes(key))
        return self._out_leaves[key]

    def opened_state(self) -> StateOpener:
        if self.state is None:
            raise GameError("an input dispute needs the player's serialised pre-state")
        return self.state

    def input_settlement(self, ref: str, leaf: int) -> tuple:
        """``StateReader.Chunks`` holding leaf ``leaf`` of pre-state tensor ``ref`` in the agreed pre-state."""
        t = self.opened_state().tensor(ref[2:])
        start = t.start + leaf * LEAF_BYTES
        return self.opened_state().range_opening(start, min(LEAF_BYTES, t.nbytes - leaf * LEAF_BYTES))

    def _reader(self, t: int) -> tuple[list[Any], list[torch.Tensor], Callable[[int, int], Any], list[tuple[int, int]]]:
        r = self.trace.records[t]
        self.need(r.inputs)
        values = [self.trace.values[ref] for ref in r.inputs]
        flats = [v.detach().contiguous().reshape(-1).numpy() for v in values]
        seen: list[tuple[int, int]] = []

        def read(k: int, i: int) -> Any:
            seen.append((k, i))
            return flats[k][i]

        return operands(self.trace, r), values, read, seen

    def partials(self, t: int, j: int, o: int) -> list[int]:
        """The float32 bits (NaN canonical) of every partial result of fold element ``o`` of output ``j`` of record
        ``t``, from this player's values: the identity, then after each term."""
        ins, _, read, _ = self._reader(t)
        return [_f32_bits(p) for p in fold_partials(self.trace.records[t], ins, j, o, read)]

    def term_settlement(self, t: int, j: int, o: int, n: int, acc: int, commitments: Sequence[bytes]) -> tuple:
        """The ``ElementCheck.Claim`` of term ``n`` of fold element ``o``: only that term's reads."""
        ins, values, read, seen = self._reader(t)
        fold_term(self.trace.records[t], ins, j, o, n, np.uint32(acc).view(np.float32), read)
        return self._claim(t, j, o, [(k, i, *element_proof(values[k], i)) for k, i in seen], commitments)

    def settlement(self, t: int, j: int, o: int, commitments: Sequence[bytes]) -> tuple:
        """The ``ElementCheck.Claim`` that settles element ``o`` of output ``j`` of record ``t``: the record as
        opened (``commitments``: the defender's), its inputs' commitments as the contract derived them, and every
        read the element makes, proven from this player's own values."""
        ins, values, read, seen = self._reader(t)
        element(self.trace.records[t], ins, j, o, read)
        return self._claim(t, j, o, [(k, i, *element_proof(values[k], i)) for k, i in seen], commitments)

    def _claim(self, t: int, j: int, o: int, reads: list[tuple], commitments: Sequence[bytes]) -> tuple:
        r = self.trace.records[t]
        ins = operands(self.trace, r)
        in_commits = []
        for ref in r.inputs:
            if ref.startswith("r"):
                k, jj = (int(x) for x in ref[1:].split("."))
                in_commits.append(self.trace.records[k].commitments[jj])
            else:
                in_commits.append(self.ctx.commitment_of(ref))
        return (
            r.encode_structure(), [float_bits(f) for f in r.floats], list(commitments),
            [list(x.shape) for x in ins], [DTYPE_CODES.index(x.dtype) for x in ins], in_commits, j, o, reads,
            b"", [],
        )  # fmt: skip


class Defender(_Player):
    """The solver's side: it committed ``trace`` (honest, or a liar's, :func:`lie`) and opens what is asked."""

    def trace_root(self) -> bytes:
        return merkle.rfc9162_root(self.leaves)

    def reveal(self, lo: int, hi: int, output: TensorKey | None) -> tuple[bytes, bytes]:
        return _children(self.leaves if output is None else self.output_leaves(output), lo, hi)

    def open_tensor(self, ref: str) -> tuple[bytes, tuple]:
        """The disputed input's entry (as its inputs root has it) and the pre-state's manifest opening of it."""
        return self.ctx.entries[self.ctx.positions[ref]], self.opened_state().manifest_opening(ref[2:])

    def open_record(self, t: int) -> tuple[tuple, list[tuple]]:
        r = self.trace.records[t]
        structures = [x.structure_hash() for x in self.trace.records]
        floats = [merkle.leaf_hash(floats_hash(x.floats)) for x in self.trace.records]
        opening = (
            r.encode_structure(),
            [float_bits(f) for f in r.floats],
            list(r.commitments),
            merkle.rfc9162_path([merkle.leaf_hash(s) for s in structures], t),
            merkle.rfc9162_path(floats, t),
        )
        inputs = []
        entry_leaves = self.ctx.entry_leaves()
        for ref in r.inputs:
            if ref.startswith("r"):
                k = int(ref[1:].split(".")[0])
                p = self.trace.records[k]
                inputs.append((p.encode_structure(), [float_bits(f) for f in p.floats], list(p.commitments), 0,
                               merkle.rfc9162_path(self.leaves, k)))  # fmt: skip
            else:
                pos = self.ctx.positions[ref]
                inputs.append((self.ctx.entries[pos], [], [], pos, merkle.rfc9162_path(entry_leaves, pos)))
        return opening, inputs

    def open_leaf(self, key: TensorKey, leaf: int) -> bytes:
        return self.tensor_bytes(key)[leaf * LEAF_BYTES : (leaf + 1) * LEAF_BYTES]


class Challenger(_Player):
    """The verifier's side: its own honest ``trace`` of the step. ``steer`` may override where it descends (a lying
    challenger disputes a record the defender has right); ``dispute_inputs`` makes it dispute the reached record's
    first pre-state input even if it is right."""

    def __init__(
        self,
        trace: Trace,
        ctx: Context,
        steer: Callable[[int, int], bool] | None = None,
        pre_state: bytes | None = None,
        dispute_inputs: bool = False,
        recompute: Recompute | None = None,
    ) -> None:
        super().__init__(trace, ctx, pre_state, recompute)
        self.steer = steer
        self.dispute_inputs = dispute_inputs

    def choose(self, lo: int, hi: int, left: bytes, right: bytes, output: TensorKey | None) -> bool:
        """True for the right half: the left one if it differs from its own, else the right one."""
        if output is None and self.steer is not None:
            return self.steer(lo, hi)
        mine = self.leaves if output is None else self.output_leaves(output)
        own_left, _ = _children(mine, lo, hi)
        return left == own_left

    def disputed_input(self, t: int, opened: Sequence[tuple]) -> int | None:
        """The first pre-state input of record ``t`` whose opened entry (``opened``: the defender's input openings)
        is not its own — another commitment, or another dtype or shape (which the defender then cannot show in the
        pre-state's manifest) — or None."""
        for k, ref in enumerate(self.trace.records[t].inputs):
            if not ref.startswith("s:"):
                continue
            if self.dispute_inputs or bytes(opened[k][0]) != self.ctx.entries[self.ctx.positions[ref]]:
                return k
        return None

    def choose_output(self, t: int, commitments: Sequence[bytes]) -> int:
        """The first output whose commitment differs from its own (the first defined one if none does)."""
        own = self.trace.records[t].commitments
        for j, c in enumerate(commitments):
            if c != own[j]:
                return j
        return next(j for j, c in enumerate(own) if c != UNDEFINED)

    def choose_element(self, t: int, j: int, leaf: int, chunk: bytes) -> int:
        mine = self.output_bytes(t, j)[leaf * LEAF_BYTES : (leaf + 1) * LEAF_BYTES]
        width = self.trace.values[f"r{t}.{j}"].element_size()
        for b in range(0, len(chunk), width):
            if chunk[b : b + width] != mine[b : b + width]:
                return (leaf * LEAF_BYTES + b) // width
        return leaf * LEAF_BYTES // width


#: The phase of the game each move belongs to (its gas is reported by phase): the step descent, the trace
#: commitment and record descent to one record and its opening, the leaf descent to one element of an output, a
#: long fold's term descent, the settlement, and an input dispute (its leaf descent included).
PHASE_OF: dict[StepPhase, str] = {
    StepPhase.AWAITING_STEP_ROOT: "step", StepPhase.AWAITING_STEP_CHOICE: "step",
    StepPhase.AWAITING_TRACE: "record", StepPhase.AWAITING_RECORD_REVEAL: "record",
    StepPhase.AWAITING_RECORD_CHOICE: "record", StepPhase.AWAITING_RECORD: "record",
    StepPhase.AWAITING_OUTPUT: "element", StepPhase.AWAITING_LEAF_REVEAL: "element",
    StepPhase.AWAITING_LEAF_CHOICE: "element", StepPhase.AWAITING_LEAF: "element",
    StepPhase.AWAITING_ELEMENT: "element", StepPhase.AWAITING_PARTIAL: "fold",
    StepPhase.AWAITING_PARTIAL_CHOICE: "fold", StepPhase.AWAITING_SETTLE: "settle",
    StepPhase.AWAITING_TERM_SETTLE: "settle", StepPhase.AWAITING_TENSOR: "input",
    StepPhase.AWAITING_STATE_BYTES: "input",
}  # fmt: skip
#: Phases that belong to an input dispute once one is open (the dispute itself, its leaf descent).
_INPUT_DESCENT = (
    StepPhase.AWAITING_OUTPUT, StepPhase.AWAITING_LEAF_REVEAL, StepPhase.AWAITING_LEAF_CHOICE, StepPhase.AWAITING_LEAF
)  # fmt: skip


@dataclass
class Outcome:
    """How a game ended."""

    winner: str
    reason: str
    step: int | None = None  # the step of the segment the step descent reached (0-based)
    step_rounds: int = 0
    record: int | None = None
    input: str | None = None  # the pre-state input disputed ("s:<name>"), if any
    output: int | None = None
    element: int | None = None
    record_rounds: int = 0
    leaf_rounds: int = 0
    fold_rounds: int = 0
    gas: dict[str, int] = field(default_factory=dict)  # by move
    phase_gas: dict[str, int] = field(default_factory=dict)  # by phase of the game (:data:`PHASE_OF`)
    max_tx_gas: int = 0


def play(
    w3: Web3,
    game: Any,
    game_id: int,
    defender: Defender | Callable[[int], Defender],
    challenger: Challenger | Callable[[int], Challenger],
    defender_account: LocalAccount,
    challenger_account: LocalAccount,
    *,
    roots: tuple[Sequence[bytes], Sequence[bytes]] | None = None,
    settle_by: str = "challenger",
    stop_at: StepPhase | None = None,
    max_moves: int = 256,
) -> Outcome:
    """Plays game ``game_id`` on ``game`` (an ExactStepGame contract) to its end, one move per transaction, each
    by the party whose move it is. ``roots`` are the defender's and the challenger's state roots before and after
    each step of the segment (:func:`segment_roots`; needed when it has more than one step); a player given as a
    callable is made for the step the descent reached (its offset in the segment). ``settle_by`` says who sends
    the settlement (either may). ``stop_at`` stops before the first move in that phase (:class:`GameStopped`)."""
    gas: dict[str, int] = {}
    max_tx = 0
    t: int | None = None
    j: int | None = None
    leaf: int | None = None
    o: int | None = None
    commitments: list[bytes] = []
    opened_inputs: list[tuple] = []
    disputed: str | None = None  # the pre-state input under dispute

    phase_gas: dict[str, int] = {}

    def tx(name: str, account: LocalAccount, fn: Any) -> Any:
        nonlocal max_tx
        receipt = send_move(w3, account, fn)
        gas[name] = gas.get(name, 0) + receipt["gasUsed"]
        group = "input" if disputed is not None and phase in _INPUT_DESCENT else PHASE_OF[phase]
        phase_gas[group] = phase_gas.get(group, 0) + receipt["gasUsed"]
        max_tx = max(max_tx, receipt["gasUsed"])
        return receipt

    f = game.functions
    step: int | None = None
    dp = defender if isinstance(defender, Defender) else None
    cp = challenger if isinstance(challenger, Challenger) else None
    for _ in range(max_moves):
        g = f.getGame(game_id).call()
        phase = StepPhase(g.phase)
        lo, hi = g.lo, g.hi
        output: TensorKey | None = disputed if disputed is not None else None if t is None or j is None else (t, j)
        if phase == StepPhase.ENDED:
            ended = game.events.GameEnded().get_logs(from_block=0, argument_filters={"id": game_id})
            reason = ended[-1]["args"]["reason"] if ended else ""
            who = "defender" if g.winner == defender_account.address else "challenger"
            return Outcome(
                who, reason, step=step, step_rounds=g.steps.rounds, record=t, input=disputed, output=j, element=o,
                record_rounds=g.recordRounds, leaf_rounds=g.leafRounds, fold_rounds=g.fold.rounds, gas=gas,
                phase_gas=phase_gas, max_tx_gas=max_tx,
            )  # fmt: skip
        if phase == stop_at:
            raise GameStopped(f"game {game_id} reached {phase.name}")
        if phase in (StepPhase.AWAITING_STEP_ROOT, StepPhase.AWAITING_STEP_CHOICE):
            if roots is None:
                raise GameError(f"game {game_id} descends a segment of {g.segment.steps} steps: the players need roots")
            mid = (g.steps.lo + g.steps.hi) // 2
            if phase == StepPhase.AWAITING_STEP_ROOT:
                tx("revealStepRoot", defender_account, f.revealStepRoot(game_id, roots[0][mid]))
            else:
                tx("chooseStep", challenger_account, f.chooseStep(game_id, roots[1][mid] == g.steps.pending))
        elif phase == StepPhase.AWAITING_TRACE:
            step = g.steps.lo
            dp = defender if isinstance(defender, Defender) else defender(step)
            cp = challenger if isinstance(challenger, Challenger) else challenger(step)
            commit = f.commitTrace(game_id, dp.trace_root(), dp.ctx.inputs_root, len(dp.ctx.entries))
            tx("commitTrace", defender_account, commit)
        elif dp is None or cp is None:
            raise GameError(f"game {game_id} is past its trace: these players need the step to make theirs")
        elif phase in (StepPhase.AWAITING_RECORD_REVEAL, StepPhase.AWAITING_LEAF_REVEAL):
            left, right = dp.reveal(lo, hi, output)
            tx("reveal", defender_account, f.reveal(game_id, left, right))
        elif phase in (StepPhase.AWAITING_RECORD_CHOICE, StepPhase.AWAITING_LEAF_CHOICE):
            side = cp.choose(lo, hi, g.left, g.right, output)
            tx("choose", challenger_account, f.choose(game_id, side))
        elif phase == StepPhase.AWAITING_RECORD:
            t = lo
            dp.prepare(t)
            cp.prepare(t)
            opening, opened_inputs = dp.open_record(t)
            commitments = opening[2]
            tx("openRecord", defender_account, f.openRecord(game_id, opening, opened_inputs))
        elif phase == StepPhase.AWAITING_OUTPUT:
            assert t is not None
            k = cp.disputed_input(t, opened_inputs)
            if k is not None:  # the record read a pre-state tensor that is not the agreed pre-state's
                disputed = cp.trace.records[t].inputs[k]
                tx("disputeInput", challenger_account, f.disputeInput(game_id, k))
            else:
                j = cp.choose_output(t, commitments)
                tx("chooseOutput", challenger_account, f.chooseOutput(game_id, j))
        elif phase == StepPhase.AWAITING_TENSOR:
            assert disputed is not None
            entry, manifest = dp.open_tensor(disputed)
            tx("openTensor", defender_account, f.openTensor(game_id, entry, manifest))
        elif phase == StepPhase.AWAITING_STATE_BYTES:
            assert disputed is not None
            player = cp if settle_by == "challenger" else dp
            account = challenger_account if settle_by == "challenger" else defender_account
            tx("settleInput", account, f.settleInput(game_id, player.input_settlement(disputed, lo)))
        elif phase == StepPhase.AWAITING_LEAF:
            assert output is not None
            leaf = lo
            tx("openLeaf", defender_account, f.openLeaf(game_id, dp.open_leaf(output, leaf)))
        elif phase == StepPhase.AWAITING_ELEMENT:
            assert t is not None and j is not None and leaf is not None
            chunk = game.events.LeafOpened().get_logs(from_block=0, argument_filters={"id": game_id})[-1]["args"]
            o = cp.choose_element(t, j, leaf, chunk["chunk"])
            tx("chooseElement", challenger_account, f.chooseElement(game_id, o))
        elif phase == StepPhase.AWAITING_PARTIAL:
            assert t is not None and j is not None and o is not None
            mid = (g.fold.lo + g.fold.hi) // 2
            tx("revealPartial", defender_account, f.revealPartial(game_id, dp.partials(t, j, o)[mid]))
        elif phase == StepPhase.AWAITING_PARTIAL_CHOICE:
            assert t is not None and j is not None and o is not None
            mid = (g.fold.lo + g.fold.hi) // 2
            agree = cp.partials(t, j, o)[mid] == int.from_bytes(g.fold.pending, "big")
            tx("choosePartial", challenger_account, f.choosePartial(game_id, agree))
        elif phase == StepPhase.AWAITING_TERM_SETTLE:
            assert t is not None and j is not None and o is not None
            player = cp if settle_by == "challenger" else dp
            claim = player.term_settlement(t, j, o, g.fold.lo, int.from_bytes(g.fold.agreed, "big"), commitments)
            account = challenger_account if settle_by == "challenger" else defender_account
            tx("settleTerm", account, f.settleTerm(game_id, claim))
        elif phase == StepPhase.AWAITING_SETTLE:
            assert t is not None and j is not None and o is not None
            by_challenger = settle_by == "challenger"
            claim = (cp if by_challenger else dp).settlement(t, j, o, commitments)
            account = challenger_account if by_challenger else defender_account
            tx("settle", account, f.settle(game_id, claim))
        else:
            raise GameError(f"game {game_id} is in phase {phase.name}")
    raise GameError(f"game {game_id} did not end in {max_moves} moves")
