"""A process supervisor for the demo, the devnet and the tests: start node subprocesses, wait until they are
up, notice when one dies, and stop every one of them, whatever happens to the parent.

Each child runs in its own session (so its own process group: a Ctrl-C in the terminal reaches only the
parent, which then stops the children in order) with its output in its own log file. Children are asked to
die with the parent (``PR_SET_PDEATHSIG``: the kernel sends them SIGKILL when the supervising thread
exits, even when the parent itself was SIGKILLed), and :meth:`Supervisor.stop_all` ends each whole
process group with SIGTERM, then SIGKILL after a grace period. Use it as a context manager; inside
:func:`handle_signals`, SIGTERM and SIGHUP of the parent raise :class:`Terminated` so ``finally`` blocks run.

Readiness is either a node's ready file (``<data-dir>/node.json``, written by
``protocol.node.write_ready_file`` with the node's pid), an HTTP URL that answers 200, or a predicate.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from protocol.errors import VeritrainError

PR_SET_PDEATHSIG = 1
READY_FILE = "node.json"

#: The watchdog: a tiny process of its own session that reads "+PGID" / "-PGID" lines from the supervisor;
#: when its stdin closes (the supervisor exited, however it died) it ends every process group still listed,
#: grandchildren included (PR_SET_PDEATHSIG reaches only direct children).
_WATCHDOG = r"""
import os, signal, sys, time
groups = set()
for line in sys.stdin:
    line = line.strip()
    if line[:1] == "+": groups.add(int(line[1:]))
    elif line[:1] == "-": groups.discard(int(line[1:]))
for sig, pause in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 0.0)):
    for g in list(groups):
        try: os.killpg(g, sig)
        except OSError: groups.discard(g)
    end = time.monotonic() + pause
    while groups and time.monotonic() < end:
        for g in list(groups):
            try: os.killpg(g, 0)
            except OSError: groups.discard(g)
        time.sleep(0.05)
"""


class ProcessError(VeritrainError, RuntimeError):
    """A supervised process failed to start, died, or did not become ready."""


class Terminated(BaseException):
    """The supervising process got SIGTERM/SIGHUP (raised by :func:`handle_signals`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signal.Signals(signum).name}")
        self.signum = signum


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:  # pragma: no cover - not Linux: stop_all still ends the children
        pass


def log_tail(path: Path, limit: int = 3000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace")


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` names a live (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:  # pragma: no cover - non-Linux
        return True


def group_alive(pgid: int) -> bool:
    """Whether any process of process group ``pgid`` is still alive (not a zombie)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def kill_group(pgid: int, grace: float = 5.0) -> None:
    """SIGTERM to process group ``pgid``, then SIGKILL after ``grace`` seconds if any member is left."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@dataclass
class Proc:
    """One supervised process."""

    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path
    ready_file: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)  # the ready file's contents once ready
    health_url: str | None = None
    ready: Callable[[], bool] | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, limit: int = 3000) -> str:
        return log_tail(self.log_path, limit)

    def died(self, what: str) -> ProcessError:
        return ProcessError(
            f"{self.name} (pid {self.pid}) {what} with exit code {self.popen.returncode}; the end of its log "
            f"{self.log_path}:\n{self.log_tail()}"
        )


class Supervisor:
    """Starts subprocesses and guarantees they end. ``with Supervisor(log_dir) as sup: sup.start(...)``."""

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        *,
        grace: float = 8.0,
        die_with_parent: bool = True,
        pid_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.log_dir = Path(log_dir)
        #: every pid started is appended here (one per line): how tests check that nothing is left running
        self.pid_file = Path(pid_file) if pid_file else None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.grace = grace
        self.die_with_parent = die_with_parent
        self.procs: list[Proc] = []
        self._lock = threading.Lock()
        self._watchdog: subprocess.Popen[bytes] | None = None

    def _watch(self, line: str) -> None:
        """Tells the watchdog (started on first use) to add or drop a process group."""
        if self._watchdog is None or self._watchdog.poll() is not None:
            import sys

            self._watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for proc in self.procs:
                if line != f"+{proc.pid}":
                    self._send_watchdog(f"+{proc.pid}")
        self._send_watchdog(line)

    def _send_watchdog(self, line: str) -> None:
        assert self._watchdog is not None and self._watchdog.stdin is not None
        with contextlib.suppress(OSError):
            self._watchdog.stdin.write(f"{line}\n".encode())
            self._watchdog.stdin.flush()

    def _close_watchdog(self) -> None:
        wd, self._watchdog = self._watchdog, None
        if wd is not None:
            with contextlib.suppress(OSError):
                assert wd.stdin is not None
                wd.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                wd.wait(timeout=5.0)

    # ------------------------------------------------------------------ start

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        ready_file: str | os.PathLike[str] | None = None,
        health_url: str | None = None,
        ready: Callable[[], bool] | None = None,
        timeout: float = 60.0,
        wait: bool = True,
    ) -> Proc:
        """Starts ``argv`` (output to ``<log_dir>/<name>.log``) and waits until it is ready: its
        ``ready_file`` exists and names its pid, ``health_url`` answers 200, or ``ready()`` is true (none of
        them, or ``wait`` false: returns at once; then call :meth:`wait_ready`). Raises :class:`ProcessError`
        with the log's tail if it dies or times out."""
        if any(p.name == name for p in self.procs):
            raise ValueError(f"a process named {name!r} is already supervised")
        log_path = self.log_dir / f"{name}.log"
        rf = Path(ready_file) if ready_file else None
        if rf is not None:
            rf.unlink(missing_ok=True)  # a stale file from an earlier run must not count
        full_env = {**os.environ, **(env or {})}
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        with open(log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(argv)}\n".encode())
            log.flush()
            try:
                popen = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=full_env,
                    cwd=cwd,
                    start_new_session=True,
                    # PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process:
                    # only a child started from the main thread may have it (the watchdog covers the rest).
                    preexec_fn=_die_with_parent if self.die_with_parent and _main_thread() else None,
                )
            except FileNotFoundError as exc:
                raise ProcessError(f"cannot start {name}: {exc}") from exc
        proc = Proc(
            name=name,
            argv=list(argv),
            popen=popen,
            log_path=log_path,
            ready_file=rf,
            health_url=health_url,
            ready=ready,
        )
        with self._lock:
            self.procs.append(proc)
            self._watch(f"+{proc.pid}")
            if self.pid_file is not None:
                with open(self.pid_file, "a") as fh:
                    fh.write(f"{proc.pid}\n")
        raise_if_interrupted()  # a Ctrl-C during the fork above was swallowed by an at-fork hook
        if not wait:
            return proc
        try:
            self.wait_ready(proc, timeout=timeout)
        except BaseException:
            self.stop(proc, grace=2.0)  # a process that never came up is not left behind or watched
            raise
        return proc

    def wait_ready(self, proc: Proc, *, timeout: float = 60.0) -> None:
        """Waits until ``proc`` is ready (its ready file, health URL or predicate); :class:`ProcessError` with its
        log's tail if it dies first or ``timeout`` passes."""
        health_url, ready = proc.health_url, proc.ready
        if proc.ready_file is None and health_url is None and ready is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            raise_if_interrupted()
            if not proc.alive():
                raise proc.died("exited before it was ready")
            if self._is_ready(proc, health_url, ready):
                return
            if time.monotonic() > deadline:
                raise ProcessError(
                    f"{proc.name} (pid {proc.pid}) was not ready within {timeout:.0f}s; the end of its log "
                    f"{proc.log_path}:\n{proc.log_tail()}"
                )
            time.sleep(0.1)

    @staticmethod
    def _is_ready(proc: Proc, health_url: str | None, ready: Callable[[], bool] | None) -> bool:
        if proc.ready_file is not None:
            try:
                info = json.loads(proc.ready_file.read_text())
            except (OSError, ValueError):
                return False
            if int(info.get("pid", -1)) != proc.pid:
                return False
            proc.info = info
        if health_url is not None:
            try:
                if httpx.get(health_url, timeout=1.0).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
        return ready() if ready is not None else True

    # ------------------------------------------------------------------ watch

    def check(self) -> None:
        """Raises :class:`ProcessError` (with its log tail) if a supervised process has exited (and a swallowed
        Ctrl-C / SIGTERM, see :func:`raise_if_interrupted`)."""
        raise_if_interrupted()
        for proc in list(self.procs):
            if not proc.alive():
                raise proc.died("exited unexpectedly")

    def get(self, name: str) -> Proc:
        for proc in self.procs:
            if proc.name == name:
                return proc
        raise KeyError(name)

    # ------------------------------------------------------------------ stop

    def stop(self, proc: Proc, grace: float | None = None) -> int | None:
        """Ends ``proc``'s whole process group (SIGTERM, SIGKILL after the grace); returns its exit code."""
        kill_group(proc.pid, self.grace if grace is None else grace)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=2.0)
        with self._lock:
            if proc in self.procs:
                self.procs.remove(proc)
            if self._watchdog is not None:
                self._send_watchdog(f"-{proc.pid}")
        return proc.popen.returncode

    def stop_all(self) -> None:
        """Stops every process, the newest first (nodes before the chain they use). SIGTERM goes to all
        of them at once, then whatever is left after the grace period gets SIGKILL."""
        procs = list(reversed(self.procs))
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for proc in procs:
            while group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=2.0)
        with self._lock:
            if self._watchdog is not None:
                for proc in procs:
                    self._send_watchdog(f"-{proc.pid}")
            self.procs.clear()
            self._close_watchdog()

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # a second Ctrl-C while stopping must not leave children behind
        with _ignoring_signals():
            self.stop_all()


@contextlib.contextmanager
def _ignoring_signals() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {s: signal.signal(s, signal.SIG_IGN) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


#: A signal that arrived but whose exception Python may have swallowed: a handler's exception raised inside
#: an at-fork hook (logging registers one; every subprocess start runs it) is printed as "Exception ignored"
#: and lost. :func:`raise_if_interrupted` re-raises it at the next safe point.
_pending_signal: int | None = None


def _interrupt(signum: int, frame: object) -> None:
    global _pending_signal
    _pending_signal = signum
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)


def raise_if_interrupted() -> None:
    """Raises the KeyboardInterrupt / :class:`Terminated` of a signal whose first raise was swallowed."""
    global _pending_signal
    signum, _pending_signal = _pending_signal, None
    if signum is not None:
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """Inside: SIGTERM and SIGHUP raise :class:`Terminated` and SIGINT raises KeyboardInterrupt in the main
    thread (also when SIGINT was ignored by whoever started us: an ignored disposition survives exec, e.g. for
    a non-interactive shell's background job, and Python then installs no handler of its own), so every
    ``with Supervisor`` block on the way out stops its children."""
    global _pending_signal
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _pending_signal = None
    sigs = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    old = {s: signal.signal(s, _interrupt) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _pending_signal = None


__all__ = [
    "ProcessError",
    "Proc",
    "Supervisor",
    "Terminated",
    "group_alive",
    "handle_signals",
    "raise_if_interrupted",
    "kill_group",
    "log_tail",
    "pid_alive",
]
