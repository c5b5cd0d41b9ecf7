"""veritrain's reproducible training engine (DESIGN §4): models, data, counter-based randomness, segments, jobs.

The engine runs a :class:`protocol.spec.JobSpec` in its mode — ``exact`` on the reproducible kernels of
:mod:`protocol.repro` (bit-identical on every machine, thread count, vector ISA and device) or ``tolerance`` on
native torch — and produces the trajectory DESIGN §3 commits to: ``C_init``, one checkpoint per segment, the
leaf list and its RFC 9162 root.

Modules:

- :mod:`protocol.engine.rng`        Philox4x32-10 streams keyed by ``(seed, purpose, index)``: init, batch
                                    order, dropout (never torch's generators, which differ across ISAs)
- :mod:`protocol.engine.data`       bundled datasets (``digits``, ``alice``) and uploads (npz/csv/text), their
                                    canonical bytes and digests, held-out split, the batch of any step
- :mod:`protocol.engine.models`     MLP, CNN, tiny transformer LM; initialisation
- :mod:`protocol.engine.runner`     :class:`Trainer` (state ↔ model/optimizer), :func:`run_segment`,
                                    :func:`run_job` (checkpoints into a blob store, leaves into a trajectory,
                                    resume)
- :mod:`protocol.engine.jobdir`     :func:`train_to_dir`, the output directory of ``veritrain train``
- :mod:`protocol.engine.tolerance`  :func:`compare_states`, the Proof-of-Learning distance check
- :mod:`protocol.engine.examples`   the example specs shipped in ``examples/`` and shortened variants
- :mod:`protocol.engine.benchmark`  exact vs native step time of the examples (``veritrain bench repro``)

Threads: :func:`protocol.engine.runner.configure_threads` sets torch's and the exact kernels' thread count
(results in exact mode do not depend on it).
"""

from .data import (
    BUILTINS,
    Batches,
    Dataset,
    DatasetDigestMismatch,
    DatasetError,
    DatasetMissing,
    builtin_digest,
    load_dataset,
)
from .jobdir import JobDirError, train_to_dir
from .runner import (
    ENGINE_VERSION,
    EngineError,
    JobResult,
    StateMismatch,
    Trainer,
    initial_state,
    job_hash,
    run_job,
    run_segment,
)
from .tolerance import compare_states, distances

__all__ = [
    "BUILTINS",
    "ENGINE_VERSION",
    "Batches",
    "Dataset",
    "DatasetDigestMismatch",
    "DatasetError",
    "DatasetMissing",
    "EngineError",
    "JobDirError",
    "JobResult",
    "StateMismatch",
    "Trainer",
    "builtin_digest",
    "compare_states",
    "distances",
    "initial_state",
    "job_hash",
    "load_dataset",
    "run_job",
    "run_segment",
    "train_to_dir",
]
