"""The verifier's replay worker: arbitration (urgent, a commit deadline) never waits behind queued audits, and
runs between the segments of a running audit."""

from __future__ import annotations

import threading

import pytest

from verifier.node import ReplayWorker


def test_urgent_tasks_overtake_queued_work_and_run_between_segments():
    worker = ReplayWorker()
    order: list[str] = []
    in_audit = threading.Event()
    release = threading.Event()

    def audit(name: str, segments: int, between) -> str:
        for i in range(segments):
            between()
            order.append(f"{name}:{i}")
            if name == "a1" and i == 0:
                in_audit.set()
                assert release.wait(10)
        return name

    try:
        a1 = worker.submit(audit, "a1", 3, worker.run_urgent)
        assert in_audit.wait(10)  # a1 is inside its first segment
        a2 = worker.submit(audit, "a2", 2, worker.run_urgent)  # queued behind a1
        u = worker.submit(lambda: order.append("arbitrate") or "vote", urgent=True)
        release.set()
        assert u.result(10) == "vote" and a1.result(10) == "a1" and a2.result(10) == "a2"
        # the arbitration ran right after a1's current segment: before a1's other segments and before a2
        assert order == ["a1:0", "arbitrate", "a1:1", "a1:2", "a2:0", "a2:1"]
    finally:
        release.set()
        worker.shutdown()


def test_errors_reach_the_future_and_shutdown_cancels_what_is_queued():
    worker = ReplayWorker()
    gate, started = threading.Event(), threading.Event()
    try:
        failing = worker.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            failing.result(10)
        blocker = worker.submit(lambda: started.set() or gate.wait(10))
        queued = worker.submit(lambda: "never")
        assert started.wait(10)  # the blocker runs; ``queued`` waits behind it
    finally:
        worker.shutdown()
        gate.set()
    assert blocker.result(10) is True
    assert queued.cancelled()
    with pytest.raises(RuntimeError, match="shut down"):
        worker.submit(lambda: None)
    worker.run_urgent()  # not on the worker thread: nothing to do, no error
