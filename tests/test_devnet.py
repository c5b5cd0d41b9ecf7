"""The devnet (``veritrain devnet up|status|down``) and the process supervisor (veritrain/procs.py).

* ``devnet up`` starts anvil + the devnet deployment + the API, funds every dev account; ``status`` sees it;
  ``down`` leaves no process behind; a second ``up`` on a running devnet is refused with what to do.
* The supervisor: readiness by ready file, early death reported with the log's tail, and no process left when
  the supervising parent is interrupted (SIGINT), terminated (SIGTERM) or killed outright (SIGKILL), child
  process groups (grandchildren) included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from protocol.deploy import load_deployment
from veritrain.devnet import MINT_PER_ACCOUNT, load_devnet
from veritrain.procs import ProcessError, Supervisor, pid_alive

pytestmark = pytest.mark.chain


def veritrain(*args: str, home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "veritrain.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"veritrain {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def wait_dead(pids: list[int], timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if pid_alive(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return [p for p in pids if pid_alive(p)]


def test_devnet_up_status_down(tmp_path):
    home = tmp_path / "vt"
    veritrain("devnet", "up", "--port", "0", "--api-port", "0", "--json", home=home)
    try:
        devnet = load_devnet(home)
        pids = [devnet.anvil_pid, devnet.api_pid]
        assert all(pid_alive(p) for p in pids)
        status = json.loads(veritrain("devnet", "status", "--json", home=home).stdout)
        assert status["running"] and status["api_healthy"] and "key" not in json.dumps(status)
        deployment = load_deployment(home / "deployment.json")
        assert deployment.params["market"]["auditWindow"] == 40  # devnet parameters
        w3 = devnet.web3()
        token = deployment.contract(w3, "VeriToken")
        for role in ("user", "solver0", "verifier9"):
            assert token.functions.balanceOf(devnet.address(role)).call() == MINT_PER_ACCOUNT
        again = veritrain("devnet", "up", "--port", "0", "--api-port", "0", home=home, check=False)
        assert again.returncode == 1 and "already running" in again.stderr and "devnet down" in again.stderr
    finally:
        veritrain("devnet", "down", home=home)
    assert wait_dead(pids) == []
    assert not (home / "devnet.json").exists()
    gone = veritrain("devnet", "status", home=home, check=False)
    assert gone.returncode == 1 and "veritrain devnet up" in gone.stderr


PARENT = textwrap.dedent(
    """
    import json, sys, time
    from veritrain.procs import Supervisor, handle_signals
    out = sys.argv[1]
    child = "import subprocess, sys, time; "
    child += "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
    child += "print(g.pid, flush=True); time.sleep(600)"
    with handle_signals(), Supervisor(out + "/logs", grace=3) as sup:
        pids = []
        for i in range(2):
            p = sup.start(f"child{i}", [sys.executable, "-c", child])
            pids.append(p.pid)
        time.sleep(1.0)  # the grandchildren have printed their pid
        grand = [int(open(f"{out}/logs/child{i}.log").read().split()[-1]) for i in range(2)]
        json.dump({"parent": __import__("os").getpid(), "pids": pids + grand}, open(out + "/pids.json", "w"))
        time.sleep(600)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_no_process_left_when_the_parent_is_interrupted_or_killed(tmp_path, sig):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (tmp_path / "pids.json").exists():
        assert parent.poll() is None, parent.stderr.read().decode() if parent.stderr else ""
        assert time.monotonic() < deadline, "the parent never started its children"
        time.sleep(0.1)
    time.sleep(0.2)
    pids = json.loads((tmp_path / "pids.json").read_text())["pids"]
    assert len(pids) == 4 and all(pid_alive(p) for p in pids)
    os.kill(parent.pid, sig)
    parent.wait(timeout=30)
    assert wait_dead(pids) == [], f"left running after {sig.name}: {pids}"


def test_supervisor_reports_early_death_with_the_log_and_waits_for_the_ready_file(tmp_path):
    with Supervisor(tmp_path) as sup:
        with pytest.raises(ProcessError, match="(?s)exited before it was ready.*no such model"):
            sup.start(
                "dies",
                [sys.executable, "-c", "import sys; print('no such model'); sys.exit(3)"],
                ready_file=tmp_path / "never.json",
            )
        ready = tmp_path / "node" / "node.json"
        ready.parent.mkdir()
        ready.write_text(json.dumps({"pid": 1}))  # stale: another pid, must not count (and is removed)
        code = (
            "import json, os, sys, time; time.sleep(0.3); "
            f"open({str(ready)!r}, 'w').write(json.dumps({{'pid': os.getpid(), 'url': 'x'}})); time.sleep(600)"
        )
        proc = sup.start("node", [sys.executable, "-c", code], ready_file=ready, timeout=30)
        assert proc.info["url"] == "x" and proc.alive()
        sup.check()
        pid = proc.pid
    assert wait_dead([pid]) == []
