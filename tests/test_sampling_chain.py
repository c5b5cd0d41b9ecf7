"""protocol/sampling.py draws exactly the segments the contracts draw (Sampling.sol through a harness on anvil)."""

from __future__ import annotations

import random

import pytest
from harnesses import deploy_harness

from protocol import sampling

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def harness(w3, dev):
    return deploy_harness(w3, dev[0], "SamplingHarness")


def test_sample_count_matches_contract(harness):
    rng = random.Random(7)
    cases = [(1, 1, 1), (1, 10_000, 64), (20, 500, 16), (21, 500, 16), (1000, 10_000, 64), (7, 3, 2)]
    cases += [(rng.randint(1, 1 << 20), rng.randint(1, 10_000), rng.randint(1, 64)) for _ in range(60)]
    for n, rate, cap in cases:
        assert harness.functions.sampleCount(n, rate, cap).call() == sampling.sample_count(n, rate, cap)


def test_sampled_indices_match_contract_for_random_seeds_and_sizes(harness):
    rng = random.Random(11)
    for _ in range(60):
        seed = rng.randbytes(32)
        n = rng.choice([1, 2, 3, 5, 16, 17, 100, rng.randint(1, 1 << 20), rng.randint(1, 64)])
        m = rng.randint(1, min(n, 32))
        expected = sampling.sample(seed, n, m)
        assert harness.functions.sample(seed, n, m).call() == expected
        assert len(set(expected)) == m and all(0 <= i < n for i in expected)


def test_python_sampler_rejects_impossible_requests():
    with pytest.raises(ValueError):
        sampling.sample(b"\x00" * 32, 3, 4)
    with pytest.raises(ValueError):
        sampling.sample_count(0, 500, 16)
