"""The exact-mode kernel-set version recorded in job specs (no heavy imports here).

Bump it whenever any documented order of operations, constant or formula in
:mod:`protocol.repro` changes: replays under a different version are not
expected to match bit for bit.
"""

KERNEL_SET_VERSION = "repro-v1"
