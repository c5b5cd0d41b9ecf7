"""A market on a devnet with test parameters and verifiers that may be adversaries, for the real-process market
tests (tests/test_market_e2e.py, tests/test_hostile_solvers.py)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from protocol.paths import repo_root
from veritrain.demo import MarketRun
from veritrain.devnet import start_devnet
from veritrain.market import connect
from veritrain.procs import Supervisor


def full_audit_params(path: Path, **market: Any) -> Path:
    """The devnet parameters with every segment audited (detection certain, tests deterministic) and
    ``market`` overrides, written to ``path``."""
    params = json.loads((repo_root() / "contracts" / "params" / "devnet.json").read_text())
    params["market"]["auditRateBps"] = 10_000
    params["market"].update(market)
    path.write_text(json.dumps(params))
    return path


class FullAuditRun(MarketRun):
    """MarketRun on a devnet deployed with ``params_path`` and verifiers that may be adversaries; it can kill -9
    a node from any thread and restarts it from the main thread."""

    def __init__(self, home: Path, params_path: Path, verifiers: dict[str, str | None], **kw) -> None:
        super().__init__(home, verifiers=0, **kw)
        self.params_path = params_path
        self.verifier_adversaries = verifiers
        self.verifier_roles = list(verifiers)
        self._kill_lock = threading.Lock()  # a kill and the liveness check never interleave
        self._to_restart: str | None = None
        self.killed: dict[str, Any] = {}

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.supervisor = sup = Supervisor(self.home / "logs", grace=5.0, pid_file=self.pid_file)
        self.devnet = start_devnet(self.home, port=0, api_port=0, supervisor=sup, params=self.params_path)
        self.keys = self.home / "keys"
        self.keys.mkdir(mode=0o700)
        self.env = {"VERITRAIN_HOME": str(self.home), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        procs = [self._start_node("solver", r, a, self.keys, self.env) for r, a in self.solvers.items()]
        procs += [self._start_node("verifier", r, a, self.keys, self.env) for r, a in self.verifier_adversaries.items()]
        for proc in procs:
            sup.wait_ready(proc, timeout=self.node_timeout)
        self.user = connect(role="user", home=self.home)

    def kill9(self, role: str, **facts: Any) -> None:
        """kill -9 of ``role``'s process (any thread); the main thread restarts it at its next liveness check."""
        assert self.supervisor is not None
        with self._kill_lock:
            proc = self.nodes[role]
            with self.supervisor._lock:  # no longer supervised: its death is ours, not a crash to report
                self.supervisor.procs.remove(proc)
            os.kill(proc.pid, signal.SIGKILL)  # the process this test started, by its pid
            proc.popen.wait(timeout=10)
            self.killed.update(role=role, pid=proc.pid, at=time.monotonic(), down_ts=self._chain_time(), **facts)

    def request_restart(self, role: str) -> None:
        with self._kill_lock:
            self._to_restart = role

    def _check_nodes(self) -> None:
        # Runs on the main thread (submit's and wait_all's polls). The restart must happen here, not on the
        # watcher thread: the supervisor's children get PR_SET_PDEATHSIG, which fires when the *thread* that
        # forked them ends, so a node started from the short-lived watcher would be SIGKILLed with it.
        with self._kill_lock:
            super()._check_nodes()
            role, self._to_restart = self._to_restart, None
        if role is not None:
            assert self.supervisor is not None
            new = self._start_node("verifier", role, self.verifier_adversaries[role], self.keys, self.env)
            self.supervisor.wait_ready(new, timeout=self.node_timeout)
            self.killed.update(new_pid=new.pid, restarted_after_s=round(time.monotonic() - self.killed["at"], 1),
                               up_ts=self._chain_time())  # fmt: skip

    def _chain_time(self) -> int:
        assert self.devnet is not None
        return int(self.devnet.web3().eth.get_block("latest")["timestamp"])
