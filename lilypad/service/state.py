"""Local state of lilypad's services in SQLite.

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

import os
import sqlite3
from pathlib import Path
from typing import Literal

__all__ = ["BUSY_TIMEOUT_S", "open_sqlite"]

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
