"""The service kit's local state: the one SQLite opener and the daemons' per-deal store."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from lilypad.service.state import BUSY_TIMEOUT_S, DealStateStore, open_sqlite


def pragma(conn: sqlite3.Connection, name: str) -> object:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_every_connection_gets_the_documented_settings(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.db"
    conn = open_sqlite(path)
    try:
        assert path.is_file()
        assert pragma(conn, "journal_mode") == "wal"
        assert pragma(conn, "synchronous") == 2  # FULL
        assert pragma(conn, "foreign_keys") == 1
        assert pragma(conn, "busy_timeout") == int(BUSY_TIMEOUT_S * 1000)
        assert conn.isolation_level is None  # autocommit
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert not conn.in_transaction  # committed by itself
    finally:
        conn.close()
    normal = open_sqlite(path, synchronous="NORMAL")
    try:
        assert pragma(normal, "synchronous") == 1
        assert normal.execute("SELECT x FROM t").fetchall() == [(1,)]  # the write survived the close
    finally:
        normal.close()
    with pytest.raises(ValueError, match="FULL or NORMAL"):
        open_sqlite(path, synchronous="OFF")  # type: ignore[arg-type]


def test_a_connection_is_usable_from_another_thread(tmp_path: Path) -> None:
    conn = open_sqlite(tmp_path / "state.db")
    conn.execute("CREATE TABLE t (x INTEGER)")
    errors: list[BaseException] = []

    def write() -> None:
        try:
            conn.execute("INSERT INTO t VALUES (2)")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(10)
    assert errors == [] and conn.execute("SELECT x FROM t").fetchall() == [(2,)]
    conn.close()


def test_a_writer_waits_for_another_connections_lock_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    holder, waiter = open_sqlite(path), open_sqlite(path)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    waiter.execute("INSERT INTO t VALUES (2)")  # blocks until the holder commits
    waited = time.monotonic() - started
    release.join()
    assert 0.3 < waited < BUSY_TIMEOUT_S
    assert sorted(r[0] for r in waiter.execute("SELECT x FROM t")) == [1, 2]
    holder.close()
    waiter.close()


def test_deal_state_merges_data_and_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "provider" / "provider.db"
    store = DealStateStore(path)
    assert store.get("0x01") is None and store.all() == {}
    assert store.put("0x01", "new", module_ref="cowsay:v0.0.1") == {"module_ref": "cowsay:v0.0.1"}
    assert store.put("0x01", "ran", result_cid="bafy", exit_code=0) == {
        "module_ref": "cowsay:v0.0.1", "result_cid": "bafy", "exit_code": 0}
    store.put("0x02", "refused")
    store.close()
    again = DealStateStore(path)
    try:
        assert again.get("0x01") == ("ran", {"module_ref": "cowsay:v0.0.1", "result_cid": "bafy", "exit_code": 0})
        assert again.all() == {"0x01": ("ran", {"module_ref": "cowsay:v0.0.1", "result_cid": "bafy", "exit_code": 0}),
                               "0x02": ("refused", {})}
    finally:
        again.close()
    with sqlite3.connect(path) as conn:  # what the daemon tests read from outside
        assert conn.execute("SELECT status FROM deals WHERE deal_id = '0x01'").fetchone() == ("ran",)


def test_deal_state_is_safe_from_many_threads(tmp_path: Path) -> None:
    store = DealStateStore(tmp_path / "state.db")

    def worker(n: int) -> None:
        for i in range(50):
            store.put("0xshared", "running", **{f"w{n}": i})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    status, data = store.get("0xshared")  # type: ignore[misc]
    assert status == "running" and data == {"w0": 49, "w1": 49, "w2": 49, "w3": 49}  # no merge lost
    store.close()
