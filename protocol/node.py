"""What every long-running veritrain node shares (solver, verifier): its key, structured logs, metrics, an
HTTP service in a background thread, a stop flag wired to SIGTERM/SIGINT, a main loop that survives
transient errors, and the ready file supervisors wait for.

Nodes never import each other; whatever both need lives here or elsewhere in ``protocol/``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from protocol.atomic import atomic_write_json
from protocol.errors import VeritrainError
from protocol.metrics import CONTENT_TYPE, Registry

#: Environment variable a node reads its private key from when neither ``--key`` nor ``--key-file`` is given.
KEY_ENV = "VERITRAIN_KEY"
#: Name of the ready file a node writes in its data directory once it is up.
READY_FILE = "node.json"
#: Name of the JSON-lines log file in a node's data directory.
LOG_FILE = "node.log"

Metrics = Registry


class NodeConfigError(VeritrainError, ValueError):
    """A node cannot start with the configuration it was given (the message says what to do)."""


# ---------------------------------------------------------------------------------------------------- key


def load_account(
    key: str | None = None, key_file: str | os.PathLike[str] | None = None, env: str = KEY_ENV
) -> LocalAccount:
    """The node's account from ``key`` (hex), else the first line of ``key_file``, else ``$env``.

    The key itself never appears in an error message or a log line.
    """
    source = "--key"
    if key is None and key_file is not None:
        path = Path(key_file)
        try:
            key = path.read_text(encoding="utf-8").strip().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise NodeConfigError(f"cannot read a private key from {path}: {exc.__class__.__name__}") from None
        source = f"--key-file {path}"
    if key is None:
        key = os.environ.get(env)
        source = f"${env}"
    if not key:
        raise NodeConfigError(f"no private key: pass --key HEX or --key-file PATH, or set ${env}")
    try:
        return Account.from_key(key.strip())
    except Exception:
        raise NodeConfigError(f"the private key from {source} is not a 32-byte hex key") from None


# ------------------------------------------------------------------------------------------------ logging

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``role``, ``logger``, ``event``, then the record's extras."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "event", None)  # set by log calls with extra={"event": ...}
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "role": self.role,
            "logger": record.name,
            "event": event or record.getMessage(),
        }
        if event:
            msg = record.getMessage()
            if msg != event:
                out["msg"] = msg
        for k, v in record.__dict__.items():
            if k not in _RESERVED and k != "event" and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


def setup_logging(role: str, data_dir: str | os.PathLike[str] | None = None, level: str = "INFO") -> logging.Logger:
    """JSON-lines logs for a node: to stderr and (when ``data_dir`` is given) appended to ``data_dir/node.log``.

    Returns the ``veritrain`` logger; every module's ``logging.getLogger("veritrain.…")`` inherits it.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise NodeConfigError(f"unknown log level {level!r}: use debug, info, warning or error")
    root = logging.getLogger("veritrain")
    for h in list(root.handlers):
        if getattr(h, "_veritrain_node", False):
            root.removeHandler(h)
            h.close()
    fmt = JsonFormatter(role)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if data_dir is not None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(Path(data_dir) / LOG_FILE, encoding="utf-8"))
    for h in handlers:
        h.setFormatter(fmt)
        h._veritrain_node = True  # type: ignore[attr-defined]
        root.addHandler(h)
    root.setLevel(numeric)
    root.propagate = False
    return root


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log a structured event: ``event`` names it (``"committed"``, ``"dispute-move"``…), ``fields`` go to JSON."""
    clash = _RESERVED.intersection(fields)
    if clash:
        fields = {(f"{k}_" if k in clash else k): v for k, v in fields.items()}
    logger.log(level, event, extra={"event": event, **fields})


# --------------------------------------------------------------------------------------------------- http


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (port 0 = any free port) → ``(host, port)``."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise NodeConfigError(f"--listen must be HOST:PORT (e.g. 127.0.0.1:8600, port 0 = any free), not {listen!r}")
    return host.strip("[]"), int(port)


class HttpService:
    """Serve an ASGI app (FastAPI) with uvicorn in a daemon thread on a socket bound before start.

    ``url`` is known as soon as the constructor returns (port 0 picks a free port); :meth:`start` returns once
    uvicorn accepts connections.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning") -> None:
        import uvicorn

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise NodeConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.host, self.port = host, self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"http:{self.port}", daemon=True)

    def _run(self) -> None:
        self._server.run(sockets=[self._sock])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 15.0) -> HttpService:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise NodeConfigError(f"the HTTP service on {self.url} did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._sock.close()


def metrics_response(registry: Registry) -> Any:
    """A FastAPI/Starlette response with the registry in Prometheus text format."""
    from starlette.responses import Response

    return Response(registry.render(), media_type=CONTENT_TYPE)


# ------------------------------------------------------------------------------------------ stop and loop


class StopFlag:
    """Set by SIGTERM/SIGINT (when installed from the main thread) or by :meth:`set`."""

    def __init__(self, *, install_signals: bool = True) -> None:
        self._event = threading.Event()
        self.signal: int | None = None
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self._event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.signal = signum
        self._event.set()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when the flag was set (stop now)."""
        return self._event.wait(max(0.0, seconds))


def run_loop(
    tick: Callable[[], float | None],
    stop: StopFlag,
    interval: float,
    logger: logging.Logger,
    *,
    max_backoff: float = 30.0,
) -> None:
    """Call ``tick`` until ``stop`` is set. ``tick`` may return the seconds to wait before the next call
    (``None`` = ``interval``). An exception is logged (with its traceback at debug level) and retried with
    exponential backoff up to ``max_backoff``; the loop itself never dies of one."""
    failures = 0
    while not stop.is_set():
        try:
            wait = tick()
            failures = 0
        except Exception as exc:
            failures += 1
            wait = min(max_backoff, interval * 2 ** min(failures, 10))
            log_event(
                logger,
                "tick-failed",
                logging.WARNING,
                error=f"{exc.__class__.__name__}: {exc}",
                failures=failures,
                retry_in_s=round(wait, 2),
            )
            logger.debug("tick traceback", exc_info=True)
        if stop.wait(interval if wait is None else wait):
            break


# ------------------------------------------------------------------------------------------- ready file


def write_ready_file(data_dir: str | os.PathLike[str], **info: Any) -> Path:
    """Atomically write ``data_dir/node.json`` (``pid`` and ``started_at`` added) for supervisors to wait on."""
    payload = {"pid": os.getpid(), "started_at": round(time.time(), 3), **info}
    return atomic_write_json(Path(data_dir) / READY_FILE, payload)


def read_ready_file(data_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The node's ready file, or None when it does not exist (yet) or is not complete JSON."""
    try:
        return json.loads((Path(data_dir) / READY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def clear_ready_file(data_dir: str | os.PathLike[str]) -> None:
    """Remove a stale ready file (call at start, before the node is up)."""
    (Path(data_dir) / READY_FILE).unlink(missing_ok=True)
