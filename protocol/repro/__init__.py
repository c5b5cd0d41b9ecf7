"""veritrain's reproducible training kernels ("exact mode", DESIGN.md §4).

Exact mode gives bit-identical float32 training results whatever the thread
count, the CPU's vector ISA (``ATEN_CPU_CAPABILITY=default|avx2|avx512``) or
the device: every operation whose rounding depends on an order of summation
runs with an order fixed by this package, and sqrt and the transcendental
functions are computed from correctly rounded operations only (no library
sqrt/exp/log/tanh: their rounding differs between torch versions and devices). The job spec records
:data:`KERNEL_SET_VERSION`; a change to any order of operations must change it.

Layout:

- :mod:`protocol.repro.kernels`     the four order-fixed primitives (mm, rowsum, colsum,
                                     index_add_rows): specification, numba fast path,
                                     pure-torch reference path; the design measurements
- :mod:`protocol.repro._triton_kernels` the primitives and fmath functions as Triton kernels (CUDA)
- :mod:`protocol.repro.fmath`       sqrt (correctly rounded), exp, log, tanh, tanh-GELU from
                                     + - * / and bit operations
- :mod:`protocol.repro.functional`  autograd operators (linear, matmul, sum/mean, softmax,
                                     log_softmax, cross_entropy, layer_norm, conv2d,
                                     embedding, max_pool2d, exp/log/tanh/gelu, grad clipping)
- :mod:`protocol.repro.nn`          drop-in ``ExactLinear``, ``ExactConv2d``, … and :func:`exactify`
- :mod:`protocol.repro.optim`       ``ExactSGD`` and ``ExactAdamW``
- :mod:`protocol.repro.bench`       exact vs native micro-benchmark (layers and small training steps)
- :mod:`protocol.repro.selftest`    a fixed tiny workload whose digest must be the same everywhere
- :mod:`protocol.repro.version`     :data:`KERNEL_SET_VERSION` (import-light)

Modes: :func:`set_mode` / :func:`mode` switch between ``"exact"`` (default)
and ``"native"`` (plain torch: tolerance mode and benchmarks). Threads:
:func:`set_threads` sets torch's and numba's. Device: CPU tensors take the
numba kernels, CUDA tensors the Triton kernels (:mod:`protocol.repro._triton_kernels`;
``VERITRAIN_REPRO_CUDA=reference`` for the reference path), tensors on any other
device the reference path, which is built from elementwise torch operations;
all give the same bits. :func:`backend` selects a path explicitly ("fast",
"reference", "triton").

Importing this package is cheap (no torch, no numba); the submodules load
torch, and the numba kernels compile (or load from the on-disk cache) on
first use.
"""

from ._config import backend, get_backend, get_mode, mode, set_mode, set_threads
from .version import KERNEL_SET_VERSION

__all__ = [
    "KERNEL_SET_VERSION",
    "backend",
    "get_backend",
    "get_mode",
    "mode",
    "set_mode",
    "set_threads",
]
