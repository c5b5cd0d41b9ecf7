"""The scalar operations of a trace record's elements on chain (ElementOps.sol, through ElementOpsHarness on anvil)
equal protocol/repro/elements.py ``scalar`` bit for bit, for every operation on every dtype it is defined on, over
edge-biased operands (NaN results count as equal when both are NaN: every NaN is committed as the canonical NaN);
an element the semantics leave undefined reverts with ``ElementUndefined`` on chain and raises in Python. The
opcode and dtype orders are checked by behaviour: a misnumbered operation computes something else."""

from __future__ import annotations

import functools
import itertools
import json

import numpy as np
import pytest
from harnesses import deploy_harness
from test_float32_onchain import edge_biased, pairs
from web3.exceptions import ContractCustomError

from protocol.paths import repo_root
from protocol.repro.elements import DTYPE_CODES, DTYPES, SCALAR_OPS, ElementError, scalar

pytestmark = pytest.mark.chain

CASES = 1500
BATCH = 512
F64 = len(DTYPE_CODES)  # float64: a source only (a record's float arguments)
CODE = {name: i for i, name in enumerate(DTYPE_CODES)}
INT_EDGES = {
    "torch.int32": [0, 1, -1, 2**31 - 1, -(2**31), 7, 23, 31, 32, 33, 12345, -98765, 8388607, 16777217],
    "torch.int64": [0, 1, -1, 2**63 - 1, -(2**63), 63, 64, 2**53 + 1, -(2**40) + 3, 2**31, 7],
    "torch.int8": [0, 1, -1, 127, -128, 7, 8, 100, -100],
    "torch.uint8": [0, 1, 255, 128, 127, 7, 8, 200],
    "torch.bool": [0, 1],
}
FLOAT_OPS = ["add", "sub", "rsub", "mul", "div", "lt", "le", "gt", "ge", "eq", "ne", "neg", "abs", "relu", "round",
             "sqrt", "isnan", "copysign", "max", "min", "nan_to_num", "threshold_backward"]  # fmt: skip
INT_OPS = ["add", "sub", "rsub", "mul", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
           "bitwise_right_shift", "lt", "le", "gt", "ge", "eq", "ne", "neg", "abs", "relu", "max", "min",
           "threshold_backward", "isnan"]  # fmt: skip
BOOL_OPS = ["bitwise_and", "bitwise_or", "bitwise_xor", "eq", "ne"]
CASTS = [("torch.float32", d) for d in ("torch.int32", "torch.int64", "torch.int8", "torch.uint8", "torch.bool")] + [
    (s, "torch.float32") for s in ("torch.int32", "torch.int64", "torch.int8", "torch.uint8", "torch.bool")
] + [("torch.int64", "torch.int32"), ("torch.int32", "torch.int64"), ("torch.int64", "torch.int8"),
     ("torch.int32", "torch.uint8"), ("torch.bool", "torch.int64"), ("torch.int64", "torch.bool")]  # fmt: skip


@pytest.fixture(scope="module")
def harness(w3, dev):
    return deploy_harness(w3, dev[0], "ElementOpsHarness")


def _width(dtype: str) -> int:
    return np.dtype(DTYPES[dtype]).itemsize * 8


def _value(bits: int, dtype: str):
    """The numpy scalar of dtype ``dtype`` (or float64) with raw bits ``bits``."""
    if dtype == "float64":
        return np.uint64(bits).view(np.float64)
    t = DTYPES[dtype]
    w = _width(dtype)
    raw = np.array([bits & ((1 << w) - 1)], dtype=f"<u{w // 8}")
    return raw.view(t)[0] if t is not np.bool_ else np.bool_(bits & 1)


def _bits(v, dtype: str) -> int:
    w = _width(dtype)
    return int(np.asarray(v, dtype=DTYPES[dtype]).reshape(1).view(f"<u{w // 8}")[0])


def _operands(rng: np.random.Generator, dtype: str, n: int) -> np.ndarray:
    """n × 4 raw operand bits of ``dtype``: float32 edge-biased pairs (a, b) and triples; integers from the edges
    and uniform words; bools 0/1."""
    if dtype == "torch.float32":
        a, b = pairs(rng, n)
        return np.stack([a, b, edge_biased(rng, n), edge_biased(rng, n)], 1).astype(np.uint64)
    if dtype == "float64":
        f = edge_biased(rng, 4 * n).view(np.float32).astype(np.float64).view(np.uint64)
        low = rng.integers(0, 1 << 29, 4 * n, dtype=np.uint64)
        return (f | np.where(rng.integers(0, 2, 4 * n) == 1, low, np.uint64(1 << 28))).reshape(n, 4)
    if dtype == "torch.bool":
        return rng.integers(0, 2, (n, 4)).astype(np.uint64)
    w = _width(dtype)
    edges = np.array([e & ((1 << w) - 1) for e in INT_EDGES[dtype]], dtype=np.uint64)
    uniform = rng.integers(0, 1 << min(w, 63), (n, 4), dtype=np.uint64)
    if w == 64:
        uniform |= rng.integers(0, 2, (n, 4), dtype=np.uint64) << np.uint64(63)
    pick = rng.choice(edges, (n, 4))
    return np.where(rng.integers(0, 2, (n, 4)) == 1, pick, uniform).astype(np.uint64)


def _expected(op: str, dtype: str, src: str, ops: np.ndarray) -> list[int | None]:
    """Python's result bits (None: undefined) for each case; bool results as 0/1."""
    out_dtype = "torch.bool" if op in ("lt", "le", "gt", "ge", "eq", "ne", "isnan") else dtype
    t = DTYPES[dtype]
    res: list[int | None] = []
    for row in ops:
        vals = [_value(int(x), src) for x in row]
        if op == "where":
            vals[0] = np.bool_(int(row[0]) & 1)
        try:
            r = scalar(op, t, *vals[: _ARITY[op]])
        except ElementError:
            res.append(None)
            continue
        res.append(_bits(r, out_dtype))
    return res


_ARITY = dict.fromkeys(SCALAR_OPS, 2) | dict.fromkeys(
    ["neg", "abs", "relu", "round", "sqrt", "isnan", "cast", "bitcast"], 1
) | {"where": 3, "threshold_backward": 3, "nan_to_num": 4}  # fmt: skip


def _is_nan(bits: int, dtype: str) -> bool:
    return dtype == "torch.float32" and (bits & 0x7FFFFFFF) > 0x7F800000


def _run(harness, op: str, dtype: str, src: str, ops: np.ndarray) -> None:
    want = _expected(op, dtype, src, ops)
    defined = [i for i, w in enumerate(want) if w is not None]
    src_code = F64 if src == "float64" else CODE[src]
    code = SCALAR_OPS.index(op)
    rows = ops[defined]
    if op == "where":
        rows = rows.copy()
        rows[:, 0] &= np.uint64(1)
    got: list[int] = []
    for k in range(0, len(rows), BATCH):
        data = rows[k : k + BATCH].astype(">u8").tobytes()
        raw = harness.functions.batch(code, CODE[dtype], src_code, data).call()
        got += [int(x) for x in np.frombuffer(raw, ">u8")]
    out_dtype = "torch.bool" if op in ("lt", "le", "gt", "ge", "eq", "ne", "isnan") else dtype
    bad = [
        (op, dtype, src, [hex(int(x)) for x in rows[n]], hex(g), hex(want[i]))  # type: ignore[arg-type]
        for n, (i, g) in enumerate(zip(defined, got, strict=True))
        if g != want[i] and not (_is_nan(g, out_dtype) and _is_nan(want[i], out_dtype))  # type: ignore[arg-type]
    ]
    assert not bad, bad[:8]
    for i in [i for i, w in enumerate(want) if w is None][:3]:  # undefined in Python: reverts on chain
        with pytest.raises(ContractCustomError):
            harness.functions.one(code, CODE[dtype], src_code, *[int(x) for x in ops[i]]).call()


@pytest.mark.parametrize(
    ("op", "dtype"),
    [(op, "torch.float32") for op in FLOAT_OPS]
    + [(op, d) for op, d in itertools.product(INT_OPS, ["torch.int32", "torch.int64", "torch.int8", "torch.uint8"])]
    + [(op, "torch.bool") for op in BOOL_OPS],
)
def test_each_operation_equals_python(harness, op, dtype):
    rng = np.random.default_rng([SCALAR_OPS.index(op), CODE[dtype]])
    _run(harness, op, dtype, dtype, _operands(rng, dtype, CASES))


@pytest.mark.parametrize(("src", "dst"), CASTS)
def test_casts_equal_python(harness, src, dst):
    rng = np.random.default_rng([100, CODE[src], CODE[dst]])
    ops = _operands(rng, src, CASES)
    if src == "torch.float32":  # mostly values that fit, some that do not (undefined)
        fits = rng.uniform(-300, 300, CASES).astype(np.float32).view(np.uint32).astype(np.uint64)
        ops[:, 0] = np.where(rng.integers(0, 4, CASES) > 0, fits, ops[:, 0])
    _run(harness, "cast", dst, src, ops)


def test_scalar_arguments_from_float64_and_bitcasts_equal_python(harness):
    rng = np.random.default_rng(7)
    _run(harness, "cast", "torch.float32", "float64", _operands(rng, "float64", CASES))
    _run(harness, "bitcast", "torch.int32", "torch.float32", _operands(rng, "torch.float32", CASES))
    _run(harness, "bitcast", "torch.float32", "torch.int32", _operands(rng, "torch.int32", CASES))
    # an operation on float32 whose operands come as float64 (x * 1.4426950216293335): each is rounded once first
    _run(harness, "mul", "torch.float32", "float64", _operands(rng, "float64", CASES))
    for dtype in ("torch.float32", "torch.int64"):
        _run(harness, "where", dtype, dtype, _operands(rng, dtype, CASES))


def test_undefined_elements_revert_by_name(harness, w3):
    f32 = CODE["torch.float32"]
    cases = [
        (SCALAR_OPS.index("cast"), CODE["torch.int32"], f32, 0x7F800000),  # +inf to int32
        (SCALAR_OPS.index("cast"), CODE["torch.int8"], f32, 0x43800000),  # 256.0 to int8
        (SCALAR_OPS.index("div"), CODE["torch.int32"], CODE["torch.int32"], 5),  # integer division: not an element
        (SCALAR_OPS.index("bitcast"), CODE["torch.int64"], f32, 0),  # sizes differ
        (SCALAR_OPS.index("round"), CODE["torch.int32"], CODE["torch.int32"], 3),
    ]
    selector = "0x" + w3.keccak(text="ElementUndefined(uint256,uint256,uint256,uint256)").hex().removeprefix("0x")[:8]
    for op, dtype, src, a in cases:
        with pytest.raises(ContractCustomError) as err:
            harness.functions.one(op, dtype, src, a, 0, 0, 0).call()
        assert err.value.data[:10] == selector, (op, dtype, src, a)


def test_the_contract_reads_every_record_structure_of_a_step(harness):
    """A record's structure (protocol/repro/trace.py ``encode_structure``) decodes on chain to its opcode, inputs,
    arguments and outputs, and its sha256 there is the leaf of the program root."""
    from protocol.engine.data import load_dataset
    from protocol.engine.examples import load_example, shortened
    from protocol.engine.runner import Trainer
    from protocol.repro.elements import OPCODES
    from protocol.repro.trace import ARG_TAGS, trace_step

    spec = shortened(load_example("mlp_digits"), 4, 1)
    t = Trainer(spec, load_dataset(spec.dataset))
    t.init()
    trace = trace_step(t)
    firsts = {}
    for r in trace.records:
        firsts.setdefault(r.op, r)
    sample = list(firsts.values()) + trace.records[:: max(1, len(trace.records) // 60)]
    for r in sample:
        op, inputs, tags, values, dtypes, shapes, floats, leaf = harness.functions.decodeStructure(
            r.encode_structure()
        ).call()
        assert OPCODES[op] == r.op and leaf == r.structure_hash()
        refs = [f"r{i}.{o}" if kind == 0 else (f"s:{name}" if kind == 1 else f"x:{i}") for kind, i, o, name in inputs]
        assert refs == list(r.inputs)
        assert [DTYPE_CODES[d] for d in dtypes] == [d for d, _ in r.outputs]
        assert [tuple(s) for s in shapes] == [s for _, s in r.outputs] and floats == len(r.floats)
        assert [ARG_TAGS[k] for k in tags].count("tensor") == len(r.inputs)
        assert [v for k, v in zip(tags, values, strict=True) if ARG_TAGS[k] == "int"] == [
            a for a in json.loads(r.args) if isinstance(a, int) and not isinstance(a, bool)
        ]


def _small_lm_spec():
    from protocol.engine.examples import load_example, shortened

    lm = load_example("tiny_lm")
    model = lm.model.model_copy(update={"context": 16, "d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32})
    return shortened(lm.model_copy(update={"model": model, "batch_size": 4}), 4, 1)


@functools.cache
def _step(name: str):
    """The ``keep_values`` trace of the first step of the MLP or the small LM (traced once per module; a test
    that doctors a value copies it first), and its records by operation."""
    from protocol.engine.data import load_dataset
    from protocol.engine.examples import load_example, shortened
    from protocol.engine.runner import Trainer
    from protocol.repro.trace import trace_step

    spec = shortened(load_example("mlp_digits"), 4, 1) if name == "mlp" else _small_lm_spec()
    t = Trainer(spec, load_dataset(spec.dataset))
    t.init()
    trace = trace_step(t, keep_values=True)
    by_op: dict[str, list] = {}
    for r in trace.records:
        by_op.setdefault(r.op, []).append(r)
    return trace, by_op


def _element_reads(r, ins, j: int, o: int, flats):
    """``element``'s value of output ``j``'s element ``o`` and the (input, position) pairs it read, in order."""
    from protocol.repro.elements import element

    seen: list[tuple[int, int]] = []

    def read(k: int, i: int):
        seen.append((k, i))
        return flats[k][i]

    return element(r, ins, j, o, read), seen


@pytest.mark.parametrize("name", ["mlp", "lm"])
def test_the_contract_places_every_static_read_as_python_reads_it(harness, name):
    """ElementReads (through the harness, from the encoded structure and the inputs' shapes) gives the input
    positions ``elements.element`` reads, in its order, for every static kind of record of a training step; its
    opcode-to-kind table is elements.read_kind's."""
    from protocol.repro.elements import OPCODES, READ_KINDS, operands, read_kind
    from protocol.repro.trace import UNDEFINED

    assert [READ_KINDS[harness.functions.kindOf(c).call()] for c in range(len(OPCODES))] == [
        read_kind(op) for op in OPCODES
    ]

    trace, by_op = _step(name)
    rng = np.random.default_rng(3)
    checked = 0
    for op, records in by_op.items():
        kind = read_kind(op)
        if kind == "indexed":
            continue
        for r in records[:2] + records[2 :: max(1, len(records) // 4)][:4]:
            ins = operands(trace, r)
            flats = [trace.values[ref].contiguous().view(-1).numpy() for ref in r.inputs]
            for j, (_, shape) in enumerate(r.outputs):
                if r.commitments[j] == UNDEFINED:
                    continue
                size = int(np.prod(shape))
                for o in sorted({0, size - 1, *rng.integers(0, size, 3).tolist()}):
                    _, seen = _element_reads(r, ins, j, o, flats)
                    code, inputs, at = harness.functions.reads(
                        r.encode_structure(), [list(x.shape) for x in ins], j, o
                    ).call()
                    assert READ_KINDS[code] == kind, (op, code)
                    got = list(zip(inputs, at, strict=True))
                    if op in ("aten.where.self", "aten.masked_fill.Scalar"):  # candidates: reads cond, then one
                        assert seen and set(seen) <= set(got), (op, o, seen, got)
                    else:
                        assert got == seen, (r.index, op, j, o, seen, got)
                    checked += 1
    assert checked > 100


@pytest.mark.parametrize("name", ["mlp", "lm"])
def test_the_contract_places_indexed_reads_from_the_index_elements(harness, name):
    """An indexed element (``index``, ``index_select``, ``gather``, ``scatter_``, ``index_add_rows``) reads its
    index elements first, then the data elements they name: ElementReads gives both stages as ``element`` reads
    them (``scatter_`` stops at the first index that names the position: a prefix)."""
    from protocol.repro.elements import OPCODES, operands, read_kind

    indexed_ops = ("aten.index.Tensor", "aten.index_select.default", "aten.gather.default", "aten.scatter_.value",
                   "veritrain.index_add_rows")  # fmt: skip
    assert [OPCODES.index(op) for op in indexed_ops] == [34, 35, 36, 37, 79]  # ElementReads.OP_*
    trace, _ = _step(name)
    rng = np.random.default_rng(5)
    seen_ops = set()
    for r in trace.records:
        if read_kind(r.op) != "indexed":
            continue
        seen_ops.add(r.op)
        ins = operands(trace, r)
        shapes = [list(x.shape) for x in ins]
        flats = [trace.values[ref].contiguous().view(-1).numpy() for ref in r.inputs]
        index_inputs = {0} if r.op == "veritrain.index_add_rows" else set(range(1, len(ins)))
        size = int(np.prod(r.outputs[0][1]))
        for o in sorted({0, size - 1, *rng.integers(0, size, 3).tolist()}):
            _, seen = _element_reads(r, ins, 0, o, flats)
            enc = r.encode_structure()
            k_idx, at_idx = harness.functions.indexReads(enc, shapes, o).call()
            first = list(zip(k_idx, at_idx, strict=True))
            got_idx = [x for x in seen if x[0] in index_inputs]
            if r.op == "aten.scatter_.value":
                assert first[: len(got_idx)] == got_idx, (r.index, o, got_idx, first)
            else:
                assert first == got_idx, (r.index, r.op, o, got_idx, first)
            values = [int(flats[k][i]) for k, i in first]
            k_data, at_data = harness.functions.indexedReads(enc, shapes, o, values).call()
            assert list(zip(k_data, at_data, strict=True)) == [x for x in seen if x[0] not in index_inputs], (
                r.index,
                r.op,
                o,
            )
    assert seen_ops, "the step has indexed records"


@pytest.mark.parametrize("name", ["mlp", "lm"])
def test_the_contract_computes_every_element_from_its_reads(w3, dev, name):
    """ElementEval (from the encoded structure, the inputs' shapes and dtypes, the float arguments and the read
    values in ``element``'s order) computes every kind of record's element of a training step bit for bit as
    ``element`` does; its two tables are ``elements.eval_tables()``."""
    import struct

    from protocol.repro.elements import eval_tables, operands
    from protocol.repro.trace import UNDEFINED

    harness = deploy_harness(w3, dev[0], "ElementEvalHarness")
    sol = (repo_root() / "contracts" / "src" / "libraries" / "ElementEval.sol").read_text()
    kinds, scalars = eval_tables()
    assert f'hex"{kinds.hex()}"' in sol and f'hex"{scalars.hex()}"' in sol
    trace, by_op = _step(name)
    rng = np.random.default_rng(9)
    checked = 0
    for op, records in by_op.items():
        for r in records[:2] + records[2 :: max(1, len(records) // 3)][:3]:
            ins = operands(trace, r)
            shapes = [list(x.shape) for x in ins]
            dtypes = [CODE[x.dtype] for x in ins]
            floats = [struct.unpack("<Q", struct.pack("<d", f))[0] for f in r.floats]
            flats = [trace.values[ref].contiguous().view(-1).numpy() for ref in r.inputs]
            enc = r.encode_structure()
            for j, (dtype, shape) in enumerate(r.outputs):
                if r.commitments[j] == UNDEFINED:
                    continue
                size = int(np.prod(shape))
                for o in sorted({0, size - 1, *rng.integers(0, size, 2).tolist()}):
                    want, seen = _element_reads(r, ins, j, o, flats)
                    w = _bits(want, dtype)
                    values = [_bits(flats[k][i], ins[k].dtype) for k, i in seen]
                    got = harness.functions.evaluate(enc, (shapes, dtypes, floats), j, o, values).call()
                    assert got == w or (_is_nan(got, dtype) and _is_nan(w, dtype)), (r.index, op, j, o, hex(got))
                    checked += 1
    assert checked > 100


def test_an_element_is_proven_against_its_tensors_commitment(w3, dev):
    """ElementProof checks an element against a trace commitment (the leaf's bytes and its RFC 9162 path) and
    reads its bits; another element's bytes, a doctored byte or another position are refused."""
    import torch

    from protocol.repro.trace import commitment, element_proof

    harness = deploy_harness(w3, dev[0], "ElementEvalHarness")
    rng = np.random.default_rng(11)
    nan = torch.tensor([0x7FC00001, 0xFFFFFFFF], dtype=torch.int64).to(torch.int32).view(torch.float32)
    tensors = [
        torch.tensor(rng.standard_normal(37).astype(np.float32)),  # 5 leaves, the last one short
        torch.tensor(rng.integers(-(2**62), 2**62, (3, 5)), dtype=torch.int64),
        torch.tensor([True, False, True]),
        torch.tensor(rng.standard_normal(1).astype(np.float32)),  # one leaf: empty path
        torch.cat([torch.ones(9), nan]),  # NaNs are committed (and proven) as the canonical NaN
        torch.tensor(rng.integers(-100, 100, 70), dtype=torch.int8),
    ]
    for t in tensors:
        root, n, width = commitment(t), t.numel(), t.element_size()
        flat = t.reshape(-1)
        for i in sorted({0, n - 1, *rng.integers(0, n, 4).tolist()}):
            chunk, path = element_proof(t, i)
            ok, bits = harness.functions.verifyElement(root, n, width, i, chunk, path).call()
            want = int.from_bytes(flat[i : i + 1].numpy().tobytes(), "little")
            if t.dtype == torch.float32 and bool(torch.isnan(flat[i])):
                want = 0x7FC00000
            assert ok and bits == want, (t.dtype, i, hex(bits), hex(want))
            bad = bytearray(chunk)
            bad[(i * width) % 32] ^= 1
            assert not harness.functions.verifyElement(root, n, width, i, bytes(bad), path).call()[0]
            other = (i * width // 32 + 1) * 32 // width  # the first element of the next leaf, if any
            if other < n:
                assert not harness.functions.verifyElement(root, n, width, other, chunk, path).call()[0]


@pytest.mark.parametrize("name", ["mlp", "lm"])
def test_the_contract_checks_a_claimed_element_from_proven_reads(w3, dev, name):
    """ElementCheck, the bottom of the dispute: every kind of record of a training step, a claimed output element
    and its reads proven against their commitments at the positions the record reads. The honest element holds
    and the record hashes to its trace leaf; an output one ulp off does not hold; a read at another position, or
    proven against the wrong commitment, is refused."""
    import struct

    import torch

    from protocol.repro.elements import operands
    from protocol.repro.trace import UNDEFINED, commitment, element_proof

    evaluator = deploy_harness(w3, dev[0], "ElementEvaluator")
    harness = deploy_harness(w3, dev[0], "ElementChecker", evaluator.address)
    trace, by_op = _step(name)
    rng = np.random.default_rng(13)
    lies = 0
    for op, records in by_op.items():
        for r in records[:1] + records[len(records) // 2 :][:1]:  # the first of each kind, and one from the middle
            ins = operands(trace, r)
            values = [trace.values[ref] for ref in r.inputs]
            in_commits = [commitment(v) for v in values]
            for ref, cm in zip(r.inputs, in_commits, strict=True):
                if ref.startswith("r"):  # the producer's recorded commitment is the one a dispute agreed on
                    k, jj = (int(x) for x in ref[1:].split("."))
                    assert trace.records[k].commitments[jj] in (cm, UNDEFINED)  # (an allocation copy_ writes)
            floats = [struct.unpack(">Q", struct.pack(">d", f))[0] for f in r.floats]
            flats = [v.contiguous().view(-1).numpy() for v in values]
            for j, (_, shape) in enumerate(r.outputs):
                if r.commitments[j] == UNDEFINED:
                    continue
                out = trace.values[f"r{r.index}.{j}"]
                o = int(rng.integers(0, int(np.prod(shape))))
                _, seen = _element_reads(r, ins, j, o, flats)
                reads = [(k, i, *element_proof(values[k], i)) for k, i in seen]
                base = [r.encode_structure(), floats, list(r.commitments), [list(x.shape) for x in ins],
                        [CODE[x.dtype] for x in ins], in_commits, j, o, reads]  # fmt: skip
                chunk, path = element_proof(out, o)
                holds, computed, claimed, leaf = harness.functions.check((*base, chunk, path)).call()
                assert holds and leaf == r.record_hash(), (r.index, op, j, o, hex(computed), hex(claimed))
                if op.endswith("_.List") or out.dtype == torch.bool or r.op == "aten.new_empty_strided.default":
                    continue
                lie = out.clone().contiguous()
                flat = lie.view(-1)
                bits = flat.view({4: torch.int32, 8: torch.int64, 1: torch.int8}[lie.element_size()])
                bits[o] ^= 1  # one ulp (or one unit) in one element
                commits = list(r.commitments)
                commits[j] = commitment(lie)
                lchunk, lpath = element_proof(lie, o)
                held = harness.functions.check((base[0], floats, commits, *base[3:], lchunk, lpath)).call()[0]
                assert not held, (r.index, op, j, o)
                lies += 1
                if reads:
                    k, i, rc, rp = reads[-1]
                    wrong = [*reads[:-1], (k, i, rc, rp)]
                    bad_commits = list(in_commits)
                    bad_commits[k] = bytes(32)
                    with pytest.raises(ContractCustomError):
                        harness.functions.check((*base[:5], bad_commits, j, o, wrong, chunk, path)).call()
    assert lies > 20
