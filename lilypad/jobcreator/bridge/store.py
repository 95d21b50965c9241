"""The bridge's per-job state in SQLite, keyed by the on-chain job id.

One row per job the bridge has seen: its :class:`~lilypad.jobcreator.bridge.logic.BridgeState`,
the ``JobAdded`` facts (caller, payee, module, raw inputs), and what the steps
recorded (the signed job offer and its id, the deal id and terms, the result
CID, the failure reason), plus a retry counter and the time of the next try.
Every write is committed before it returns (:func:`~lilypad.service.state.open_sqlite`:
WAL journal, autocommit, ``synchronous=FULL``), so what a crash leaves behind is
exactly the last completed write.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lilypad.jobcreator.bridge.logic import ACTIVE_STATES, BridgeState
from lilypad.service.state import open_sqlite

__all__ = ["BridgeJob", "BridgeJobStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    caller TEXT NOT NULL,
    payee TEXT NOT NULL,
    module TEXT NOT NULL,
    inputs TEXT NOT NULL,
    block_number INTEGER NOT NULL,
    log_index INTEGER NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE TABLE IF NOT EXISTS history (
    job_id INTEGER NOT NULL,
    at REAL NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""


@dataclass
class BridgeJob:
    """One on-chain job as the bridge knows it."""

    job_id: int
    state: BridgeState
    caller: str
    payee: str
    module: str
    inputs: list[str]
    block_number: int = 0
    log_index: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    next_try: float = 0.0
    created_at: float = 0.0
    updated_at: float = 0.0

    def view(self) -> dict[str, Any]:
        """A JSON-friendly summary (``lilypad jobcreator status``)."""
        return {
            "job_id": self.job_id, "state": self.state.value, "caller": self.caller, "payee": self.payee,
            "module": self.module, "inputs": self.inputs, "deal_id": self.data.get("deal_id"),
            "offer_id": self.data.get("offer_id"), "result_cid": self.data.get("result_cid"),
            "reason": self.data.get("reason"), "attempts": self.attempts, "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


class BridgeJobStore:
    """SQLite file of :class:`BridgeJob` rows; safe to use from several threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_sqlite(self.path)
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> BridgeJobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _row(row: tuple[Any, ...]) -> BridgeJob:
        return BridgeJob(
            job_id=int(row[0]), state=BridgeState(row[1]), caller=row[2], payee=row[3], module=row[4],
            inputs=json.loads(row[5]), block_number=int(row[6]), log_index=int(row[7]), data=json.loads(row[8]),
            attempts=int(row[9]), next_try=float(row[10]), created_at=float(row[11]), updated_at=float(row[12]),
        )

    _COLUMNS = ("job_id, state, caller, payee, module, inputs, block_number, log_index, data, attempts, "
                "next_try, created_at, updated_at")

    def add(self, job_id: int, *, caller: str, payee: str, module: str, inputs: list[str], block_number: int,
            log_index: int) -> bool:
        """Record a newly seen job in state ``seen``; ``False`` (and nothing
        changed) if the job is already known: duplicate deliveries are no-ops."""
        now = time.time()
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO jobs (job_id, state, caller, payee, module, inputs, block_number, log_index,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, BridgeState.SEEN.value, caller, payee, module, json.dumps(list(inputs)), block_number,
                 log_index, now, now),
            )
            added = cur.rowcount == 1
            if added:
                self._conn.execute("INSERT INTO history VALUES (?, ?, ?, ?)",
                                   (job_id, now, BridgeState.SEEN.value, "JobAdded seen"))
        return added

    def get(self, job_id: int) -> BridgeJob | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {self._COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else self._row(row)

    def update(self, job_id: int, state: BridgeState, note: str = "", *, reset_attempts: bool = True,
               **data: Any) -> BridgeJob:
        """Move ``job_id`` to ``state`` (recording ``note`` in its history when
        the state changes) and merge ``data`` into its data; a failed job's
        ``reason`` defaults to ``note``."""
        now = time.time()
        with self._lock:
            row = self._conn.execute(f"SELECT {self._COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            job = self._row(row)
            merged = {**job.data, **data}
            if note and state == BridgeState.FAILED:
                merged.setdefault("reason", note)
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "UPDATE jobs SET state = ?, data = ?, updated_at = ?"
                    + (", attempts = 0, next_try = 0" if reset_attempts and state != job.state else "")
                    + " WHERE job_id = ?",
                    (state.value, json.dumps(merged), now, job_id),
                )
                if state != job.state:
                    self._conn.execute("INSERT INTO history VALUES (?, ?, ?, ?)",
                                       (job_id, now, state.value, note))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return self.get(job_id)  # type: ignore[return-value]

    def defer(self, job_id: int, until: float, error: str) -> int:
        """Count a failed attempt at the job's current step and hold it until
        ``until``; the new attempt count."""
        with self._lock:
            self._conn.execute(
                "UPDATE jobs SET attempts = attempts + 1, next_try = ?, data = json_set(data, '$.last_error', ?),"
                " updated_at = ? WHERE job_id = ?", (until, error, time.time(), job_id))
            row = self._conn.execute("SELECT attempts FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return int(row[0]) if row else 0

    def active(self) -> list[BridgeJob]:
        """Jobs not yet delivered or failed, oldest first."""
        marks = ",".join("?" for _ in ACTIVE_STATES)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {self._COLUMNS} FROM jobs WHERE state IN ({marks}) ORDER BY job_id",
                [s.value for s in ACTIVE_STATES]).fetchall()
        return [self._row(r) for r in rows]

    def all(self, *, limit: int | None = None) -> list[BridgeJob]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {self._COLUMNS} FROM jobs ORDER BY job_id DESC" + (" LIMIT ?" if limit else ""),
                (limit,) if limit else ()).fetchall()
        return [self._row(r) for r in rows]

    def history(self, job_id: int) -> list[tuple[float, str, str]]:
        with self._lock:
            rows = self._conn.execute("SELECT at, state, reason FROM history WHERE job_id = ? ORDER BY rowid",
                                      (job_id,)).fetchall()
        return [(float(a), s, r) for a, s, r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {s: int(n) for s, n in rows}

    def __iter__(self) -> Iterator[BridgeJob]:
        return iter(self.all())
