"""Counter-based randomness for training: Philox4x32-10 keyed by ``(seed, purpose, step)``.

Everything random in a job — parameter initialisation, the order of examples, dropout masks — is a pure
function of the job seed, a *purpose* string and an integer *index* (the optimizer step for batches and
dropout, the epoch for permutations, 0 for initialisation). Nothing random is carried from one step to the
next, so the state of step ``s`` needs no hidden generator state to continue, and any step's batch can be
computed without replaying the steps before it.

Torch's generators are not used anywhere: ``torch.randn`` gives different numbers under
``ATEN_CPU_CAPABILITY=default`` than under ``avx2`` (TOOLCHAIN.md).

The generator (the protocol; a verifier in another language reproduces it from this text)
-------------------------------------------------------------------------------------------
Philox4x32 with 10 rounds (Salmon et al., SC'11; the Random123 reference, whose known-answer vectors the tests
check). Block function ``philox(ctr: 4×u32, key: 2×u32) -> 4×u32``.

For a stream ``(seed, purpose, index)``:

* ``key   = (seed mod 2^32, seed >> 32)``                       (the 64-bit job seed)
* ``tag   = first 8 bytes of SHA-256(b"veritrain/rng/v1\\0" ‖ purpose UTF-8 ‖ b"\\0" ‖ index as 8 bytes LE)``
  read as two little-endian u32 ``(t0, t1)``
* block ``b`` (b = 0, 1, 2, …) is ``philox((b mod 2^32, b >> 32, t0, t1), key)``; the stream of 32-bit words
  is block 0's four words, then block 1's, …

Derived values (exact integer or correctly rounded binary64 arithmetic only, the same on every machine):

* :meth:`Stream.uniform`: value ``j`` uses words ``2j`` (``a``) and ``2j+1`` (``b``):
  ``u = ((a >> 5) · 2^26 + (b >> 6)) · 2^-53``, a binary64 in ``[0, 1)`` — exact.
* :meth:`Stream.keys64`: value ``j`` is ``a · 2^32 + b`` (a u64 sort key).
* :meth:`Stream.bernoulli_keep`: 16-bit draws, two per word (low half first);
  draw ``j`` keeps its element when ``draw >= round(p · 65536)``; the drop probability is ``p`` quantised to
  a multiple of ``1/65536``. ``start`` skips the first ``start`` draws (a micro-batch's slice of the mask of
  a whole batch).
* :func:`permutation` of ``n`` items for stream ``(seed, purpose, epoch)``: stable ascending sort of the
  ``n`` sort keys; position ``i`` holds the item whose key ranks ``i``th (ties, astronomically rare, keep the
  item order).
"""

from __future__ import annotations

import hashlib
import struct
from functools import lru_cache

import numpy as np

__all__ = ["GENERATOR", "Stream", "permutation", "philox4x32", "stream_tag"]

#: Recorded in every checkpoint's metadata: the name of the generator and its version.
GENERATOR = "philox4x32-10/v1"

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = 0x9E3779B9
_W1 = 0xBB67AE85
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_ROUNDS = 10


def philox4x32(
    c0: np.ndarray | np.integer,
    c1: np.ndarray | np.integer,
    c2: np.ndarray | np.integer,
    c3: np.ndarray | np.integer,
    k0: int,
    k1: int,
) -> np.ndarray:
    """Philox4x32-10 on counters (uint64 arrays or scalars holding u32 values); returns (n, 4) uint32 words."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) & _MASK32 for c in (c0, c1, c2, c3))
    c0, c1, c2, c3 = np.broadcast_arrays(c0, c1, c2, c3)
    k0 &= 0xFFFFFFFF
    k1 &= 0xFFFFFFFF
    for r in range(_ROUNDS):
        if r:
            k0 = (k0 + _W0) & 0xFFFFFFFF
            k1 = (k1 + _W1) & 0xFFFFFFFF
        p0 = c0 * _M0  # < 2^64: exact in uint64
        p1 = c2 * _M1
        hi0, lo0 = p0 >> _SHIFT32, p0 & _MASK32
        hi1, lo1 = p1 >> _SHIFT32, p1 & _MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


_NUMBA_MIN_BLOCKS = 2048
_nb_kernel = None


def _numba_blocks():
    """The same block function compiled with numba (uint64 arithmetic throughout): ~50x faster than the numpy
    version for dropout masks. Loaded on first use; the numpy version is the reference (tests compare)."""
    global _nb_kernel
    if _nb_kernel is None:
        from protocol.repro._config import numba_ready

        numba_ready()  # numba's on-disk cache directory
        import numba

        u = np.uint64
        M0, M1, W0, W1, MASK, S32 = u(0xD2511F53), u(0xCD9E8D57), u(_W0), u(_W1), u(0xFFFFFFFF), u(32)

        @numba.njit(cache=True, nogil=True)
        def blocks(first, n, t0, t1, k0, k1, out):  # pragma: no cover - compiled
            for i in range(n):
                b = first + u(i)
                c0, c1, c2, c3 = b & MASK, b >> S32, t0, t1
                K0, K1 = k0, k1
                for r in range(10):
                    if r > 0:
                        K0 = (K0 + W0) & MASK
                        K1 = (K1 + W1) & MASK
                    p0 = c0 * M0
                    p1 = c2 * M1
                    c0, c1, c2, c3 = (p1 >> S32) ^ c1 ^ K0, p1 & MASK, (p0 >> S32) ^ c3 ^ K1, p0 & MASK
                out[i, 0] = c0
                out[i, 1] = c1
                out[i, 2] = c2
                out[i, 3] = c3

        _nb_kernel = blocks
    return _nb_kernel


@lru_cache(maxsize=4096)
def stream_tag(purpose: str, index: int) -> tuple[int, int]:
    """The two counter words (t0, t1) that name the stream ``(purpose, index)``."""
    if index < 0 or index >= 1 << 64:
        raise ValueError(f"stream index {index} out of range [0, 2^64)")
    h = hashlib.sha256(b"veritrain/rng/v1\0" + purpose.encode() + b"\0" + struct.pack("<Q", index)).digest()
    return struct.unpack("<II", h[:8])


class Stream:
    """The word stream for ``(seed, purpose, index)``; every draw method starts at word 0 of the stream."""

    def __init__(self, seed: int, purpose: str, index: int = 0) -> None:
        if not 0 <= seed < 1 << 64:
            raise ValueError(f"seed {seed} out of range [0, 2^64)")
        self.seed, self.purpose, self.index = seed, purpose, index
        self._t0, self._t1 = stream_tag(purpose, index)

    def words(self, n: int, start: int = 0) -> np.ndarray:
        """Words ``start … start + n - 1`` of the stream (uint32)."""
        first = start // 4
        blocks = -(-(start + n) // 4) - first
        skip = start - 4 * first
        if blocks >= _NUMBA_MIN_BLOCKS:
            out = np.empty((blocks, 4), dtype=np.uint32)
            u = np.uint64
            _numba_blocks()(
                u(first), blocks, u(self._t0), u(self._t1), u(self.seed & 0xFFFFFFFF), u(self.seed >> 32), out
            )
            return out.reshape(-1)[skip : skip + n]
        return self.words_reference(n, start)

    def words_reference(self, n: int, start: int = 0) -> np.ndarray:
        """:meth:`words` computed with numpy only (the reference the numba path is tested against)."""
        first = start // 4
        blocks = -(-(start + n) // 4) - first
        skip = start - 4 * first
        b = np.arange(first, first + blocks, dtype=np.uint64)
        out = philox4x32(
            b & _MASK32,
            b >> _SHIFT32,
            np.uint64(self._t0),
            np.uint64(self._t1),
            self.seed & 0xFFFFFFFF,
            self.seed >> 32,
        )
        return out.reshape(-1)[skip : skip + n]

    def uniform(self, n: int) -> np.ndarray:
        """``n`` binary64 uniforms in [0, 1), 53 random bits each."""
        w = self.words(2 * n).astype(np.uint64).reshape(n, 2)
        m = (w[:, 0] >> np.uint64(5)) * np.uint64(1 << 26) + (w[:, 1] >> np.uint64(6))
        return m.astype(np.float64) * 2.0**-53  # m < 2^53: exact conversion; scaling by 2^-53: exact

    def keys64(self, n: int) -> np.ndarray:
        """``n`` u64 sort keys."""
        w = self.words(2 * n).astype(np.uint64).reshape(n, 2)
        return (w[:, 0] << _SHIFT32) | w[:, 1]

    def bernoulli_keep(self, n: int, p: float, start: int = 0) -> np.ndarray:
        """Boolean keep-mask of draws ``start … start + n - 1``: each element is dropped with probability
        ``round(p·65536)/65536``."""
        threshold = round(p * 65536)
        w0 = start // 2
        w = self.words(-(-(start + n) // 2) - w0, w0)
        draws = np.empty(2 * w.size, dtype=np.uint32)
        draws[0::2] = w & np.uint32(0xFFFF)
        draws[1::2] = w >> np.uint32(16)
        skip = start - 2 * w0
        return draws[skip : skip + n] >= np.uint32(threshold)


def permutation(seed: int, purpose: str, epoch: int, n: int) -> np.ndarray:
    """A permutation of ``range(n)`` (int64) for ``(seed, purpose, epoch)``: items sorted by their stream keys."""
    keys = Stream(seed, purpose, epoch).keys64(n)
    return np.argsort(keys, kind="stable").astype(np.int64)
