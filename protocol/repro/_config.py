"""Mode switch, thread control and numba set-up for :mod:`protocol.repro`.

Nothing here imports numba at module import time except :func:`numba_ready`,
which the kernel modules call first: it points numba's on-disk cache at a
writable directory *before* any ``cache=True`` kernel is decorated.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MODES = ("exact", "native")

_state = threading.local()
_default_mode = "exact"


def get_mode() -> str:
    """The current execution mode: ``"exact"`` (reproducible kernels) or ``"native"`` (plain torch)."""
    return getattr(_state, "mode", _default_mode)


def set_mode(mode: str) -> None:
    """Set the execution mode for this thread (and the default for threads that never set one)."""
    global _default_mode
    if mode not in MODES:
        raise ValueError(f"unknown repro mode {mode!r}; expected one of {MODES}")
    _state.mode = mode
    _default_mode = mode


@contextlib.contextmanager
def mode(m: str) -> Iterator[None]:
    """Context manager: run the block in mode ``m`` (``"exact"`` or ``"native"``) on this thread."""
    if m not in MODES:
        raise ValueError(f"unknown repro mode {m!r}; expected one of {MODES}")
    old = getattr(_state, "mode", None)
    _state.mode = m
    try:
        yield
    finally:
        if old is None:
            del _state.mode
        else:
            _state.mode = old


# --- backend for the order-dependent primitives --------------------------------------------
# "fast": numba kernels for CPU tensors, Triton kernels for CUDA tensors (the reference path for any other
#         device, or on CUDA when $VERITRAIN_REPRO_CUDA is "reference");
# "reference": the slow pure-torch elementwise path everywhere (the oracle the others are tested against);
# "triton": the Triton kernels for every tensor (CPU tensors only in Triton's interpreter, TRITON_INTERPRET=1:
#           how the tests run them without a GPU).
# All three give the same bits; they differ in speed only.
BACKENDS = ("fast", "reference", "triton")
CUDA_PATHS = ("triton", "reference")


def get_backend() -> str:
    return getattr(_state, "backend", "fast")


def cuda_path() -> str:
    """What the "fast" backend runs on CUDA tensors: ``$VERITRAIN_REPRO_CUDA`` ("triton", the default, or
    "reference")."""
    v = os.environ.get("VERITRAIN_REPRO_CUDA", "triton").strip().lower() or "triton"
    if v not in CUDA_PATHS:
        raise ValueError(f"VERITRAIN_REPRO_CUDA must be one of {CUDA_PATHS}, not {v!r}")
    return v


@contextlib.contextmanager
def backend(b: str) -> Iterator[None]:
    """Context manager selecting the primitive backend (``"fast"``, ``"reference"`` or ``"triton"``) on this
    thread."""
    if b not in BACKENDS:
        raise ValueError(f"unknown repro backend {b!r}; expected one of {BACKENDS}")
    old = getattr(_state, "backend", None)
    _state.backend = b
    try:
        yield
    finally:
        if old is None:
            del _state.backend
        else:
            _state.backend = old


# --- threads ---------------------------------------------------------------------------------
def set_threads(n: int) -> None:
    """Use ``n`` threads for torch's intra-op pool and for the numba kernels.

    Results in exact mode do not depend on ``n`` (that is the point); speed does.
    """
    import torch

    n = max(1, int(n))
    torch.set_num_threads(n)
    if _numba_imported():
        import numba

        numba.set_num_threads(min(n, numba_config().NUMBA_NUM_THREADS))
    global _pending_threads
    _pending_threads = n


_pending_threads: int | None = None


def numba_config() -> Any:
    """``numba.core.config`` (imports numba). Typed ``Any``: numba sets its settings (``CACHE_DIR``,
    ``NUMBA_NUM_THREADS``, ``SLP_VECTORIZE``, ...) as module globals from the environment at import time, which
    a type checker cannot see."""
    import numba.core.config

    return numba.core.config


def _numba_imported() -> bool:
    return _numba_configured


# --- numba -------------------------------------------------------------------------------------
_numba_configured = False
_numba_lock = threading.Lock()


def _default_cache_dir() -> str:
    """``$VERITRAIN_NUMBA_CACHE_DIR``, else ``$XDG_CACHE_HOME/veritrain/numba`` (``~/.cache``), else a temp dir."""
    candidates = []
    if os.environ.get("VERITRAIN_NUMBA_CACHE_DIR"):
        candidates.append(Path(os.environ["VERITRAIN_NUMBA_CACHE_DIR"]))
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    candidates.append(Path(xdg) / "veritrain" / "numba")
    candidates.append(Path(tempfile.gettempdir()) / f"veritrain-numba-{os.getuid()}")
    for c in candidates:
        try:
            c.mkdir(parents=True, exist_ok=True)
            probe = c / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
            return str(c)
        except OSError:
            continue
    return ""  # numba falls back to its own locators


def _kernel_fingerprint() -> str:
    """Hash of the kernel source, numba/llvmlite and Python versions: names the cache sub-directory.

    numba validates cache entries by the source file's mtime and size only, and
    not at all for callees; a content-addressed directory makes stale or
    foreign entries impossible to pick up.
    """
    import hashlib
    import sys

    import llvmlite
    import numba

    h = hashlib.sha256()
    h.update((Path(__file__).with_name("_nb_kernels.py")).read_bytes())
    h.update(f"{numba.__version__}|{llvmlite.__version__}|{sys.version}".encode())
    return h.hexdigest()[:16]


def numba_ready() -> None:
    """Configure numba once: on-disk cache directory (unless ``NUMBA_CACHE_DIR`` is set) and threads."""
    global _numba_configured
    with _numba_lock:
        if _numba_configured:
            return
        import numba

        ncfg = numba_config()
        if not ncfg.CACHE_DIR:
            d = _default_cache_dir()
            if d:
                sub = Path(d) / _kernel_fingerprint()
                try:
                    sub.mkdir(parents=True, exist_ok=True)
                    ncfg.CACHE_DIR = str(sub)
                except OSError:
                    ncfg.CACHE_DIR = d
        _numba_configured = True
    if _pending_threads is not None:
        numba.set_num_threads(min(_pending_threads, ncfg.NUMBA_NUM_THREADS))
    else:
        import torch

        numba.set_num_threads(min(torch.get_num_threads(), ncfg.NUMBA_NUM_THREADS))


@contextlib.contextmanager
def slp_vectorize() -> Iterator[None]:
    """Compile inside this block with LLVM's SLP vectoriser on.

    numba switches SLP off by default (numba PR #8852, after miscompilations
    elsewhere). The GEMM micro-kernels need it to become SIMD code; their
    results are checked bit-for-bit against the reference path by the tests
    and by :func:`protocol.repro.kernels.self_check` on first use, so a
    miscompile cannot go unnoticed. SLP never reassociates or contracts
    floating-point operations without fast-math flags, so the order of
    operations is unchanged.
    """
    from numba.core.compiler_lock import global_compiler_lock

    ncfg = numba_config()
    with global_compiler_lock:
        old = ncfg.SLP_VECTORIZE
        ncfg.SLP_VECTORIZE = 1
        try:
            yield
        finally:
            ncfg.SLP_VECTORIZE = old
