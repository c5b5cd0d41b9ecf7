"""The exact-mode game below one step, played on anvil (contracts/src/ExactStepGame.sol, protocol/exact_step_game.py):
real traces of an MLP and a small-LM training step, a defender and a challenger moving one transaction at a time,
and the contract deciding by recomputing one element with no committee. A solver that lies by one ulp in one
element of one record loses; an honest solver against a challenger that disputes a right record wins; every
descent takes at most ceil(log2) of its range in rounds; every transaction stays under 5M gas."""

from __future__ import annotations

import dataclasses
import functools
import json
import math

import pytest

from protocol.constants import StepPhase
from protocol.exact_step_game import (
    Challenger,
    Defender,
    GameStopped,
    deploy_game,
    lie,
    play,
    segment,
    segment_roots,
    send_move,
    step_context,
)
from protocol.repro.trace import UNDEFINED
from protocol.revert import ContractRevert

pytestmark = pytest.mark.chain

CLOCK = 3600
TX_GAS_LIMIT = 5_000_000


@pytest.fixture(scope="module")
def game(w3, dev):
    return deploy_game(w3, dev[0], CLOCK)


def _trainer(name: str):
    """A trainer at the initial state of the test's MLP or small LM."""
    from protocol.engine.data import load_dataset
    from protocol.engine.examples import load_example, shortened
    from protocol.engine.runner import Trainer

    if name == "mlp":
        spec = shortened(load_example("mlp_digits"), 4, 1)
    else:
        lm = load_example("tiny_lm")
        model = lm.model.model_copy(update={"context": 16, "d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32})
        spec = shortened(lm.model_copy(update={"model": model, "batch_size": 4}), 4, 1)
    t = Trainer(spec, load_dataset(spec.dataset))
    t.init()
    return t


@functools.cache
def _trace(name: str):
    from protocol.repro.trace import trace_step

    trace = trace_step(_trainer(name), keep_values=True)
    return trace, step_context(trace)


@functools.cache
def _pre_state(name: str) -> bytes:
    """The serialised pre-state of :func:`_trace`'s step (the initial state: deterministic)."""
    from protocol.state import serialize_bytes

    return serialize_bytes(_trainer(name).state())


#: A one-step segment (the step descent has nothing to do) whose pre-state root is not read by the game played.
ONE_STEP = segment(b"\x01" * 32, b"\x02" * 32, 0, 1)


def _open(w3, game, defender, challenger, ctx, seg=ONE_STEP) -> int:
    receipt = send_move(w3, challenger, game.functions.open(defender.address, ctx.as_tuple(), seg))
    return game.events.GameOpened().process_receipt(receipt)[0]["args"]["id"]


SEGMENT_STEPS, BAD_STEP, CHALLENGER_FORKS_AT = 6, 4, 2


@functools.cache
def _segment():
    """An MLP segment of SEGMENT_STEPS steps: the honest state roots before and after each step, and the traces of
    step BAD_STEP (where the liar lies) and step CHALLENGER_FORKS_AT - 1 (where a lying challenger's roots first
    differ from the honest ones)."""
    from protocol.engine.data import load_dataset
    from protocol.engine.examples import load_example, shortened
    from protocol.engine.runner import Trainer

    spec = shortened(load_example("mlp_digits"), SEGMENT_STEPS, SEGMENT_STEPS)
    t = Trainer(spec, load_dataset(spec.dataset))
    t.init()
    return segment_roots(t, SEGMENT_STEPS, trace_at={BAD_STEP, CHALLENGER_FORKS_AT - 1})


def _forked(roots, at: int) -> list[bytes]:
    """The roots of a party whose states differ from the honest ones after ``at`` steps."""
    import hashlib

    return [r if k < at else hashlib.sha256(b"forked" + r).digest() for k, r in enumerate(roots)]


def _depth_bound(n: int) -> int:
    return math.ceil(math.log2(n)) if n > 1 else 0


def _first(trace, pred):
    return next(r.index for r in trace.records if pred(r))


def _output_leaves(trace, t: int, j: int) -> int:
    v = trace.values[f"r{t}.{j}"]
    return math.ceil(v.numel() * v.element_size() / 32)


def _lie_targets(trace):
    """Records to lie about: one reading earlier records only, one reading a pre-state tensor, one reading an
    external input (the batch), one in the optimizer near the end."""
    defined = [r for r in trace.records if r.commitments and r.commitments[0] != UNDEFINED and r.outputs[0][0] in (
        "torch.float32", "torch.int64")]  # fmt: skip
    records_only = next(r for r in defined[len(defined) // 2 :] if all(x.startswith("r") for x in r.inputs))
    state = next(r for r in defined if any(x.startswith("s:") for x in r.inputs))
    external = next(r for r in defined if any(x.startswith("x:") for x in r.inputs))
    late = next(r for r in reversed(defined) if r.op == "aten.mul.Tensor")
    return {"records": records_only.index, "state": state.index, "external": external.index, "late": late.index}


@pytest.mark.parametrize("name", ["mlp", "lm"])
def test_a_one_ulp_lie_in_one_element_of_one_record_loses(w3, dev, game, name):
    """The liar commits a trace whose only change is one bit of one element of one record's output; the honest
    challenger's descent reaches that record and that element, and the contract's recomputation convicts."""
    trace, ctx = _trace(name)
    targets = _lie_targets(trace)
    for what, index in targets.items():
        v = trace.values[f"r{index}.0"]
        o = v.numel() // 2
        liar = Defender(lie(trace, index, 0, o), ctx)
        gid = _open(w3, game, dev[1], dev[2], ctx)
        out = play(w3, game, gid, liar, Challenger(trace, ctx), dev[1], dev[2])
        assert (out.winner, out.reason) == ("challenger", "element wrong"), (what, out)
        assert (out.record, out.output, out.element) == (index, 0, o), (what, out)
        assert out.record_rounds <= _depth_bound(len(trace.records)), out
        assert out.leaf_rounds <= _depth_bound(_output_leaves(trace, index, 0)), out
        assert out.max_tx_gas < TX_GAS_LIMIT, out
        print(
            f"{name} {what} record {index} ({trace.records[index].op}): rounds {out.record_rounds}+"
            f"{out.leaf_rounds}, gas {sum(out.gas.values()):,} (max tx {out.max_tx_gas:,}) {json.dumps(out.gas)}"
        )


@pytest.mark.parametrize("settle_by", ["challenger", "defender"])
def test_an_honest_defender_wins_against_a_challenger_that_disputes_a_right_record(w3, dev, game, settle_by):
    """A lying challenger steers the descent to a record the honest defender has right and disputes one of its
    elements; the settlement (by either party) recomputes the same element and the defender wins."""
    trace, ctx = _trace("mlp")
    target = _lie_targets(trace)["records"]

    def steer(lo: int, hi: int) -> bool:
        from protocol import merkle

        return target >= lo + merkle.split_point(hi - lo)

    gid = _open(w3, game, dev[1], dev[2], ctx)
    out = play(w3, game, gid, Defender(trace, ctx), Challenger(trace, ctx, steer), dev[1], dev[2],
               settle_by=settle_by)  # fmt: skip
    assert (out.winner, out.reason, out.record) == ("defender", "element holds", target), out


def test_a_challenger_that_disputes_an_allocation_loses_at_once(w3, dev, game):
    """An allocation (``empty``: no elements, committed as 32 zero bytes) cannot be wrong: the game ends for the
    defender as soon as it is opened."""
    trace, ctx = _trace("mlp")
    target = _first(trace, lambda r: r.commitments and r.commitments[0] == UNDEFINED)

    def steer(lo: int, hi: int) -> bool:
        from protocol import merkle

        return target >= lo + merkle.split_point(hi - lo)

    gid = _open(w3, game, dev[1], dev[2], ctx)
    out = play(w3, game, gid, Defender(trace, ctx), Challenger(trace, ctx, steer), dev[1], dev[2])
    assert (out.winner, out.reason, out.record) == ("defender", "allocation", target), out


def _advance(w3, seconds: int) -> None:
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])


def test_a_structure_liar_cannot_open_its_record_and_loses_on_its_clock(w3, dev, game):
    """A defender whose trace has a record of another structure than the program's (here another argument of one
    operation) cannot prove it against the program root: its opening is refused, and its clock runs out."""
    trace, ctx = _trace("mlp")
    target = _lie_targets(trace)["records"]
    r = trace.records[target]
    args = json.loads(r.args)
    bent = dataclasses.replace(r, args=json.dumps(args + [0], separators=(",", ":")))
    records = list(trace.records)
    records[target] = bent
    liar = Defender(dataclasses.replace(trace, records=records), ctx)
    gid = _open(w3, game, dev[1], dev[2], ctx)
    with pytest.raises(ContractRevert) as err:
        play(w3, game, gid, liar, Challenger(trace, ctx), dev[1], dev[2])
    assert err.value.name == "RecordNotInProgram", err.value
    with pytest.raises(ContractRevert) as early:
        send_move(w3, dev[2], game.functions.timeout(gid))
    assert early.value.name == "ClockNotExpired"
    _advance(w3, CLOCK + 1)
    send_move(w3, dev[3], game.functions.timeout(gid))  # anyone may call it
    g = game.functions.getGame(gid).call()
    assert g.winner == dev[2].address and g.defenderClock < CLOCK  # the challenger won; the defender's clock ran


def test_moves_out_of_turn_or_with_wrong_data_are_refused(w3, dev, game):
    """Only the party to move may move, in its phase, with data that hashes to what was committed."""
    trace, ctx = _trace("mlp")
    defender = Defender(trace, ctx)
    commit = (defender.trace_root(), ctx.inputs_root, len(ctx.entries))
    gid = _open(w3, game, dev[1], dev[2], ctx)
    f = game.functions
    for who, fn, name in [
        (dev[2], f.commitTrace(gid, *commit), "NotYourMove"),
        (dev[1], f.choose(gid, True), "WrongPhase"),
        (dev[1], f.commitTrace(gid + 99, *commit), "UnknownGame"),
    ]:
        with pytest.raises(ContractRevert) as err:
            send_move(w3, who, fn)
        assert err.value.name == name
    send_move(w3, dev[1], f.commitTrace(gid, *commit))
    left, right = defender.reveal(0, len(trace.records), None)
    with pytest.raises(ContractRevert) as err:
        send_move(w3, dev[1], f.reveal(gid, right, left))
    assert err.value.name == "ChildrenMismatch"
    with pytest.raises(ContractRevert) as err:
        send_move(w3, dev[1], f.open(dev[1].address, ctx.as_tuple(), ONE_STEP))
    assert err.value.name == "BadParties"


def test_a_fold_ends_at_the_element_and_starts_at_its_identity():
    """Every partial-result sequence of every fold record of both steps (amax over the vocabulary, the embedding's
    index_add_rows) ends at the element the record computes."""
    import numpy as np

    from protocol.repro.elements import element, fold_of, fold_partials, fold_terms, operands

    checked = 0
    for name in ("mlp", "lm"):
        trace, _ = _trace(name)
        for r in trace.records:
            if fold_of(r) is None:
                continue
            ins = operands(trace, r)
            flats = [trace.values[x].contiguous().reshape(-1).numpy() for x in r.inputs]

            def read(k, i, flats=flats):
                return flats[k][i]

            size = int(np.prod(r.outputs[0][1]))
            for o in sorted({0, size // 2, size - 1}):
                p = fold_partials(r, ins, 0, o, read)
                e = element(r, ins, 0, o, read)
                assert len(p) == fold_terms(r, ins) + 1
                assert np.isnan(p[-1]) and np.isnan(e) or np.float32(p[-1]).tobytes() == np.float32(e).tobytes()
                checked += 1
    assert checked >= 9


def _fold_record(trace, op: str) -> int:
    from protocol.repro.elements import fold_of, fold_terms, operands

    return next(
        r.index for r in trace.records
        if r.op == op and fold_of(r) and fold_terms(r, operands(trace, r)) > 16
    )  # fmt: skip


@pytest.mark.parametrize("op", ["veritrain.index_add_rows", "aten.amax.default"])
def test_a_one_ulp_lie_in_a_long_fold_is_found_in_one_term(w3, dev, game, op):
    """A fold element of more than DIRECT_TERMS terms (the embedding gradient's scatter-add over the batch, a max
    over the vocabulary) is settled by a bisection over its partial results down to one term, recomputed on chain
    from the agreed partial result before it."""
    from protocol.repro.elements import fold_terms, operands

    trace, ctx = _trace("lm")
    index = _fold_record(trace, op)
    v = trace.values[f"r{index}.0"]
    o = v.numel() // 3
    gid = _open(w3, game, dev[1], dev[2], ctx)
    out = play(w3, game, gid, Defender(lie(trace, index, 0, o), ctx), Challenger(trace, ctx), dev[1], dev[2])
    assert (out.winner, out.reason, out.record, out.element) == ("challenger", "term wrong", index, o), out
    terms = fold_terms(trace.records[index], operands(trace, trace.records[index]))
    assert 0 < out.fold_rounds <= _depth_bound(terms), out
    assert out.max_tx_gas < TX_GAS_LIMIT, out
    print(
        f"lm fold {op} record {index}: {terms} terms, rounds {out.record_rounds}+{out.leaf_rounds}+"
        f"{out.fold_rounds}, gas {sum(out.gas.values()):,} (max tx {out.max_tx_gas:,}) {json.dumps(out.gas)}"
    )


def test_an_honest_fold_holds_term_by_term(w3, dev, game):
    """A challenger that disputes an honest fold element loses at the term it ends on."""
    from protocol import merkle

    trace, ctx = _trace("lm")
    target = _fold_record(trace, "veritrain.index_add_rows")

    def steer(lo: int, hi: int) -> bool:
        return target >= lo + merkle.split_point(hi - lo)

    gid = _open(w3, game, dev[1], dev[2], ctx)
    out = play(w3, game, gid, Defender(trace, ctx), Challenger(trace, ctx, steer), dev[1], dev[2])
    assert (out.winner, out.reason, out.record) == ("defender", "term holds", target), out


def test_a_one_ulp_lie_in_one_step_of_a_segment_is_found_by_the_step_descent_and_loses(w3, dev, game):
    """A solver that lied by one ulp in step BAD_STEP of a segment (so every state root after it differs): the step
    descent over the segment's state roots ends at that step in at most ceil(log2 steps) rounds, with the honest
    pre-state root agreed, and the trace game below it convicts."""
    roots, traces = _segment()
    trace = traces[BAD_STEP]
    ctx = step_context(trace)
    index = _lie_targets(trace)["records"]
    o = trace.values[f"r{index}.0"].numel() // 2
    liar_roots = _forked(roots, BAD_STEP + 1)
    gid = _open(w3, game, dev[1], dev[2], ctx, segment(roots[0], liar_roots[-1], 0, SEGMENT_STEPS))
    made = []

    def liar(step: int) -> Defender:
        made.append(step)
        return Defender(lie(traces[step], index, 0, o), ctx)

    out = play(w3, game, gid, liar, lambda step: Challenger(traces[step], ctx), dev[1], dev[2],
               roots=(liar_roots, roots))  # fmt: skip
    assert made == [BAD_STEP] and out.step == BAD_STEP, out
    assert (out.winner, out.reason, out.record, out.element) == ("challenger", "element wrong", index, o), out
    assert 0 < out.step_rounds <= _depth_bound(SEGMENT_STEPS), out
    g = game.functions.getGame(gid).call()
    assert (g.steps.agreed, g.steps.disputed) == (roots[BAD_STEP], liar_roots[BAD_STEP + 1])
    print(f"segment of {SEGMENT_STEPS} steps, lie in step {BAD_STEP}: {out.step_rounds} step rounds, "
          f"gas {sum(out.gas.values()):,} {json.dumps(out.gas)}")  # fmt: skip


def test_an_honest_solver_wins_against_a_challenger_that_lies_about_the_segment(w3, dev, game):
    """A challenger whose own roots fork from the honest ones (it disagrees with right state roots) takes the step
    descent to a step the honest defender computed right; disputing a record of that step, it loses."""
    roots, traces = _segment()
    step = CHALLENGER_FORKS_AT - 1
    trace = traces[step]
    ctx = step_context(trace)
    target = _lie_targets(trace)["records"]

    def steer(lo: int, hi: int) -> bool:
        from protocol import merkle

        return target >= lo + merkle.split_point(hi - lo)

    gid = _open(w3, game, dev[1], dev[2], ctx, segment(roots[0], roots[-1], 0, SEGMENT_STEPS))
    out = play(w3, game, gid, lambda s: Defender(traces[s], ctx), lambda s: Challenger(traces[s], ctx, steer),
               dev[1], dev[2], roots=(roots, _forked(roots, CHALLENGER_FORKS_AT)))  # fmt: skip
    assert (out.step, out.winner, out.reason, out.record) == (step, "defender", "element holds", target), out
    assert out.step_rounds <= _depth_bound(SEGMENT_STEPS), out


def _one_step(name: str):
    """The one-step segment of :func:`_trace`'s step, from the root of its real pre-state."""
    from protocol.state_reader import StateOpener

    return segment(StateOpener(_pre_state(name)).root(), b"\x02" * 32, 0, 1)


DOCTORED = "param/layers.0.weight"


@functools.cache
def _doctored_trace():
    """The step as a solver computes it from a pre-state of its own whose DOCTORED tensor is one ulp off in one
    element: every record is consistent with that input, so only the input itself is a lie."""
    import copy

    from protocol.repro.trace import trace_step

    t = _trainer("mlp")
    state = copy.deepcopy(t.state())
    w = state.tensors[DOCTORED]
    w.view(-1).view(__import__("torch").int32)[w.numel() // 2] ^= 1
    t.load(state)
    trace = trace_step(t, keep_values=True)
    return trace, step_context(trace)


@pytest.mark.parametrize("settle_by", ["challenger", "defender"])
def test_a_solver_that_lies_about_a_pre_state_tensor_loses_at_that_input(w3, dev, game, settle_by):
    """The liar computes the step honestly from a pre-state tensor one ulp off (its inputs root commits to it): the
    first record whose output differs reads that tensor; the challenger disputes the input, the defender must show
    the tensor's manifest entry in the agreed pre-state (StateReader), and a leaf descent over its commitment ends
    at a leaf the pre-state's own bytes contradict — whoever settles."""
    honest, ctx = _trace("mlp")
    doctored, liar_ctx = _doctored_trace()
    assert liar_ctx.inputs_root != ctx.inputs_root and liar_ctx.program_root == ctx.program_root
    blob = _pre_state("mlp")
    gid = _open(w3, game, dev[1], dev[2], ctx, _one_step("mlp"))
    liar = Defender(doctored, liar_ctx, pre_state=blob)
    out = play(w3, game, gid, liar, Challenger(honest, ctx, pre_state=blob), dev[1], dev[2], settle_by=settle_by)
    assert (out.winner, out.reason, out.input) == ("challenger", "input wrong", f"s:{DOCTORED}"), out
    assert out.max_tx_gas < TX_GAS_LIMIT, out
    print(f"input lie: record {out.record}, rounds {out.record_rounds}+{out.leaf_rounds}, gas "
          f"{sum(out.gas.values()):,} (max tx {out.max_tx_gas:,}) {json.dumps(out.gas)}")  # fmt: skip


def test_an_honest_solver_wins_when_a_right_input_is_disputed(w3, dev, game):
    """A challenger that disputes a pre-state input the honest defender committed right loses: the pre-state's
    bytes at the leaf it reaches are the defender's."""
    from protocol import merkle

    trace, ctx = _trace("mlp")
    target = _lie_targets(trace)["state"]

    def steer(lo: int, hi: int) -> bool:
        return target >= lo + merkle.split_point(hi - lo)

    blob = _pre_state("mlp")
    gid = _open(w3, game, dev[1], dev[2], ctx, _one_step("mlp"))
    challenger = Challenger(trace, ctx, steer, pre_state=blob, dispute_inputs=True)
    out = play(w3, game, gid, Defender(trace, ctx, pre_state=blob), challenger, dev[1], dev[2])
    assert (out.winner, out.reason, out.record) == ("defender", "input holds", target), out
    assert out.input is not None and out.input.startswith("s:"), out


def test_a_defender_cannot_place_a_disputed_input_at_another_tensor(w3, dev, game):
    """Opening the disputed input with another tensor's manifest entry, or one not proven in the agreed pre-state,
    is refused by name; the defender then loses on its clock."""
    from protocol.state_reader import StateOpener

    honest, ctx = _trace("mlp")
    doctored, liar_ctx = _doctored_trace()
    blob = _pre_state("mlp")
    gid = _open(w3, game, dev[1], dev[2], ctx, _one_step("mlp"))
    liar = Defender(doctored, liar_ctx, pre_state=blob)
    with pytest.raises(GameStopped):  # the liar's move is made below, by hand
        play(w3, game, gid, liar, Challenger(honest, ctx, pre_state=blob), dev[1], dev[2],
             stop_at=StepPhase.AWAITING_TENSOR)  # fmt: skip
    entry, (chunks, entry_at, last_at) = liar.open_tensor(f"s:{DOCTORED}")
    opener = StateOpener(blob)
    other = next(e for e in opener.entries if e["name"] != DOCTORED)
    wrong_at = opener.manifest.find(json.dumps(other, sort_keys=True, separators=(",", ":")).encode())
    first, data, paths = chunks
    bent = bytearray(data[0])
    bent[-1] ^= 1
    for opening, name in (
        ((chunks, wrong_at, last_at), "EntryNotInManifest"),  # another tensor's entry
        ((chunks, entry_at, entry_at), "EntryNotInManifest"),  # not the last entry
        (((first, [bytes(bent), *data[1:]], paths), entry_at, last_at), "ChunkNotInState"),  # not the state's bytes
    ):
        with pytest.raises(ContractRevert) as err:
            send_move(w3, dev[1], game.functions.openTensor(gid, entry, opening))
        assert err.value.name == name, (opening[1:], err.value)
    _advance(w3, CLOCK + 1)
    send_move(w3, dev[3], game.functions.timeout(gid))
    assert game.functions.getGame(gid).call().winner == dev[2].address


def test_players_that_keep_no_values_recompute_what_one_record_needs(w3, dev, game):
    """A step too large to keep whole (the default tiny LM's keeps gigabytes) is traced for its commitments only;
    each player recomputes the values of the one record the descent reaches from the pre-state, and the game ends
    as it does with every value kept: the one-ulp liar convicted at its element."""
    from protocol.repro.trace import trace_step
    from protocol.state import deserialize

    kept, kept_ctx = _trace("lm")
    index = _lie_targets(kept)["late"]
    o = kept.values[f"r{index}.0"].numel() // 2
    blob = _pre_state("lm")
    bare = trace_step(_trainer("lm"), keep_values=False)
    assert not bare.values and bare.root == kept.root
    ctx = step_context(bare, pre_state=deserialize(blob).tensors)
    assert (ctx.inputs_root, ctx.program_root, ctx.floats_root) == (
        kept_ctx.inputs_root, kept_ctx.program_root, kept_ctx.floats_root)  # fmt: skip
    asked: list[set[str]] = []

    def recompute(refs):
        asked.append(set(refs))
        t = _trainer("lm")
        return trace_step(t, keep_values=refs).values

    mine = dataclasses.replace(bare, values=dict(recompute([f"r{index}.0"])))
    liar = Defender(lie(mine, index, 0, o), ctx, recompute=recompute)
    honest = Challenger(dataclasses.replace(bare, values={}), ctx, recompute=recompute)
    gid = _open(w3, game, dev[1], dev[2], ctx)
    out = play(w3, game, gid, liar, honest, dev[1], dev[2])
    assert (out.winner, out.reason, out.record, out.element) == ("challenger", "element wrong", index, o), out
    r = bare.records[index]
    assert all(a <= {*r.inputs, *(f"r{index}.{j}" for j in range(len(r.outputs)))} for a in asked), asked
    assert len(honest.trace.values) <= len(r.inputs) + len(r.outputs), sorted(honest.trace.values)
    assert set(out.phase_gas) == {"record", "element", "settle"} and sum(out.phase_gas.values()) == sum(
        out.gas.values()), out.phase_gas  # fmt: skip
