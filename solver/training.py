"""One job's training run on the solver, one segment at a time (DESIGN §3, §5 step 4).

:class:`JobRun` owns a job's :class:`~protocol.engine.runner.Trainer`, its persistent trajectory
(``<job dir>/trajectory.sqlite``, a pymerkle ``SqliteTree``) and the node's blob store. :meth:`JobRun.step`
runs the next segment through the node's :class:`~solver.adversary.Adversary` (the honest one unless a test or
the demo asked otherwise), stores the checkpoint as a state blob *before* appending its leaf (so every leaf has
its checkpoint on disk, whatever moment the process dies), and returns. A new ``JobRun`` on the same directory
resumes after the last leaf from that leaf's checkpoint, and reaches the same roots as an uninterrupted run.

Running one segment per call lets the node interleave its chain duties (disputes on older jobs, commits)
between segments; :attr:`JobRun.timings` accumulates training and checkpointing seconds separately (the
checkpoint overhead the node's metrics and ``veritrain bench checkpoint`` report).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from protocol.blobstore import LocalBlobStore
from protocol.engine.data import Dataset
from protocol.engine.runner import EngineError, StateMismatch, Trainer
from protocol.spec import JobSpec
from protocol.state import deserialize, serialize, state_root
from protocol.trajectory import Trajectory

from .adversary import Adversary, Honest

__all__ = ["JobRun", "Timings"]


@dataclass
class Timings:
    train_s: float = 0.0
    checkpoint_s: float = 0.0
    segments: int = 0
    max_segment_s: float = 0.0
    per_segment: list[float] = field(default_factory=list)


class JobRun:
    """Trains ``spec`` into ``job_dir`` segment by segment (see the module docs)."""

    def __init__(
        self,
        job_id: bytes,
        spec: JobSpec,
        dataset: Dataset,
        store: LocalBlobStore,
        job_dir: str | Path,
        *,
        adversary: Adversary | None = None,
        device: str = "cpu",
    ) -> None:
        self.job_id = job_id
        self.spec = spec
        self.store = store
        self.dir = Path(job_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.adversary = adversary or Honest()
        self.trainer = Trainer(spec, dataset, device)
        self.timings = Timings()
        init = self.trainer.init()
        buffers = serialize(init)
        self.init_root = state_root(init)
        if spec.init_state_root is not None and spec.init_state_root != "0x" + self.init_root.hex():
            raise EngineError(
                f"the spec's init_state_root is {spec.init_state_root} but this engine's initial state hashes to "
                f"0x{self.init_root.hex()} (different model, seed, data or engine version)"
            )
        self.store.put_state(buffers, expected=self.init_root)
        self.trajectory = Trajectory.open(self.dir / "trajectory.sqlite")
        if len(self.trajectory) > spec.num_segments:
            raise EngineError(
                f"{self.dir} holds {len(self.trajectory)} leaves but the job has only {spec.num_segments} segments"
            )

    def close(self) -> None:
        self.trajectory.close()

    @property
    def done(self) -> int:
        """Leaves recorded so far."""
        return len(self.trajectory)

    @property
    def complete(self) -> bool:
        return self.done >= self.spec.num_segments

    def _load_pre_state(self, index: int) -> None:
        """Puts the trainer at the pre-state of segment ``index`` (if it is not there already)."""
        interval = self.spec.checkpoint_interval
        if self.trainer.step == index * interval and getattr(self, "_at", None) == index:
            return
        if index == 0:
            self.trainer.init()
        else:
            root = self.trajectory.leaf(index - 1)
            pre = deserialize(self.store.get(root, "state"), expected_root=root)
            if pre.step != index * interval:
                raise StateMismatch(f"leaf {index - 1} is a state at step {pre.step}, expected {index * interval}")
            self.trainer.load(pre)
        self._at = index

    def step(self) -> int | None:
        """Runs the next segment; returns its index (None when the job is complete)."""
        index = self.done
        if index >= self.spec.num_segments:
            return None
        t0 = time.perf_counter()
        if self.adversary.needs_state(self.job_id, index, self.trainer):
            self._load_pre_state(index)
        out = self.adversary.run_segment(self.job_id, index, self.trainer)
        t1 = time.perf_counter()
        root = out.root
        if out.state is not None:
            buffers = serialize(out.state)
            root = state_root(out.state) if root is None else root
            self.store.put_state(buffers, expected=root)
        assert root is not None
        self.trajectory.append(root)
        self._at = index + 1 if out.state is not None else None
        t2 = time.perf_counter()
        tm = self.timings
        tm.train_s += t1 - t0
        tm.checkpoint_s += t2 - t1
        tm.segments += 1
        tm.max_segment_s = max(tm.max_segment_s, t2 - t0)
        tm.per_segment.append(t2 - t0)
        return index

    def run(self) -> bytes:
        """Runs every remaining segment; returns the trajectory root."""
        while self.step() is not None:
            pass
        return self.trajectory.root()

    def leaves(self) -> list[bytes]:
        return self.trajectory.leaves()

    def root(self) -> bytes:
        return self.trajectory.root()
