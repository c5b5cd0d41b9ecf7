"""One job's training run on the solver, one segment at a time (DESIGN §3, §5 step 4).

:class:`JobRun` owns a job's :class:`~protocol.engine.runner.Trainer`, its persistent trajectory
(``<job dir>/trajectory.sqlite``, a pymerkle ``SqliteTree``) and the node's blob store. :meth:`JobRun.step`
runs the next segment through the node's :class:`~solver.adversary.Adversary` (the honest one unless a test or
the demo asked otherwise), snapshots the state (a CPU copy), serialises and hashes it, and hands the durable
part to a writer thread: the checkpoint is stored as a state blob (temp file, fsync, rename) *before* its leaf
is appended to the trajectory (its own committed SQLite transaction), so every leaf has its checkpoint on
disk whatever moment the process dies. The writes of checkpoint ``i`` overlap the training of segment
``i + 1``; at most one write is in flight (the next checkpoint waits for it, which keeps the order and bounds
memory), and :meth:`JobRun.flush` waits for it (the node flushes before it commits). A new ``JobRun`` on the
same directory resumes after the last durable leaf from that leaf's checkpoint, and reaches the same roots as
an uninterrupted run.

Running one segment per call lets the node interleave its chain duties (disputes on older jobs, commits)
between segments. :attr:`JobRun.timings` accumulates ``train_s`` (optimizer steps), ``checkpoint_s`` (what
checkpointing adds to the training thread: snapshot, serialisation, ``state_root``, and any wait for the
previous write) and ``write_s`` (the blob write + leaf append, on the writer thread) — the checkpoint overhead
the node's metrics and ``veritrain bench checkpoint`` report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from protocol.blobstore import LocalBlobStore
from protocol.engine.data import Dataset
from protocol.engine.runner import EngineError, StateMismatch, Trainer, compute_clock
from protocol.spec import JobSpec
from protocol.state import TrainingState, deserialize, serialize, state_root
from protocol.trajectory import Trajectory

from .adversary import Adversary, Honest

__all__ = ["JobRun", "Timings"]


@dataclass
class Timings:
    train_s: float = 0.0
    train_cpu_s: float = 0.0  # the same segments in CPU seconds (protocol.engine.runner.compute_clock)
    checkpoint_s: float = 0.0
    write_s: float = 0.0
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
        weights: TrainingState | None = None,
    ) -> None:
        self.job_id = job_id
        self.spec = spec
        self.store = store
        self.dir = Path(job_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.adversary = adversary or Honest()
        self.trainer = Trainer(spec, dataset, device, weights=weights)
        self.adversary.prepare(self.trainer)
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
        self._next = len(self.trajectory)  # the next segment to train (durable leaves + the one in flight)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-writer")
        self._pending: Future | None = None

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._writer.shutdown(wait=True)
            self.trajectory.close()

    def flush(self, *, timed: bool = True) -> None:
        """Waits until every checkpoint handed to the writer is stored and its leaf appended (re-raises a
        failed write). The wait counts as checkpoint time (``timed``; :meth:`step` times its own)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            t0 = time.perf_counter()
            pending.result()
            if timed:
                self.timings.checkpoint_s += time.perf_counter() - t0

    @property
    def done(self) -> int:
        """Segments trained so far (the last one's leaf may still be in flight: :meth:`flush`)."""
        return self._next

    @property
    def complete(self) -> bool:
        return self._next >= self.spec.num_segments

    def _load_pre_state(self, index: int) -> None:
        """Puts the trainer at the pre-state of segment ``index`` (if it is not there already)."""
        interval = self.spec.checkpoint_interval
        if self.trainer.step == index * interval and getattr(self, "_at", None) == index:
            return
        if index == 0:
            self.trainer.init()
        else:
            self.flush()
            root = self.trajectory.leaf(index - 1)
            pre = deserialize(self.store.get(root, "state"), expected_root=root)
            if pre.step != index * interval:
                raise StateMismatch(f"leaf {index - 1} is a state at step {pre.step}, expected {index * interval}")
            self.trainer.load(pre)
        self._at = index

    def _write(self, buffers, root: bytes) -> None:
        t0 = time.perf_counter()
        if buffers is not None:
            self.store.put_state(buffers, expected=root)
        self.trajectory.append(root)
        self.timings.write_s += time.perf_counter() - t0

    def step(self, on_step: Callable[[int, float], None] | None = None) -> int | None:
        """Runs the next segment; returns its index (None when the job is complete). ``on_step(step, loss)``
        runs after every optimizer step."""
        index = self._next
        if index >= self.spec.num_segments:
            return None
        t0, c0 = time.perf_counter(), compute_clock()
        if self.adversary.needs_state(self.job_id, index, self.trainer):
            self._load_pre_state(index)
        out = self.adversary.run_segment(self.job_id, index, self.trainer, on_step)
        t1, c1 = time.perf_counter(), compute_clock()
        if out.made_up:
            assert out.root is not None
            buffers, root = None, out.root
        else:
            # a CPU copy: training may go on while the writer stores it
            st = self.adversary.checkpoint(self.job_id, index, self.trainer, self.trainer.state())
            buffers = serialize(st)
            root = state_root(st)
        self.flush(timed=False)  # one write in flight at most, in order (timed below)
        self._pending = self._writer.submit(self._write, buffers, root)
        self._next = index + 1
        self._at = None if out.made_up else index + 1
        t2 = time.perf_counter()
        tm = self.timings
        tm.train_s += t1 - t0
        tm.train_cpu_s += c1 - c0
        tm.checkpoint_s += t2 - t1
        tm.segments += 1
        tm.max_segment_s = max(tm.max_segment_s, t2 - t0)
        tm.per_segment.append(t2 - t0)
        return index

    def run(self) -> bytes:
        """Runs every remaining segment; returns the trajectory root."""
        while self.step() is not None:
            pass
        return self.root()

    def leaves(self) -> list[bytes]:
        self.flush()
        return self.trajectory.leaves()

    def root(self) -> bytes:
        self.flush()
        return self.trajectory.root()
