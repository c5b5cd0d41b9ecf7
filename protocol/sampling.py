"""The audit sample, exactly as the contracts draw it (contracts/src/libraries/Sampling.sol, JobMarket.drawAudit).

All hashes here are keccak256 over ``abi.encode`` of 32-byte words, as the EVM computes them:

- audit seed: ``keccak256(abi.encode(prevrandao(seedBlock), jobId, trajectoryRoot))``, the RANDAO value read from
  the seed block's header (protocol/blockheader.py);
- sample count: ``m = max(1, ceil(rateBps·n / 10000))``, capped at ``maxSampledSegments`` and at ``n``;
- candidate ``j``: ``uint256(keccak256(abi.encode(seed, j))) % n``; the first ``m`` distinct candidates, in the
  order drawn, are the sampled segment indices.
"""

from __future__ import annotations

from eth_utils import keccak

from protocol.constants import BPS


def _word(x: int | bytes) -> bytes:
    if isinstance(x, int):
        if not 0 <= x < 1 << 256:
            raise ValueError(f"{x} does not fit a uint256")
        return x.to_bytes(32, "big")
    if len(x) != 32:
        raise ValueError(f"expected 32 bytes, got {len(x)}")
    return bytes(x)


def derive(seed: bytes, k: int) -> bytes:
    """``keccak256(abi.encode(seed, k))`` — the k-th sub-seed."""
    return keccak(_word(seed) + _word(k))


def draw_weights_block(seed_block: int) -> int:
    """The block whose end-of-block draw weights a draw seeded by ``seed_block`` reads (DrawSeed.weightsBlock):
    the block before the one whose transaction fixed the seed block, so nobody adjusted them knowing the seed."""
    return seed_block - 2


def audit_seed(randao: bytes, job_id: bytes, trajectory_root: bytes) -> bytes:
    """The job's audit seed from the RANDAO value of its seed block (the block after the commit)."""
    return keccak(_word(randao) + _word(job_id) + _word(trajectory_root))


def sample_count(n: int, rate_bps: int, max_samples: int) -> int:
    """m = max(1, ceil(rate_bps · n / 10000)), capped at ``max_samples`` and at ``n``."""
    if n <= 0:
        raise ValueError("a trajectory has at least one segment")
    m = (rate_bps * n + BPS - 1) // BPS
    return min(max(m, 1), max_samples, n)


def sample(seed: bytes, n: int, m: int) -> list[int]:
    """The first ``m`` distinct indices in [0, n) drawn from ``seed`` (requires 0 < m <= n)."""
    if not 0 < m <= n:
        raise ValueError(f"need 0 < m <= n, got m={m}, n={n}")
    picked: list[int] = []
    seen: set[int] = set()
    j = 0
    while len(picked) < m:
        candidate = int.from_bytes(derive(seed, j), "big") % n
        if candidate not in seen:
            seen.add(candidate)
            picked.append(candidate)
        j += 1
    return picked


def sampled_segments(seed: bytes, n: int, rate_bps: int, max_samples: int) -> list[int]:
    """The segments a job's audit replays: ``sample(seed, n, sample_count(n, rate_bps, max_samples))``."""
    return sample(seed, n, sample_count(n, rate_bps, max_samples))
