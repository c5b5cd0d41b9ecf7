"""The demo end to end, shortened:

* ``veritrain demo --json`` (a real subprocess: anvil, API, solver and verifier nodes) ends with every honest
  job finalized and paid, every cheating solver slashed and no honest party slashed, and no process it started
  is left running;
* interrupted with SIGINT mid-run, it stops every process it started;

``veritrain job fetch``, ``veritrain audit`` and the pages on a market run are in tests/test_market_run.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from veritrain.procs import pid_alive

pytestmark = pytest.mark.chain


def alive(pid_file: Path) -> list[int]:
    if not pid_file.exists():
        return []
    return [int(p) for p in pid_file.read_text().split() if pid_alive(int(p))]


def wait_none_alive(pid_file: Path, timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := alive(pid_file)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_demo_json_pays_honest_slashes_cheaters_and_leaves_nothing_running(tmp_path):
    home = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "veritrain.cli", "demo", "--jobs", "3", "--steps", "40", "--interval", "10",
         "--verifiers", "5", "--home", str(home), "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, f"demo failed:\n{proc.stderr[-6000:]}"
    report = json.loads(proc.stdout)
    jobs = report["jobs"]
    assert {j["adversary"] for j in jobs} == {None, "fake", "lazy"}  # every solver got work
    cheaters = {j["solver"] for j in jobs if j["adversary"]}
    for j in jobs:
        if j["adversary"] is None:
            assert j["outcome"] == "finalized" and j["paid"] > 0, j
        else:
            assert j["outcome"] == "slashed" and j["slashed"] > 0, j
    assert set(report["slashed_accounts"]) <= cheaters  # no honest party slashed
    played = [d for d in report["disputes"] if d["outcome"] != "superseded"]
    assert played, report["disputes"]
    for d in report["disputes"]:
        if d["outcome"] == "superseded":  # queued behind the dispute that slashed the job: never played, bond back
            assert d["rounds"] == 0 and d["winner"] is None, d
        else:
            assert d["winner"] and (d["rounds"] >= 1 or d["availability"]) and d["gas"] > 0, d
    assert report["verifier_over_solver_compute"] is not None and report["verifier_over_solver_compute"] > 0
    assert wait_none_alive(home / "pids.txt") == []


def test_demo_interrupted_stops_every_process(tmp_path):
    home = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "veritrain.cli", "demo", "--jobs", "3", "--steps", "40", "--home", str(home), "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    pid_file = home / "pids.txt"
    deadline = time.monotonic() + 120
    while len(alive(pid_file)) < 4:  # anvil, API and some nodes are up
        assert proc.poll() is None, proc.stderr.read().decode()[-4000:] if proc.stderr else ""
        assert time.monotonic() < deadline, "the demo did not start its processes"
        time.sleep(0.2)
    started = alive(pid_file)
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert wait_none_alive(pid_file) == [], f"left running: {started}"


def test_demo_that_fails_stops_every_process(tmp_path):
    """A node that cannot start (here: a solver told to play an adversary that does not exist) fails the run
    with the node's own error, and every process already started (anvil, the API, the other nodes) is gone."""
    from veritrain.demo import MarketRun
    from veritrain.procs import ProcessError

    home = tmp_path / "demo"
    with pytest.raises(ProcessError) as failed:
        with MarketRun(home, solvers={"solver0": None, "solver1": "no-such-adversary"}, verifiers=4):
            pytest.fail("the market came up with a node that cannot start")
    assert "no-such-adversary" in str(failed.value)
    assert len((home / "pids.txt").read_text().split()) >= 4  # anvil, API and nodes had been started
    assert wait_none_alive(home / "pids.txt") == []
