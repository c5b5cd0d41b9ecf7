"""The order-dependent primitives of exact mode, each with a fast and a reference path.

Every exact-mode operator in :mod:`protocol.repro.functional` is built from
the four primitives below plus elementwise IEEE-754 float32 operations
(``+ - * /``, comparisons, selects, copies, exact bit operations), which are
correctly rounded on every CPU and GPU, and the functions of
:mod:`protocol.repro.fmath` (sqrt included: ``torch.sqrt`` is *not* correctly
rounded on every CPU torch build). So these four definitions,
together with the formulas in the operator docstrings, *are* the protocol:
an implementation in another language or on another device that performs the
same float32 operations in the same order produces the same bits.

Notation: ``fl(e)`` is the IEEE-754 binary32 round-to-nearest-even result of
one operation; every ``+`` and ``*`` below is rounded separately (no fused
multiply-add); accumulators start at ``+0.0``.

``mm(A, B, bias)`` — batched matrix product, A (nb, M, K), B (nb, K, N)::

    acc = +0.0
    for k = 0, 1, ..., K-1:            # ascending, one product at a time
        acc = fl(acc + fl(A[b,i,k] * B[b,k,j]))
    C[b,i,j] = fl(acc + bias[j])      # only when a bias is given

``rowsum(X)`` — X (R, L) → (R,): ``acc = fl(acc + X[r,l])`` for l ascending.

``colsum(X)`` — X (R, L) → (L,): ``acc = fl(acc + X[r,l])`` for r ascending.

``index_add_rows(idx, G, V)`` — idx (N,), G (N, D) → (V, D): row ``v`` is
``acc = fl(acc + G[n,:])`` over the n with ``idx[n] == v`` in ascending n
(rows never indexed stay +0.0).

(``acc`` can never be −0.0, so adding a zero bias, or skipping a term that is
a zero product, never changes a result; only NaN/inf inputs could tell them
apart.)

Implementations
---------------
*reference* (any device, pure torch): :func:`mm_reference` performs the K
rank-1 updates ``C = C + A[:, :, k:k+1] * B[:, k:k+1, :]`` as separate torch
elementwise multiply and add kernels — exactly the order above, on CPU or
CUDA; the sums loop over the summed axis the same way; the scatter-add runs
one "rank within its index group" at a time. Slow, obviously right.

*fast* (CPU, numba 0.68, ``fastmath=False``): the GEMM packs A into MR-row and
B into NR-column panels and runs a register-tiled micro-kernel per MR×NR tile
of C, keeping the MR·NR accumulators in registers while it walks k in
ascending order (in blocks of ``kc``; an accumulator is carried from one block
to the next unchanged, and the bias is added once, when the tile is stored).
The tile is written as MR·NR scalar float32 statements (generated code) that
LLVM's SLP vectoriser turns into SIMD registers. A SIMD lane is always a
*different* output element, so the vector width (SSE/AVX2/AVX-512, whatever
the CPU has) cannot change an element's order, and without fast-math flags
LLVM may neither reassociate nor fuse ``acc + a*b`` into an FMA. Threads split
the row panels, never a sum; small problems run a serial twin of each kernel.
Operands are read through offset tables (:class:`Operand`), so transposed
views and the implicit im2col matrix of a convolution are never copied. The
tiling (8×16 with AVX-512, else 4×16), ``kc`` and the thread count change
speed only; the tests check every combination bit for bit against the
reference, and :func:`self_check` repeats a small check in every process on
first use (it refuses to run if a compiler ever broke the order).

*triton* (CUDA, :mod:`protocol.repro._triton_kernels`): one GPU program per
tile of outputs with the tile's accumulators in registers, k walked one step
at a time with a separate float32 multiply and add (compiled with
``enable_fp_fusion=False``: no FMA; no ``tl.dot``, so no tensor cores; no
split-K), the same offset tables. The backend "fast" runs it for CUDA tensors
(``$VERITRAIN_REPRO_CUDA=reference`` selects the reference path instead); it
compares itself with the reference path on first use on each device.

Why this design — measured on the 2-core AMD EPYC (Zen 4, AVX-512) dev machine,
torch 2.13 CPU, one thread, GEMM alone, best of 40 (time / native ``A @ B``):

==================  ========================  ==============  =================
shape M×K×N         numba, plain i→k→j loops  this kernel     native (oneDNN)
==================  ========================  ==============  =================
64×784×128          2.5–4.4×                  1.6× (225 µs)   140 µs
256×784×512         2.3–3.2×                  1.2× (2.4 ms)   2.0 ms
12544×144×32 (conv) 4.3×                      1.7× (3.0 ms)   1.75 ms
==================  ========================  ==============  =================

(TOOLCHAIN.md's first attempts, same machine: a fixed pairwise tree of torch
elementwise ops 7–340×, a naive Ozaki float64 splitting ~50×.) On Zen 4 a
separate vector multiply and add sustain as many flops per cycle as an FMA,
so a sequential-k kernel without contraction can get close to the BLAS; what
remains is packing and per-call overhead on small shapes. Ozaki splitting
needs several float64 GEMMs per product plus an exact recombination, and
defines a different rounding (one rounding of the exact sum); pairwise trees
materialise M×K×N products. Both lose by an order of magnitude, so the
sequential-k register-tiled kernel is the one; its order is also the one a
GPU thread-per-output kernel has naturally. Layer and training-step ratios:
:mod:`protocol.repro.bench`.
"""

from __future__ import annotations

import builtins
import functools
import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._config import cuda_path, get_backend, numba_config, slp_vectorize
from .version import KERNEL_SET_VERSION

builtins_sum = builtins.sum

__all__ = [
    "KERNEL_SET_VERSION",
    "Operand",
    "colsum",
    "colsum_reference",
    "index_add_rows",
    "index_add_rows_reference",
    "mm",
    "mm_reference",
    "rowsum",
    "rowsum_reference",
    "self_check",
    "tiling",
    "triton_kernels",
    "use_fast",
    "use_triton",
]

# --------------------------------------------------------------------------------------------
# numba loading (lazy: importing protocol.repro must stay cheap)
# --------------------------------------------------------------------------------------------
_lock = threading.Lock()
_K: dict | None = None


@functools.cache
def tiling() -> tuple[int, int]:
    """The (MR, NR) register tile of the fast GEMM: ``$VERITRAIN_REPRO_TILING`` ("8x16"/"4x16") or by CPU."""
    env = os.environ.get("VERITRAIN_REPRO_TILING")
    if env:
        mr, nr = (int(v) for v in env.lower().split("x"))
        return mr, nr
    try:
        import llvmlite.binding as llvm

        feats = llvm.get_host_cpu_features()
        if feats.get("avx512f", False):
            return 8, 16
    except Exception:  # pragma: no cover - exotic platforms
        pass
    return 4, 16


class _Pair:
    """A kernel's parallel version and its serial twin; calling picks by the amount of work."""

    __slots__ = ("par", "ser", "threshold")

    def __init__(self, par, ser, threshold: int) -> None:
        self.par, self.ser, self.threshold = par, ser, threshold

    def __call__(self, work: int, *args):
        fn = self.par if work >= self.threshold and _nthreads() > 1 else self.ser
        return fn(*args)


# work (multiply-adds or element operations) from which a kernel runs on several threads
_PAR_THRESHOLDS = {
    "gemm": 1 << 21,
    "rowsum": 1 << 18,
    "colsum": 1 << 18,
    "index_add_rows": 1 << 18,
    "sqrt": 1 << 16,
    "exp": 1 << 15,
    "tanh": 1 << 15,
    "log": 1 << 15,
    "gelu": 1 << 14,
    "gelu_grad": 1 << 15,
    "maxpool_fwd": 1 << 17,
    "maxpool_bwd": 1 << 17,
}


def _load() -> dict:
    global _K
    if _K is not None:
        return _K
    with _lock:
        if _K is not None:
            return _K
        from numba import boolean, float32, int8, int64, void

        with slp_vectorize():
            from . import _nb_kernels as nbk

            f1, f2, f4 = float32[::1], float32[:, ::1], float32[:, :, :, ::1]
            i1, i4, bo = int64[::1], int8[:, :, :, ::1], boolean
            mr, nr = tiling()
            if (mr, nr) not in nbk.GEMMS:
                raise ValueError(f"no generated GEMM for tiling {mr}x{nr}; have {sorted(nbk.GEMMS)}")
            gemm_sig = void(int64, int64, int64, int64, f1, i1, i1, i1, bo, f1, i1, i1, i1, bo, bo, f1, f1, i1, i1,
                            i1, bo, int64, int64, f1, f1, f1)  # fmt: skip
            # name -> ((parallel, serial) dispatchers, signature); each dispatcher wraps another function type
            table: dict[str, tuple[tuple[Any, Any], Any]] = {
                "gemm": (nbk.GEMMS[(mr, nr)], gemm_sig),
                "rowsum": ((nbk.rowsum, nbk.rowsum_serial), void(f2, f1)),
                "colsum": ((nbk.colsum, nbk.colsum_serial), void(f2, f1)),
                "index_add_rows": ((nbk.index_add_rows, nbk.index_add_rows_serial), void(i1, f2, f2)),
                "sqrt": ((nbk.sqrt_kernel, nbk.sqrt_kernel_serial), void(f1, f1)),
                "exp": ((nbk.exp_kernel, nbk.exp_kernel_serial), void(f1, f1)),
                "tanh": ((nbk.tanh_kernel, nbk.tanh_kernel_serial), void(f1, f1)),
                "log": ((nbk.log_kernel, nbk.log_kernel_serial), void(f1, f1)),
                "gelu": ((nbk.gelu_kernel, nbk.gelu_kernel_serial), void(f1, f1, f1)),
                "gelu_grad": ((nbk.gelu_grad_kernel, nbk.gelu_grad_kernel_serial), void(f1, f1, f1, f1)),
                "maxpool_fwd": ((nbk.maxpool_fwd, nbk.maxpool_fwd_serial), void(f4, int64, f4, i4)),
                "maxpool_bwd": ((nbk.maxpool_bwd, nbk.maxpool_bwd_serial), void(f4, i4, int64, f4)),
            }
            k = {}
            force = os.environ.get("VERITRAIN_REPRO_PAR_MIN")  # tests: force the parallel kernels
            for name, ((par, ser), sig) in table.items():
                par.compile(sig)
                ser.compile(sig)
                k[name] = _Pair(par, ser, int(force) if force else _PAR_THRESHOLDS[name])
        _self_check(k)
        _K = k
        return k


def _nthreads() -> int:
    import numba

    return numba.get_num_threads()


def use_fast(*tensors: torch.Tensor) -> bool:
    """True when the numba path applies: backend "fast" and every tensor a float32/int64 CPU tensor."""
    if get_backend() != "fast":
        return False
    return all(t.device.type == "cpu" for t in tensors)


_triton_state: dict = {}
_triton_lock = threading.Lock()


def triton_kernels():
    """The Triton kernel module (:mod:`protocol.repro._triton_kernels`), imported on first use.

    Raises :class:`protocol.errors.KernelUnavailable` when triton cannot be imported.
    """
    mod = _triton_state.get("module")
    if mod is not None:
        return mod
    with _triton_lock:
        if "module" not in _triton_state:
            try:
                from . import _triton_kernels
            except ImportError as exc:
                from protocol.errors import KernelUnavailable

                raise KernelUnavailable(
                    f"the exact-mode Triton kernels need the 'triton' package ({exc}); install veritrain's "
                    "dependencies (make setup), or set VERITRAIN_REPRO_CUDA=reference for the slow reference path"
                ) from exc
            _triton_state["module"] = _triton_kernels
    return _triton_state["module"]


def use_triton(*tensors: torch.Tensor) -> bool:
    """True when the Triton path applies: backend "triton" (any device), or backend "fast" with every tensor
    on CUDA and ``$VERITRAIN_REPRO_CUDA`` not "reference"."""
    b = get_backend()
    if b == "triton":
        if any(t.device.type == "cpu" for t in tensors) and not triton_kernels().interpreted():
            from protocol.errors import KernelUnavailable

            raise KernelUnavailable(
                "the 'triton' backend runs CPU tensors only in Triton's interpreter: set TRITON_INTERPRET=1 "
                "before triton is imported"
            )
        return True
    if b != "fast" or not tensors or not all(t.device.type == "cuda" for t in tensors):
        return False
    return cuda_path() == "triton"


def _flat_np(t: torch.Tensor) -> np.ndarray:
    return (t.detach() if t.requires_grad else t).numpy()


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


# --------------------------------------------------------------------------------------------
# mm
# --------------------------------------------------------------------------------------------
_I64 = torch.int64
KC_DEFAULT = 256


@functools.lru_cache(maxsize=4096)
def _ar(n: int, step: int) -> np.ndarray:
    a = np.arange(n, dtype=np.int64) * step
    a.flags.writeable = False
    return a


@dataclass
class Operand:
    """A batch of matrices addressed through offset tables, without copying.

    ``X[b, i, k] = flat[base[b] + ro[i] + co[k]]``. A strided tensor is the
    special case ``ro = i·stride1, co = k·stride2``; an im2col matrix of an
    image is another (``ro`` = window origin of output pixel i, ``co`` =
    offset of kernel tap k). ``flat`` is a 1-D float32 view of the storage
    (on any device); the tables are int64 numpy arrays. ``ro_unit`` /
    ``co_unit`` say that a table is consecutive (a unit-stride axis).
    """

    flat: torch.Tensor
    base: np.ndarray
    ro: np.ndarray
    co: np.ndarray
    ro_unit: bool = False
    co_unit: bool = False

    @staticmethod
    def of(t: torch.Tensor) -> Operand:
        """The operand for a (nb, R, C) or (R, C) tensor view (any strides, no copy)."""
        if t.requires_grad:
            t = t.detach()
        shape, st = tuple(t.shape), t.stride()
        if len(shape) == 2:
            shape, st = (1, *shape), (0, *st)
        elif len(shape) != 3:
            raise ValueError(f"expected a 2-D or 3-D tensor, got shape {shape}")
        n0, n1, n2 = shape
        s0, s1, s2 = st
        span = (1 + (n0 - 1) * s0 + (n1 - 1) * s1 + (n2 - 1) * s2) if (n0 and n1 and n2) else 0
        flat = t.as_strided((span,), (1,), t.storage_offset())
        return Operand(flat, _ar(n0, s0), _ar(n1, s1), _ar(n2, s2), s1 == 1 or n1 <= 1, s2 == 1 or n2 <= 1)

    @staticmethod
    def tables(flat: torch.Tensor, base, ro, co) -> Operand:
        """An operand from explicit offset tables (array-likes of ints)."""
        base, ro, co = (np.ascontiguousarray(x, dtype=np.int64) for x in (base, ro, co))
        return Operand(flat, base, ro, co, _consecutive(ro), _consecutive(co))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.base.shape[0], self.ro.shape[0], self.co.shape[0])

    def index(self) -> torch.Tensor:
        idx = self.base[:, None, None] + self.ro[None, :, None] + self.co[None, None, :]
        return torch.from_numpy(idx).to(self.flat.device)

    def dense(self) -> torch.Tensor:
        """The (nb, R, C) matrix as a new contiguous tensor (a gather: exact)."""
        return self.flat[self.index()]


def _consecutive(t: np.ndarray) -> bool:
    return t.shape[0] <= 1 or bool((np.diff(t) == 1).all())


def workspace_sizes(nb: int, M: int, N: int, K: int, kc: int, ng: int) -> tuple[int, int, int]:
    """Float32 counts of the GEMM's scratch buffers: packed B, per-thread A blocks, per-thread tiles."""
    mr, nr = tiling()
    nbi, nbj = -(-M // mr), -(-N // nr)
    G = max(1, min(nb * nbi, ng))
    ch = max(1, 256 // max(1, nbj))
    return nb * nbj * K * nr, G * max(1, min(K, kc)) * mr, G * ch * nbj * mr * nr


_ws = threading.local()


def _workspaces(nb: int, M: int, N: int, K: int, kc: int, ng: int) -> list[np.ndarray]:
    """Per-thread grow-only scratch buffers (re-used across calls: no page faults per call)."""
    sizes = workspace_sizes(nb, M, N, K, kc, ng)
    bufs = getattr(_ws, "bufs", None)
    if bufs is None:
        bufs = _ws.bufs = [np.empty(0, np.float32) for _ in range(3)]
    for i, n in enumerate(sizes):
        if bufs[i].shape[0] < max(n, 1):
            bufs[i] = _aligned_empty(max(n, 1))
    return bufs


def _aligned_empty(n: int, align: int = 64) -> np.ndarray:
    """A float32 buffer of n elements whose data starts on an ``align``-byte boundary (whole SIMD loads)."""
    raw = np.empty(n + align // 4, np.float32)
    off = (-raw.ctypes.data % align) // 4
    return raw[off : off + n]


def _as_operand(x: torch.Tensor | Operand) -> Operand:
    return x if isinstance(x, Operand) else Operand.of(x)


def _check_mm(A: Operand, B: Operand, bias: torch.Tensor | None) -> None:
    (na, M, Ka), (nbb, Kb, N) = A.shape, B.shape
    if na != nbb or Ka != Kb:
        raise ValueError(f"mm expects A (nb,M,K) and B (nb,K,N); got {(na, M, Ka)} and {(nbb, Kb, N)}")
    for t in (A.flat, B.flat) + ((bias,) if bias is not None else ()):
        if t.dtype != torch.float32:
            raise TypeError(f"exact mode computes in float32; got {t.dtype}")
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != N):
        raise ValueError(f"bias must have shape ({N},); got {tuple(bias.shape)}")


def mm(
    A: torch.Tensor | Operand,
    B: torch.Tensor | Operand,
    bias: torch.Tensor | None = None,
    out: Operand | None = None,
    kc: int = KC_DEFAULT,
) -> torch.Tensor | None:
    """Batched ``A @ B (+ bias)`` in the fixed order of this module's docstring.

    A and B are tensors (2-D or 3-D, any strides; never copied) or
    :class:`Operand`s. Without ``out`` the result is a new contiguous
    (nb, M, N) tensor; with ``out`` (an Operand over a destination tensor's
    storage) the result is written there and None is returned. ``kc`` (the k
    block of the fast kernel) changes speed only.
    """
    A, B = _as_operand(A), _as_operand(B)
    _check_mm(A, B, bias)
    nb, M, K = A.shape
    N = B.shape[2]
    dev = A.flat.device
    tensors = (A.flat, B.flat, *(() if bias is None else (bias,)), *(() if out is None else (out.flat,)))
    if not use_fast(*tensors):
        if use_triton(*tensors):
            return triton_kernels().mm(A, B, bias, out)
        ref = mm_reference(A.dense(), B.dense(), bias)
        if out is None:
            return ref
        out.flat[out.index()] = ref
        return None
    k = _load()
    C: torch.Tensor | None = None
    if out is None:
        C = torch.empty((nb, M, N), dtype=torch.float32, device=dev)
        dst = Operand.of(C)
    else:
        dst = out
    b = np.zeros(N, np.float32) if bias is None else _np(bias)
    ng = _nthreads()
    k["gemm"](
        nb * M * N * K,
        nb, M, N, K,
        _flat_np(A.flat), A.base, A.ro, A.co, A.co_unit,
        _flat_np(B.flat), B.base, B.ro, B.co, B.ro_unit, B.co_unit,
        b,
        _flat_np(dst.flat), dst.base, dst.ro, dst.co, dst.co_unit,
        int(kc), ng, *_workspaces(nb, M, N, K, int(kc), ng),
    )  # fmt: skip
    return C


def mm_reference(A: torch.Tensor, B: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Reference ``mm`` on dense (nb,M,K) and (nb,K,N): K rank-1 updates as separate elementwise torch ops."""
    nb, M, K = A.shape
    N = B.shape[2]
    C = torch.zeros((nb, M, N), dtype=torch.float32, device=A.device)
    for k in range(K):
        C = C + A[:, :, k : k + 1] * B[:, k : k + 1, :]
    if bias is not None:
        C = C + bias
    return C


# --------------------------------------------------------------------------------------------
# sums
# --------------------------------------------------------------------------------------------
def _check2(X: torch.Tensor, what: str) -> None:
    if X.dim() != 2:
        raise ValueError(f"{what} expects a 2-D tensor; got shape {tuple(X.shape)}")
    if X.dtype != torch.float32:
        raise TypeError(f"exact mode computes in float32; got {X.dtype}")


def rowsum(X: torch.Tensor) -> torch.Tensor:
    """(R, L) → (R,): each row summed left to right from +0.0."""
    _check2(X, "rowsum")
    if not use_fast(X):
        return triton_kernels().rowsum(X) if use_triton(X) else rowsum_reference(X)
    k = _load()
    out = torch.empty(X.shape[0], dtype=torch.float32)
    k["rowsum"](X.numel(), _np(X), out.numpy())
    return out


def rowsum_reference(X: torch.Tensor) -> torch.Tensor:
    _check2(X, "rowsum")
    acc = torch.zeros(X.shape[0], dtype=torch.float32, device=X.device)
    for j in range(X.shape[1]):
        acc = acc + X[:, j]
    return acc


def colsum(X: torch.Tensor) -> torch.Tensor:
    """(R, L) → (L,): each column summed top to bottom from +0.0."""
    _check2(X, "colsum")
    if not use_fast(X):
        return triton_kernels().colsum(X) if use_triton(X) else colsum_reference(X)
    k = _load()
    out = torch.empty(X.shape[1], dtype=torch.float32)
    k["colsum"](X.numel(), _np(X), out.numpy())
    return out


def colsum_reference(X: torch.Tensor) -> torch.Tensor:
    _check2(X, "colsum")
    acc = torch.zeros(X.shape[1], dtype=torch.float32, device=X.device)
    for i in range(X.shape[0]):
        acc = acc + X[i]
    return acc


# --------------------------------------------------------------------------------------------
# scatter-add of rows
# --------------------------------------------------------------------------------------------
def _check_index_add(idx: torch.Tensor, G: torch.Tensor, V: int) -> None:
    if idx.dim() != 1 or G.dim() != 2 or idx.shape[0] != G.shape[0]:
        raise ValueError(f"index_add_rows expects idx (N,) and G (N,D); got {tuple(idx.shape)}, {tuple(G.shape)}")
    if G.dtype != torch.float32:
        raise TypeError(f"exact mode computes in float32; got {G.dtype}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= V):
        raise IndexError(f"index out of range for {V} rows")


def index_add_rows(idx: torch.Tensor, G: torch.Tensor, V: int) -> torch.Tensor:
    """(V, D) with row v = sum of the rows G[n] with idx[n] == v, in ascending n, from +0.0."""
    idx = idx.to(torch.int64)
    _check_index_add(idx, G, V)
    if not use_fast(idx, G):
        return triton_kernels().index_add_rows(idx, G, V) if use_triton(idx, G) else index_add_rows_reference(idx, G, V)
    k = _load()
    out = torch.zeros((V, G.shape[1]), dtype=torch.float32)
    k["index_add_rows"](G.numel(), _np(idx), _np(G), out.numpy())
    return out


def index_add_rows_reference(idx: torch.Tensor, G: torch.Tensor, V: int) -> torch.Tensor:
    """Reference scatter-add: step r adds, for every index value at once, its r-th occurrence (ascending n)."""
    idx = idx.to(torch.int64)
    _check_index_add(idx, G, V)
    out = torch.zeros((V, G.shape[1]), dtype=torch.float32, device=G.device)
    N = idx.shape[0]
    if N == 0:
        return out
    sidx, order = torch.sort(idx, stable=True)  # order: positions n, ascending within equal idx
    pos = torch.arange(N, device=idx.device)
    new_group = torch.ones(N, dtype=torch.bool, device=idx.device)
    new_group[1:] = sidx[1:] != sidx[:-1]
    group_start = torch.cummax(torch.where(new_group, pos, torch.zeros_like(pos)), dim=0).values
    rank = pos - group_start
    for r in range(int(rank.max()) + 1):
        sel = rank == r
        rows = sidx[sel]  # distinct values
        out[rows] = out[rows] + G[order[sel]]
    return out


# --------------------------------------------------------------------------------------------
# self check (first use in each process)
# --------------------------------------------------------------------------------------------
def _np_mm(A: np.ndarray, B: np.ndarray, bias: np.ndarray) -> np.ndarray:
    C = np.zeros((A.shape[0], A.shape[1], B.shape[2]), np.float32)
    for k in range(A.shape[2]):
        C = C + A[:, :, k : k + 1] * B[:, k : k + 1, :]
    return C + bias


def _np_gemm(gemm, A: np.ndarray, B: np.ndarray, bias: np.ndarray, C: np.ndarray, kc: int = KC_DEFAULT) -> None:
    """Call a compiled GEMM on C-contiguous numpy arrays (nb,M,K) @ (nb,K,N) -> C (nb,M,N)."""
    nb, M, K = A.shape
    N = B.shape[2]
    ar = np.arange
    gemm(nb, M, N, K,
         A.reshape(-1), ar(nb) * M * K, ar(M) * K, ar(K), True,
         B.reshape(-1), ar(nb) * K * N, ar(K) * N, ar(N), N == 1, True,
         bias, C.reshape(-1), ar(nb) * M * N, ar(M) * N, ar(N), True, kc, _nthreads(),
         *_workspaces(nb, M, N, K, kc, _nthreads()))  # fmt: skip


def _self_check(k: dict) -> None:
    """Compare the compiled kernels (parallel and serial) with numpy elementwise loops; raise on any bit difference."""
    rng = np.random.default_rng(20261122)
    ok = True
    for nb, M, K, N in ((1, 17, 33, 19), (2, 9, 5, 33), (1, 1, 0, 3)):
        A = rng.standard_normal((nb, M, K)).astype(np.float32)
        B = rng.standard_normal((nb, K, N)).astype(np.float32)
        bias = rng.standard_normal(N).astype(np.float32)
        ref = _np_mm(A, B, bias).view(np.uint32)
        for fn, kc in ((k["gemm"].par, 7), (k["gemm"].ser, 5)):
            C = np.empty((nb, M, N), np.float32)
            _np_gemm(fn, A, B, bias, C, kc=kc)
            ok &= np.array_equal(C.view(np.uint32), ref)
    X = rng.standard_normal((13, 37)).astype(np.float32)
    ref_r, ref_c = np.zeros(13, np.float32), np.zeros(37, np.float32)
    for j in range(37):
        ref_r = ref_r + X[:, j]
    for i in range(13):
        ref_c = ref_c + X[i]
    for name, want in (("rowsum", ref_r), ("colsum", ref_c)):
        for fn in (k[name].par, k[name].ser):
            out = np.empty(want.shape[0], np.float32)
            fn(X, out)
            ok &= np.array_equal(out.view(np.uint32), want.view(np.uint32))
    ok &= _sqrt_is_correctly_rounded(k["sqrt"].par, rng) and _sqrt_is_correctly_rounded(k["sqrt"].ser, rng)
    if not ok:
        raise RuntimeError(
            "protocol.repro: the compiled kernels do not reproduce the reference order of operations "
            f"(miscompile?). Exact mode cannot run on this machine; clear the numba cache ({_cache_dir()}) "
            "and report this."
        )


def _sqrt_is_correctly_rounded(fn, rng: np.random.Generator) -> bool:
    """Check a compiled float32 sqrt on random positive floats (subnormals included) with exact arithmetic only:
    r is the correctly rounded root of x iff mid(r⁻, r)² < x < mid(r, r⁺)² (midpoints and their squares are
    exact in binary64)."""
    bits = rng.integers(1, 0x7F800000, size=4096, dtype=np.int64).astype(np.uint32)
    x = bits.view(np.float32)
    r = np.empty_like(x)
    fn(x, r)
    ri = r.view(np.uint32)
    if not ((ri > 0) & (ri < 0x7F800000)).all():
        return False
    up = (ri + np.uint32(1)).view(np.float32).astype(np.float64)
    dn = (ri - np.uint32(1)).view(np.float32).astype(np.float64)
    rd, xd = r.astype(np.float64), x.astype(np.float64)
    hi, lo = (rd + up) * 0.5, (rd + dn) * 0.5
    specials = np.array([0.0, -0.0, np.inf, -1.0, np.nan], np.float32)
    rs = np.empty_like(specials)
    fn(specials, rs)
    want = np.array([0.0, -0.0, np.inf, np.nan, np.nan], np.float32)
    bracket = (lo * lo < xd).all() and (xd < hi * hi).all()
    return bool(bracket and np.array_equal(rs.view(np.uint32), want.view(np.uint32)))


def _cache_dir() -> str:
    return numba_config().CACHE_DIR or "numba's default cache"


def self_check(device: str | torch.device = "cpu") -> None:
    """Load (compile or read from cache) the kernels of ``device`` and run their bitwise self check: the numba
    kernels on CPU, the Triton kernels on CUDA (against the reference path on that device)."""
    dev = torch.device(device)
    if dev.type == "cpu":
        _load()
    elif dev.type == "cuda" and cuda_path() == "triton":
        triton_kernels().self_check(dev)


# --------------------------------------------------------------------------------------------
# elementwise functions and max pooling (exact either way; numba only saves per-op overhead)
# --------------------------------------------------------------------------------------------
def elementwise(name: str, *xs: torch.Tensor):
    """Run the numba twin of an :mod:`protocol.repro.fmath` function on CPU tensors.

    "sqrt"/"exp"/"log"/"tanh": x → y; "gelu": x → (y, t); "gelu_grad": (x, t, dy) → dx. Same
    float32 operations in the same order as the torch reference, so the same bits.
    """
    k = _load()
    shape = xs[0].shape
    flats = [_np(x).reshape(-1) for x in xs]
    if name == "gelu":
        y = torch.empty(shape, dtype=torch.float32)
        t = torch.empty(shape, dtype=torch.float32)
        k["gelu"](flats[0].shape[0], flats[0], y.numpy().reshape(-1), t.numpy().reshape(-1))
        return y, t
    out = torch.empty(shape, dtype=torch.float32)
    k[name](flats[0].shape[0], *flats, out.numpy().reshape(-1))
    return out


def maxpool2d_fast(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, pos) of the non-overlapping k×k max pool (see functional.MaxPool2dFn) on a CPU tensor."""
    kk = _load()
    B, C, H, W = x.shape
    y = torch.empty((B, C, H // k, W // k), dtype=torch.float32)
    pos = torch.empty((B, C, H // k, W // k), dtype=torch.int8)
    kk["maxpool_fwd"](x.numel(), _np(x), int(k), y.numpy(), pos.numpy())
    return y, pos


def maxpool2d_backward_fast(dy: torch.Tensor, pos: torch.Tensor, k: int, H: int, W: int) -> torch.Tensor:
    kk = _load()
    B, C = dy.shape[0], dy.shape[1]
    dx = torch.zeros((B, C, H, W), dtype=torch.float32)
    kk["maxpool_bwd"](dx.numel(), _np(dy), _np(pos), int(k), dx.numpy())
    return dx
