"""The element of a trace record (protocol/repro/elements.py), computed from the input elements it reads, equals
what ATen computed, bit for bit: on every record of real training steps (MLP, a small LM with attention, GELU,
AdamW and an embedding) and on programs of every operation of the vocabulary over edge values (signed zeros,
subnormals, the extremes, infinities, NaN, ties to even, integer wrap-around). A lie of one ulp in one element is
found and named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from protocol.engine.data import load_dataset
from protocol.engine.examples import load_example, shortened
from protocol.engine.runner import Trainer
from protocol.repro import fmath, kernels
from protocol.repro.elements import VOCABULARY, ElementError, check, element, operands, unsupported
from protocol.repro.trace import trace_call, trace_step

F32 = np.float32
EDGE = [
    0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 2.5, -2.5, 3.0, -7.0, float(F32(1 / 3)), float(F32(0.1)), 1e-45, -1e-45,
    1.1754942e-38, 1.17549435e-38, 3.4028235e38, -3.4028235e38, float("inf"), float("-inf"), float("nan"),
    16777216.0, 8388608.5, 1e20, -1e-20, 65504.0, 2.0**-126 * 3,
]  # fmt: skip
INTS = [0, 1, -1, 2**31 - 1, -(2**31), 12345, -98765, 7, 8388607, 16777217, -16777217, 1 << 30]


def _edge(seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    wide = (rng.standard_normal(8) * 10.0 ** rng.integers(-30, 30, 8)).astype(F32)
    return torch.tensor(np.concatenate([np.array(EDGE, F32), wide]), dtype=torch.float32)


def _check_all(trace) -> set[str]:
    assert unsupported(trace) == {}, unsupported(trace)
    for i in range(len(trace.records)):
        check(trace, i, sample=1 << 30)  # every element of every output
    return {r.op for r in trace.records}


def _float_program(x: torch.Tensor, y: torch.Tensor, ix: torch.Tensor, ones: torch.Tensor, m: torch.Tensor) -> None:
    a, b = x[:, None], y[None, :]  # every pair of edge values
    for f in (torch.add, torch.sub, torch.mul, torch.div, torch.lt, torch.le, torch.gt, torch.ge, torch.eq,
              torch.ne, torch.copysign):  # fmt: skip
        f(a, b)
    torch.where(a < b, a, b)
    torch.where(ix > 0, x, x * 2.0)
    x + 0.1, x * 1.4426950216293335, x - 1.0, x / 3.0, 0.5 - x  # scalars are cast to float32
    _ = (x > 0.1, x < 1.1754943508222875e-38, x == 0, x != 1.0, x >= 2.5, x <= -1.0)
    torch.neg(x), torch.abs(x), torch.relu(x), torch.round(x), torch.isnan(x)
    torch.clamp(x, -104.0, 89.0), torch.clamp(x, min=0.0), torch.nan_to_num(x, 0.0)
    torch.ops.aten.threshold_backward(y, x, 0)
    fmath.sqrt(x)
    torch.amax(m, 1, keepdim=True), torch.amax(m, 0), torch.amin(m, 1)
    torch.max(ix), torch.min(ix)
    x.view(torch.int32)
    clamped = torch.nan_to_num(torch.clamp(x, -1e9, 1e9), 0.0)
    clamped.to(torch.int32)
    torch._foreach_add([x, y], [y, x]), torch._foreach_sub([x], [y]), torch._foreach_mul([x], [y])
    torch._foreach_div([x], [y]), torch._foreach_mul([x, y], 0.8999999761581421)
    torch._foreach_add([x], 0.001), torch._foreach_div([x], 3.0)
    xs, ys = [x.clone()], [y.clone()]
    torch._foreach_mul_(xs, 0.5), torch._foreach_add_(xs, ys), torch._foreach_sub_(xs, ys)
    torch._foreach_div_(xs, ys), torch._foreach_add_(xs, 2.0), torch._foreach_div_(xs, 3.0)
    torch._foreach_mul_(xs, ys)
    z = torch.zeros_like(x)
    z.add_(x), z.sub_(y), z.mul_(y), z.div_(x)
    torch.full_like(x, 0.00019875691214110702), torch.ones_like(x), torch.ones(3, dtype=torch.bool)
    torch.masked_fill(x, x > 1.0, float("-inf")), torch.triu(ones, 1), torch.triu(ones)


def _int_program(i: torch.Tensor, j: torch.Tensor, i64: torch.Tensor, bools: torch.Tensor) -> None:
    a, b = i[:, None], j[None, :]
    for f in (torch.add, torch.sub, torch.mul, torch.bitwise_and, torch.bitwise_or, torch.bitwise_xor, torch.gt):
        f(a, b)
    i + 127, i - 3187664, 3523208 - i, i & 8388607, i ^ 1065353216, i | 5, i > 0
    for s in (0, 1, 23, 31):
        torch.bitwise_right_shift(i, s), torch.bitwise_left_shift(i, s)
    i.to(torch.float32), i64.to(torch.int32), i.to(torch.int64), i.view(torch.float32), -i, torch.abs(i)
    bools[:, None] | bools[None, :], bools[:, None] & bools[None, :], bools[:, None] ^ bools[None, :]
    torch.where(bools, i, j), torch.scalar_tensor(1, dtype=torch.int8), torch.zeros(2, 3, dtype=torch.int8)
    torch.max(i64), torch.min(i64)


def _move_program(x: torch.Tensor, idx: torch.Tensor, rows: torch.Tensor, picks: torch.Tensor) -> None:
    m = x.reshape(5, 7)
    m.t(), m.permute(1, 0), m.transpose(0, 1), m[1:4:2], m[:, -3:], m.select(0, -1), m.select(1, 2)
    m.unsqueeze(1), m.unsqueeze(0).squeeze(0), m.view(35), m.view(7, 5), m[None].expand(2, 5, 7)
    torch.index_select(m, 0, rows), torch.index_select(m, 1, rows)
    torch.gather(m, 1, picks)
    torch.zeros(5, 7).scatter_(1, picks[:, :1], 1.0)
    m.reshape(-1)[idx]  # index.Tensor with a (2, 3) index on a 1-D tensor
    m[rows]  # index.Tensor on the leading dimension of a 2-D tensor
    t = m.t()  # a transposed view: as_strided addresses its storage
    t.as_strided((35,), (1,), t.storage_offset()), t.as_strided((3, 4), (2, 5), 1)
    torch.cat([m, m[:2]], 0), torch.cat([m[:, :3], m], 1)
    m.split(2, 0), m.split(3, 1)
    torch.nn.functional.pad(m, (1, 2, 0, 1), value=-0.0), torch.nn.functional.pad(m, (-1, 1))
    torch.ops.aten.slice_backward(m[1:4:2], [5, 7], 0, 1, 4, 2), torch.ops.aten.slice_backward(m, [5, 9], 1, 2, 9, 1)
    n = torch.empty_like(m)
    n.copy_(m), n.copy_(m[0]), torch.empty(3, 4).copy_(rows)
    m.clone(), m.contiguous(), m.t().reshape(35)  # a copy, then _unsafe_view
    torch.empty_strided((2, 3), (3, 1)), m.new_empty_strided((2, 3), (3, 1))  # allocations: no element defined
    kernels.index_add_rows(torch.tensor([3, 0, 3, 1, 3]), m[:5, :4], 6)


def test_every_operation_of_the_vocabulary_equals_aten_on_edge_values():
    x, y = _edge(0), _edge(1).flip(0)
    ix = torch.tensor(INTS[: len(EDGE) // 2] * 3, dtype=torch.int32)[: x.shape[0]]
    ints = torch.tensor(INTS, dtype=torch.int32)
    i64 = torch.tensor([0, -1, 2**40 + 5, -(2**35), 2**31, -(2**31) - 1, 77], dtype=torch.int64)
    bools = torch.tensor([True, False, True, False, False, True, True, False, True, True, False, True])
    seen = _check_all(trace_call(_float_program, x, y, ix, torch.ones(4, 4), torch.stack([x, y.flip(0)])))
    seen |= _check_all(trace_call(_int_program, ints, ints.flip(0), i64, bools))
    seq = torch.arange(35, dtype=torch.float32) * 0.25 - 3.0
    idx = torch.tensor([[0, 34, 5], [-1, 7, 7]])
    rows, picks = torch.tensor([4, 0, 2, 2]), torch.tensor([[6, 0], [1, 1], [0, 3], [2, 5], [0, 0]])
    seen |= _check_all(trace_call(_move_program, seq, idx, rows, picks))
    untested = VOCABULARY - seen
    assert not untested, f"operations of the vocabulary no edge program exercised: {sorted(untested)}"


def _trainer(spec) -> Trainer:
    t = Trainer(spec, load_dataset(spec.dataset))
    t.init()
    return t


def _small_lm():
    lm = load_example("tiny_lm")
    model = lm.model.model_copy(update={"context": 16, "d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32})
    return shortened(lm.model_copy(update={"model": model, "batch_size": 4}), 4, 1)


@pytest.mark.parametrize("name", ["mlp", "lm"])
def test_every_record_of_a_training_step_computes_from_the_elements_it_reads(name):
    spec = shortened(load_example("mlp_digits"), 4, 1) if name == "mlp" else _small_lm()
    t = _trainer(spec)
    for _ in range(2):  # the first step (buffers created) and a later one
        trace = trace_step(t, keep_values=True)
        assert unsupported(trace) == {}
        assert sum(check(trace, i, sample=8) for i in range(len(trace.records))) > 10 * len(trace.records) // 2


def test_a_one_ulp_lie_in_one_element_is_found_and_named():
    t = _trainer(shortened(load_example("mlp_digits"), 4, 1))
    trace = trace_step(t, keep_values=True)
    k = next(r.index for r in trace.records if r.op == "aten.add.Tensor" and r.outputs[0][1] == (1, 64, 128))
    out = trace.values[f"r{k}.0"]
    flat = out.view(-1)
    flat.view(torch.int32)[77] += 1  # one ulp up, in one element of one operation
    with pytest.raises(ElementError, match=rf"record {k} \(aten.add.Tensor\) output 0 element 77"):
        check(trace, k, positions=[77])
    check(trace, k, positions=[76, 78])  # its neighbours still check
    # a checker sees only the reads it makes: an add reads one element of each operand
    reads = []
    r = trace.records[k]
    flats = [trace.values[ref].contiguous().view(-1).numpy() for ref in r.inputs]
    element(r, operands(trace, r), 0, 77, lambda i, o: reads.append((i, o)) or flats[i][o])
    assert reads == [(0, 77), (1, 77)]
