"""The trace of one exact-mode optimizer step (protocol/repro/trace.py): the records the dispute will bisect below
a segment. Tracing is the step itself (same bits as training), the program root depends only on the spec, the
trace root is reproducible, and every record can be computed again from the values its references name."""

from __future__ import annotations

import pytest
import torch

from protocol.engine.data import load_dataset
from protocol.engine.examples import load_example, shortened
from protocol.engine.runner import Trainer
from protocol.repro import set_threads
from protocol.repro.trace import PRIMITIVE_INDEX_ADD_ROWS, UNDEFINED, commitment, program_roots, trace_step
from protocol.state import state_root


def _trainer(spec) -> Trainer:
    t = Trainer(spec, load_dataset(spec.dataset))
    t.init()
    return t


@pytest.fixture(scope="module")
def spec():
    return shortened(load_example("mlp_digits"), 4, 1)


def test_tracing_a_step_is_taking_it(spec):
    traced, trained = _trainer(spec), _trainer(spec)
    traces = [trace_step(traced) for _ in range(2)]
    trained.train_steps(2)
    assert traced.step == trained.step == 2
    assert state_root(traced.state()) == state_root(trained.state()), "the trace changes no bit of the step"
    assert [t.step for t in traces] == [0, 1]
    # where each state tensor ends: the record output that holds it, whose commitment is its bytes
    last = traces[-1]
    for name, tensor in traced.state().tensors.items():
        ref = last.final[name]
        assert ref.startswith("r"), (name, ref)  # every tensor of the state is written by the step
        k, j = (int(x) for x in ref[1:].split("."))
        assert last.records[k].commitments[j] == commitment(tensor), name


def test_the_program_depends_only_on_the_spec(spec):
    a = _trainer(spec)
    steps = [trace_step(a) for _ in range(3)]
    # step 0 creates SGD's momentum buffers; from then on every step is the same program on other values
    assert steps[1].program_root == steps[2].program_root
    assert steps[1].root != steps[2].root, "other batch, other weights: other values"
    other_seed = spec.model_copy(update={"seed": spec.seed + 1})
    b = _trainer(other_seed)
    trace_step(b)
    assert trace_step(b).program_root == steps[1].program_root, "the seed changes values, not the program"
    assert not any(r.startswith("x:") for r in steps[1].final.values())
    # float scalars (the learning rate) are values; a different model is a different program
    wider = spec.model_copy(update={"model": spec.model.model_copy(update={"hidden": [32, 64]})})
    c = _trainer(wider)
    trace_step(c)
    assert trace_step(c).program_root != steps[1].program_root
    assert steps[1].reads <= 3, "values read out of the tensor world must never steer the program"


def test_a_jobs_two_program_roots_come_from_structure_only_traces(spec):
    """What an order can sign: the program roots of step 0 and of every later step, from traces that hash nothing
    (every commitment UNDEFINED) and take the same steps."""
    full = _trainer(spec)
    steps = [trace_step(full) for _ in range(3)]
    roots = program_roots(spec)
    assert (roots.first, roots.first_records) == (steps[0].program_root, len(steps[0].records))
    assert (roots.later, roots.later_records) == (steps[1].program_root, len(steps[1].records))
    assert roots.first != roots.later and steps[2].program_root == roots.later
    bare = trace_step(_trainer(spec), commit=False)
    assert bare.program_root == steps[0].program_root
    assert all(c == UNDEFINED for r in bare.records for c in r.commitments)
    assert all(c == UNDEFINED for _, _, c in bare.externals)
    one = program_roots(spec.model_copy(update={"total_steps": 1, "checkpoint_interval": 1}))
    assert (one.first, one.later) == (roots.first, None)


def test_the_trace_root_is_reproducible_across_thread_counts(spec):
    roots, before = [], torch.get_num_threads()
    for threads in (1, 2):
        set_threads(threads)
        t = _trainer(spec)
        trace_step(t)
        roots.append(trace_step(t).root)
    set_threads(before)
    assert roots[0] == roots[1]


def test_every_record_is_computed_again_from_its_inputs(spec):
    t = _trainer(spec)
    trace_step(t)
    trace = trace_step(t, keep_values=True)
    checked = 0
    for r in trace.records:
        if UNDEFINED in r.commitments:
            continue  # an allocation: its contents are written by a later record
        outs = trace.evaluate(r.index)
        assert tuple(commitment(o) for o in outs) == r.commitments, (r.index, r.op, r.inputs)
        checked += 1
    assert checked > 0.99 * len(trace.records)
    ops = trace.ops()
    assert ops["aten.mul.Tensor"] > 100 and ops["aten.add.Tensor"] > 100  # the mm reference: one rank-1 update each
    # every reference names an earlier record's output, a tensor of the pre-state or a listed external input
    pre = set(trace.values) & {f"s:{n}" for n in t.state().tensors}
    for rec in trace.records:
        for ref in rec.inputs:
            if ref.startswith("r"):
                k, j = (int(x) for x in ref[1:].split("."))
                assert k < rec.index and j < len(trace.records[k].outputs), (rec.index, ref)
            elif ref.startswith("s:"):
                assert ref in pre, ref
            else:
                assert ref.startswith("x:") and int(ref[2:]) < len(trace.externals), ref


def test_a_language_model_step_is_one_program_whatever_its_tokens():
    """Embedding, attention, GELU, AdamW and dropout: the scatter-add of the embedding's backward is one record
    (its reference expansion loops over the tokens' occurrence ranks), so the program does not depend on the batch."""
    lm = load_example("tiny_lm")
    model = lm.model.model_copy(update={"context": 16, "d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32})
    spec = shortened(lm.model_copy(update={"model": model, "batch_size": 4}), 4, 1)
    t = _trainer(spec)
    steps = [trace_step(t) for _ in range(3)]
    assert steps[1].program_root == steps[2].program_root
    assert steps[1].root != steps[2].root
    scatter = [r for r in steps[1].records if r.op == PRIMITIVE_INDEX_ADD_ROWS]
    assert scatter and all(r.outputs[0][1][0] == model.vocab_size for r in scatter)
