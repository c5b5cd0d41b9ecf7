"""The on-chain binary32 library (Float32.sol, through Float32Harness on anvil) equals numpy float32 bit for bit on
random bit patterns biased to edge classes; NaN results count as equal when both are NaN (numpy's payload
propagation is platform-specific, the library returns 0x7fc00000). ``VERITRAIN_FLOAT32_CASES`` (default 100 000)
sets the cases per operation: the longer profile is ``VERITRAIN_FLOAT32_CASES=10000000``."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from harnesses import deploy_harness
from web3 import Web3
from web3.exceptions import ContractCustomError

pytestmark = pytest.mark.chain

CASES = int(os.environ.get("VERITRAIN_FLOAT32_CASES", "100000"))
BATCH = 4096
SEED = 16
SPECIALS = np.array(
    [0, 0x80000000, 1, 0x80000001, 0x7FFFFF, 0x807FFFFF, 0x800000, 0x80800000, 0x7F7FFFFF, 0xFF7FFFFF,
     0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FBFFFFF, 0x3F800000, 0xBF800000,
     0x40000000, 0x3F000000, 0x3F800001, 0x4B000000, 0x4B7FFFFF, 0x33800000, 0x34000000],
    np.uint32,
)  # fmt: skip


def edge_biased(rng: np.random.Generator, n: int) -> np.ndarray:
    """Bit patterns: uniform, specials, subnormals, tiny/huge/mid exponents, short and near-halfway mantissas."""
    sign = rng.integers(0, 2, n, dtype=np.uint32) << 31
    frac = rng.integers(0, 1 << 23, n, dtype=np.uint32)
    cls = rng.integers(0, 8, n)
    short = frac & ~((np.uint32(1) << rng.integers(10, 23, n).astype(np.uint32)) - 1) & 0x7FFFFF
    halfway = (frac & ~np.uint32(0xFFF)) | rng.choice(np.array([0, 1, 0x7FF, 0x800, 0x801, 0xFFF], np.uint32), n)
    exp = np.select(
        [cls == 1, cls == 2, cls == 3],
        [np.zeros(n, np.int64), rng.integers(1, 40, n), rng.integers(215, 255, n)],
        rng.integers(100, 155, n),
    ).astype(np.uint32)
    mant = np.select([cls == 4, cls == 5], [short, halfway], frac)
    out = sign | (exp << 23) | mant
    out = np.where(cls == 0, rng.integers(0, 1 << 32, n, dtype=np.uint32), out)
    return np.where(cls == 6, rng.choice(SPECIALS, n) ^ sign, out).astype(np.uint32)


def pairs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = edge_biased(rng, n), edge_biased(rng, n)
    near = (a & 0xFF800000) ^ (rng.integers(0, 2, n, dtype=np.uint32) << 31)
    near = (near + (rng.integers(-3, 4, n).astype(np.int64) << 23).astype(np.uint32)) | (b & 0x7FFFFF)
    which = rng.integers(0, 4, n)  # 1: exponent close to a's (cancellation, ties), 2: -a or a
    b = np.where(which == 1, near, b)
    b = np.where(which == 2, a ^ (rng.integers(0, 2, n, dtype=np.uint32) << 31), b)
    return a.astype(np.uint32), b.astype(np.uint32)


def f32(bits: np.ndarray) -> np.ndarray:
    return bits.astype(np.uint32).view(np.float32)


def same(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Bit-equal, or both NaN."""
    want = want.view(np.uint32)
    nan = lambda u: (u & 0x7FFFFFFF) > 0x7F800000  # noqa: E731
    return (got == want) | (nan(got) & nan(want))


def call_batched(fn, data: bytes, width: int, n: int) -> bytes:
    out = b""
    for i in range(0, n, BATCH):
        out += fn(data[i * width : (i + BATCH) * width]).call()
    return out


@pytest.fixture(scope="module")
def harness(w3, dev):
    return deploy_harness(w3, dev[0], "Float32Harness")


def u32(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, ">u4").astype(np.uint32)


def report(op: str, n: int, t0: float) -> None:
    dt = time.monotonic() - t0
    print(f"float32 {op}: {n} cases equal numpy in {dt:.1f}s ({n / dt:,.0f} cases/s)")


@pytest.mark.parametrize(("op", "code", "ref"), [("add", 0, np.add), ("sub", 1, np.subtract),
                                                 ("mul", 2, np.multiply), ("div", 3, np.divide)])  # fmt: skip
def test_binary_ops_equal_numpy(harness, op, code, ref):
    rng = np.random.default_rng([SEED, code])
    a, b = pairs(rng, CASES)
    t0 = time.monotonic()
    data = np.stack([a, b], 1).astype(">u4").tobytes()
    got = u32(call_batched(lambda d: harness.functions.binary(code, d), data, 8, CASES))
    with np.errstate(all="ignore"):
        want = ref(f32(a), f32(b))
    bad = np.flatnonzero(~same(got, want))
    assert bad.size == 0, [(hex(a[i]), hex(b[i]), hex(got[i]), hex(want.view(np.uint32)[i])) for i in bad[:10]]
    report(op, CASES, t0)


@pytest.mark.parametrize(
    ("op", "code", "ref"),
    [("sqrt", 0, np.sqrt), ("neg", 1, np.negative), ("abs", 2, np.abs), ("roundEven", 3, np.rint)],
)
def test_unary_ops_equal_numpy(harness, op, code, ref):
    x = edge_biased(np.random.default_rng([SEED, 10 + code]), CASES)
    t0 = time.monotonic()
    got = u32(call_batched(lambda d: harness.functions.unary(code, d), x.astype(">u4").tobytes(), 4, CASES))
    with np.errstate(all="ignore"):
        want = ref(f32(x))
    bad = np.flatnonzero(~same(got, want))
    assert bad.size == 0, [(hex(x[i]), hex(got[i]), hex(want.view(np.uint32)[i])) for i in bad[:10]]
    report(op, CASES, t0)


def test_comparisons_equal_numpy(harness):
    a, b = pairs(np.random.default_rng([SEED, 20]), CASES)
    t0 = time.monotonic()
    data = np.stack([a, b], 1).astype(">u4").tobytes()
    got = np.frombuffer(call_batched(harness.functions.compare, data, 8, CASES), np.uint8)
    fa, fb = f32(a), f32(b)
    with np.errstate(all="ignore"):
        want = (fa == fb).astype(np.uint8) | ((fa < fb).astype(np.uint8) << 1) | ((fa <= fb).astype(np.uint8) << 2)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, [(hex(a[i]), hex(b[i]), got[i], want[i]) for i in bad[:10]]
    report("eq/lt/le", CASES, t0)


def test_from_float64_equals_numpy(harness):
    """The C cast from double (a record's float arguments are float64): edge-biased binary64 patterns — around
    every float32 rounding boundary (halfway cases, the subnormal range and below it, overflow), specials."""
    rng = np.random.default_rng([SEED, 31])
    base = edge_biased(rng, CASES).view(np.float32).astype(np.float64).view(np.uint64)
    low = rng.integers(0, 1 << 29, CASES, dtype=np.uint64)  # the 29 bits a float32 drops
    low = np.where(rng.integers(0, 3, CASES) == 0, np.uint64(1 << 28), low)  # exact ties
    tiny = (rng.integers(0, 1 << 63, CASES, dtype=np.uint64) & np.uint64(0x800FFFFFFFFFFFFF)) | (
        rng.integers(0x340, 0x3A0, CASES).astype(np.uint64) << np.uint64(52)
    )  # binary64 exponents around and below float32's subnormals
    v = np.where(rng.integers(0, 4, CASES) == 0, tiny, base | low).astype(np.uint64)
    v[:6] = [0x7FF0000000000001, 0xFFF8000000000000, 0x47EFFFFFF0000000, 0x47EFFFFFE0000000, 0x36A0000000000000, 1]
    t0 = time.monotonic()
    got = u32(call_batched(harness.functions.fromFloat64, v.astype(">u8").tobytes(), 8, CASES))
    with np.errstate(all="ignore"):
        want = v.view(np.float64).astype(np.float32)
    bad = np.flatnonzero(~same(got, want))
    assert bad.size == 0, [(hex(v[i]), hex(got[i]), hex(want.view(np.uint32)[i])) for i in bad[:10]]
    report("fromFloat64", CASES, t0)


def test_from_int64_equals_numpy(harness):
    rng = np.random.default_rng([SEED, 30])
    bits = rng.integers(0, 64, CASES).astype(np.uint64)
    v = (rng.integers(0, 1 << 63, CASES, dtype=np.uint64) >> (np.uint64(63) - bits)).astype(np.int64)
    v = np.where(rng.integers(0, 2, CASES) == 1, -v, v)
    v[:4] = [np.iinfo(np.int64).min, np.iinfo(np.int64).max, 16777217, -16777219]
    t0 = time.monotonic()
    got = u32(call_batched(harness.functions.fromInt64, v.astype(">i8").tobytes(), 8, CASES))
    bad = np.flatnonzero(~same(got, v.astype(np.float32)))
    assert bad.size == 0, [(int(v[i]), hex(got[i])) for i in bad[:10]]
    report("fromInt", CASES, t0)


def test_to_int_truncates_exactly(harness):
    x = edge_biased(np.random.default_rng([SEED, 40]), CASES)
    x = x[(x & 0x7FFFFFFF) < 0x7F800000]
    t0 = time.monotonic()
    got: list[int] = []
    for i in range(0, x.size, BATCH):
        got += harness.functions.toInt(x[i : i + BATCH].astype(">u4").tobytes()).call()
    want = [int(f) for f in f32(x).astype(np.float64)]
    assert got == want
    report("toInt", x.size, t0)
    selector = Web3.keccak(text="Float32NotFinite(uint32)")[:4].hex()
    for special in (0x7F800000, 0xFF800000, 0x7FC00000):
        with pytest.raises(ContractCustomError, match=selector + f"{special:064x}"):
            harness.functions.toInt(int(special).to_bytes(4, "big")).call()
