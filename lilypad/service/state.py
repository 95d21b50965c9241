"""Local state of lilypad's services in SQLite.

:class:`DealStateStore` keeps a daemon's own view of each deal (the resource
provider's ``provider.db``, the mediator's ``mediator.db``): a ``status`` and
free-form JSON ``data`` per deal id, so that after a restart the daemon
resumes each deal where it was instead of starting over.

:func:`open_sqlite` is the one way a lilypad process opens a SQLite file (the
solver's store, the bridge's job store, the daemons' deal stores, the event
cursors); every connection gets the same settings:

* **autocommit** (``isolation_level=None``): each statement commits by itself,
  so what a crash leaves behind is exactly the last completed write; a write
  of several statements says ``BEGIN IMMEDIATE`` ... ``COMMIT`` itself;
* **shared between threads** (``check_same_thread=False``): each owner
  serialises its use of the connection with a lock of its own;
* **WAL journal**: readers (``lilypad jobcreator status``, a test reading a
  daemon's file) never block the writer, nor it them;
* **busy timeout** :data:`BUSY_TIMEOUT_S`: a write lock held by another
  connection to the same file is waited for rather than failing with
  "database is locked";
* **foreign keys enforced**;
* ``synchronous=FULL`` by default: a committed write survives a power loss,
  not only a killed process. The solver's store, whose writes are on the
  request path and whose deals the chain also records, passes ``NORMAL``
  (a committed write survives a killed process; the last ones may be lost
  with the machine's power).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

__all__ = ["BUSY_TIMEOUT_S", "DealStateStore", "open_sqlite"]

#: Seconds a statement waits for another connection's lock on the same file.
BUSY_TIMEOUT_S = 30.0


def open_sqlite(path: str | os.PathLike[str], *,
                synchronous: Literal["FULL", "NORMAL"] = "FULL") -> sqlite3.Connection:
    """A connection to the SQLite file at ``path`` (created, with its parent
    directory, if missing) with the settings of the module docstring."""
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class DealStateStore:
    """Per-deal local state in SQLite: ``status`` plus free-form JSON ``data``. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._conn = open_sqlite(path)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS deals (deal_id TEXT PRIMARY KEY, status TEXT NOT NULL,"
            " data TEXT NOT NULL DEFAULT '{}', updated_at REAL NOT NULL)"
        )

    def get(self, deal_id: str) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            row = self._conn.execute("SELECT status, data FROM deals WHERE deal_id = ?", (deal_id,)).fetchone()
        return None if row is None else (row[0], json.loads(row[1]))

    def put(self, deal_id: str, status: str, **data: Any) -> dict[str, Any]:
        """Set ``status`` and merge ``data`` into what is stored; the merged data."""
        with self._lock:
            row = self._conn.execute("SELECT data FROM deals WHERE deal_id = ?", (deal_id,)).fetchone()
            merged = {**(json.loads(row[0]) if row else {}), **data}
            self._conn.execute(
                "INSERT INTO deals (deal_id, status, data, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(deal_id)"
                " DO UPDATE SET status = excluded.status, data = excluded.data, updated_at = excluded.updated_at",
                (deal_id, status, json.dumps(merged), time.time()),
            )
        return merged

    def unfinished(self, finished: Iterable[str]) -> list[str]:
        """The ids of the deals whose status is not one of ``finished``."""
        done = list(finished)
        marks = ",".join("?" * len(done)) or "''"
        with self._lock:
            rows = self._conn.execute(f"SELECT deal_id FROM deals WHERE status NOT IN ({marks})", done).fetchall()
        return [r[0] for r in rows]

    def all(self) -> dict[str, tuple[str, dict[str, Any]]]:
        with self._lock:
            rows = self._conn.execute("SELECT deal_id, status, data FROM deals").fetchall()
        return {r[0]: (r[1], json.loads(r[2])) for r in rows}

    def close(self) -> None:
        with self._lock:
            self._conn.close()
