"""A job's output directory: what ``veritrain train`` writes and a solver serves.

Layout::

    DIR/blobs/state/<64 hex>   every checkpoint (C_init and each leaf), named by its state root, content =
                               the canonical serialisation (a protocol.blobstore.LocalBlobStore at DIR/blobs)
    DIR/trajectory.sqlite      the persistent trajectory (pymerkle SqliteTree): leaves survive a crash
    DIR/job.json               {"spec_hash": <job_hash>, "init_state_root": ...}: which job this directory holds
    DIR/spec.json              the spec with init_state_root filled in (canonical JSON)
    DIR/leaves.json            the leaf list: hex state roots in order
    DIR/result.json            the last run's summary (see :meth:`protocol.engine.runner.JobResult.to_json`)
    DIR/metrics.json           per leaf: step, state root and the checkpoint's ``meta.metrics`` (spec ``evaluation``)

Running again on the same directory resumes from the last leaf (or does nothing if the job is complete) and
ends at the same roots; a directory that holds another job's trajectory is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

from protocol.blobstore import LocalBlobStore
from protocol.spec import JobSpec
from protocol.state import TrainingState, canonical_json
from protocol.trajectory import Trajectory

from .data import Dataset
from .runner import EngineError, JobResult, SegmentDone, Trainer, job_hash, run_job

__all__ = ["JobDirError", "leaf_metrics", "train_to_dir"]


def leaf_metrics(store, leaves: list[bytes]) -> list[dict]:
    """``[{"leaf": i, "step": s, "state_root": "0x…", **meta.metrics}, …]`` of the leaves whose checkpoints
    record metrics (spec ``evaluation``), read from their manifests (``store.get(root, "state")``)."""
    from protocol.state import read_layout

    out = []
    for i, root in enumerate(leaves):
        layout = read_layout(store.get(root, "state"))
        m = layout.meta.get("metrics")
        if isinstance(m, dict):
            out.append({"leaf": i, "step": layout.step, "state_root": "0x" + root.hex(), **m})
    return out


class JobDirError(EngineError):
    """The output directory holds a different job."""


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def train_to_dir(
    spec: JobSpec,
    dataset: Dataset,
    out_dir: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    on_step: Callable[[int, float], None] | None = None,
    on_segment: Callable[[SegmentDone], None] | None = None,
    evaluate: bool = True,
    weights: TrainingState | None = None,
) -> JobResult:
    """Run (or resume) ``spec`` into ``out_dir``; returns the result (also written to ``result.json``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "job.json"
    jh = job_hash(spec)
    if marker.exists():
        prev = json.loads(marker.read_text())
        if prev.get("spec_hash") != jh:
            raise JobDirError(
                f"{out} holds the trajectory of another job (spec hash {prev.get('spec_hash')}, this spec is {jh}); "
                "use an empty --out directory"
            )
    elif (out / "trajectory.sqlite").exists():
        raise JobDirError(f"{out} has a trajectory.sqlite but no job.json; use an empty --out directory")
    store = LocalBlobStore(out / "blobs")
    trainer = Trainer(spec, dataset, device, weights=weights)
    with Trajectory.open(out / "trajectory.sqlite") as traj:
        if not marker.exists():
            _write_atomic(marker, canonical_json({"spec_hash": jh}) + b"\n")
        result = run_job(
            spec, dataset, store, traj, device=device, on_step=on_step, on_segment=on_segment, trainer=trainer
        )
    init_hex = "0x" + result.init_state_root.hex()
    _write_atomic(marker, canonical_json({"spec_hash": jh, "init_state_root": init_hex}) + b"\n")
    _write_atomic(out / "spec.json", result.spec.canonical_json() + b"\n")
    _write_atomic(out / "leaves.json", json.dumps(["0x" + x.hex() for x in result.leaves], indent=0).encode() + b"\n")
    if evaluate:
        result.extra["heldout"] = trainer.evaluate("heldout")
    metrics = leaf_metrics(store, result.leaves)
    if metrics:
        _write_atomic(out / "metrics.json", json.dumps(metrics, indent=2).encode() + b"\n")
    _write_atomic(out / "result.json", json.dumps(result.to_json(), indent=2).encode() + b"\n")
    return result
