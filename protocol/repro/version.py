"""The exact-mode kernel-set version recorded in job specs (no heavy imports here).

Bump it whenever any documented order of operations, constant or formula in
:mod:`protocol.repro` changes: replays under a different version are not
expected to match bit for bit.
"""

#: repro-v2: sqrt (LayerNorm, AdamW, gradient norm) is the correctly rounded :func:`protocol.repro.fmath.sqrt`
#: instead of ``torch.sqrt``, whose float32 rounding differs between torch builds and devices.
KERNEL_SET_VERSION = "repro-v2"
