"""The engine's counter-based generator: Philox4x32-10 known answers, numba = numpy, derived draws."""

import numpy as np
import pytest

from protocol.engine.rng import Stream, permutation, philox4x32, stream_tag


def _block(ctr, key):
    c = [np.array([x], dtype=np.uint64) for x in ctr]
    return [int(v) for v in philox4x32(*c, *key)[0]]


@pytest.mark.parametrize(
    ("ctr", "key", "expected"),
    [
        # Random123's kat_vectors for philox4x32 with 10 rounds
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            (0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
        ),
    ],
)
def test_philox4x32_10_matches_random123_known_answers(ctr, key, expected):
    assert tuple(_block(ctr, key)) == expected


@pytest.mark.parametrize("seed", [0, 1, 2**32 + 7, 2**64 - 1])
def test_numba_stream_equals_numpy_reference(seed):
    s = Stream(seed, "dropout/blocks.0.attn", 12345)
    n = 4 * 5000 + 3  # above the numba threshold, not a multiple of 4
    assert np.array_equal(s.words(n), s.words_reference(n))


def test_streams_are_keyed_by_seed_purpose_and_index():
    base = Stream(7, "data/order", 3).words(64)
    assert np.array_equal(base, Stream(7, "data/order", 3).words(64))
    for other in (Stream(8, "data/order", 3), Stream(7, "data/orde", 3), Stream(7, "data/order", 4)):
        assert not np.array_equal(base, other.words(64))
    assert stream_tag("a", 1) != stream_tag("a", 2)


def test_a_prefix_of_a_stream_does_not_depend_on_its_length():
    s = Stream(3, "x", 0)
    assert np.array_equal(s.words(10), s.words(100_000)[:10])
    assert np.array_equal(s.uniform(5), s.uniform(50)[:5])


def test_uniform_values_are_53_bit_fractions_in_unit_interval():
    u = Stream(11, "init/w", 0).uniform(100_000)
    assert u.dtype == np.float64 and (u >= 0).all() and (u < 1).all()
    assert np.all(u * 2.0**53 == np.floor(u * 2.0**53))
    assert abs(u.mean() - 0.5) < 0.01


def test_bernoulli_keep_rate_and_quantisation():
    keep = Stream(5, "dropout/x", 9).bernoulli_keep(400_001, 0.1)
    assert keep.shape == (400_001,)
    assert abs((1 - keep.mean()) - round(0.1 * 65536) / 65536) < 0.003
    assert Stream(5, "dropout/x", 9).bernoulli_keep(1000, 0.0).all()


def test_permutation_is_a_permutation_and_depends_on_epoch():
    p0 = permutation(1, "data/order", 0, 1437)
    p1 = permutation(1, "data/order", 1, 1437)
    assert sorted(p0.tolist()) == list(range(1437))
    assert not np.array_equal(p0, p1)
    assert np.array_equal(p0, permutation(1, "data/order", 0, 1437))
