"""The solver node's persistent state: one SQLite file (WAL) in its data directory.

Everything the node needs to resume after ``kill -9`` is here or on chain: which orders it looked at (and why
it skipped them, so each bad order is logged once), the bids it signed, the jobs it won and how far each got
(``matched`` → ``trained`` → ``committed`` → ``done``), the disputes against it. Each write is its own committed
transaction; the trajectories themselves live in ``jobs/<job id>/trajectory.sqlite`` and the checkpoints in the
blob store.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id      TEXT PRIMARY KEY,           -- 0x + 64 hex (the order digest)
    status      TEXT NOT NULL,              -- skipped | bid | lost | matched | trained | committed | done
    reason      TEXT,                       -- why skipped / lost / how it ended
    spec        TEXT,                       -- the spec's canonical JSON
    order_json  TEXT,                       -- the order as the API listed it
    bid_hash    TEXT,
    bid_nonce   TEXT,
    price       TEXT,
    stake       TEXT,
    expiry      INTEGER,
    eta_s       INTEGER,
    deadline    INTEGER,
    root        TEXT,                       -- trajectory root once trained
    final_root  TEXT,
    mirrored    INTEGER NOT NULL DEFAULT 0,
    outcome     TEXT,                       -- finalized | slashed | expired
    updated_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS disputes (
    dispute_id  INTEGER PRIMARY KEY,
    job_id      TEXT NOT NULL,
    block       INTEGER NOT NULL DEFAULT 0,
    outcome     TEXT                        -- NULL while running; solver_won | challenger_won
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

ACTIVE = ("matched", "trained", "committed")


@dataclass
class JobRow:
    job_id: str
    status: str
    reason: str | None
    spec: str | None
    order_json: str | None
    bid_hash: str | None
    bid_nonce: str | None
    price: str | None
    stake: str | None
    expiry: int | None
    eta_s: int | None
    deadline: int | None
    root: str | None
    final_root: str | None
    mirrored: int
    outcome: str | None
    updated_at: float

    @property
    def job_bytes(self) -> bytes:
        return bytes.fromhex(self.job_id[2:])

    @property
    def order(self) -> dict[str, Any]:
        return json.loads(self.order_json or "{}")


class SolverState:
    """Thread-safe access to the node's SQLite state."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -------------------------------------------------------------------------------------------- jobs

    def job(self, job_id: str) -> JobRow | None:
        with self._lock:
            cur = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
            row = cur.fetchone()
            if row is None:
                return None
            return JobRow(*row)

    def jobs(self, *statuses: str) -> list[JobRow]:
        with self._lock:
            if statuses:
                marks = ",".join("?" * len(statuses))
                cur = self._db.execute(f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY updated_at", statuses)
            else:
                cur = self._db.execute("SELECT * FROM jobs ORDER BY updated_at")
            return [JobRow(*r) for r in cur.fetchall()]

    def known(self, job_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM jobs WHERE job_id = ?", (job_id,)).fetchone() is not None

    def insert_job(self, job_id: str, status: str, **fields: Any) -> None:
        cols = ["job_id", "status", "updated_at", *fields]
        vals = [job_id, status, time.time(), *fields.values()]
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO jobs ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                vals,
            )

    def update_job(self, job_id: str, **fields: Any) -> None:
        fields["updated_at"] = time.time()
        sets = ",".join(f"{k} = ?" for k in fields)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {sets} WHERE job_id = ?", [*fields.values(), job_id])

    def count_by_status(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())

    # ---------------------------------------------------------------------------------------- disputes

    def add_dispute(self, dispute_id: int, job_id: str, block: int = 0) -> bool:
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO disputes (dispute_id, job_id, block) VALUES (?, ?, ?)",
                (dispute_id, job_id, block),
            )
            return cur.rowcount > 0

    def open_disputes(self) -> list[tuple[int, str]]:
        with self._lock:
            return [
                (int(d), j)
                for d, j in self._db.execute(
                    "SELECT dispute_id, job_id FROM disputes WHERE outcome IS NULL ORDER BY dispute_id"
                ).fetchall()
            ]

    def resolve_dispute(self, dispute_id: int, outcome: str) -> None:
        with self._lock:
            self._db.execute("UPDATE disputes SET outcome = ? WHERE dispute_id = ?", (outcome, dispute_id))

    def rollback_disputes(self, block: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM disputes WHERE block > ? AND outcome IS NULL", (block,))

    # -------------------------------------------------------------------------------------------- meta

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
