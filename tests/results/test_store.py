"""The content-addressed results store (lilypad.results.store)."""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest

from lilypad.exceptions import (
    InvalidCIDError,
    ResultCIDMismatchError,
    ResultCorruptedError,
    ResultLayoutError,
    ResultNotFoundError,
    ResultTooLargeError,
    UnsafeResultError,
)
from lilypad.results.cid import directory_cid
from lilypad.results.store import DEFAULT_MAX_RESULT_BYTES, ResultsStore


def make_result(root: Path, stdout: bytes = b"hello\n", outputs: dict[str, bytes] | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "stdout").write_bytes(stdout)
    (root / "stderr").write_bytes(b"")
    (root / "exitCode").write_bytes(b"0")
    (root / "outputs").mkdir()
    for rel, data in (outputs or {"result.txt": b"42\n"}).items():
        path = root / "outputs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def store_entries(store: ResultsStore) -> list[str]:
    """Everything directly under the store's root, temporary directories included."""
    return sorted(os.listdir(store.root))


@pytest.fixture
def store(tmp_path: Path) -> ResultsStore:
    return ResultsStore(tmp_path / "store")


@pytest.fixture
def result(tmp_path: Path) -> Path:
    return make_result(tmp_path / "result", outputs={"a.txt": b"a", "sub/b.bin": bytes(range(256))})


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------


def test_put_get_round_trip(store: ResultsStore, result: Path) -> None:
    cid = store.put(result)
    assert cid == directory_cid(result)
    stored = store.get(cid)
    assert stored == store.root / cid
    assert directory_cid(stored) == cid
    assert (stored / "outputs" / "sub" / "b.bin").read_bytes() == bytes(range(256))
    assert store.has(cid) and cid in store
    assert store.list() == [cid]
    assert store_entries(store) == [cid]  # no temporary directory left behind


def test_defaults_and_root_creation(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "deep" / "store")
    assert store.root.is_dir()
    assert store.max_result_bytes == DEFAULT_MAX_RESULT_BYTES == 1 << 30
    assert store.list() == []


def test_stored_files_are_read_only(store: ResultsStore, result: Path) -> None:
    stored = store.get(store.put(result))
    mode = stat.S_IMODE(os.stat(stored / "stdout").st_mode)
    assert mode == 0o444
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o755


def test_put_is_idempotent(store: ResultsStore, result: Path, tmp_path: Path) -> None:
    twin = make_result(tmp_path / "twin", outputs={"a.txt": b"a", "sub/b.bin": bytes(range(256))})
    first = store.put(result)
    inode = os.stat(store.root / first).st_ino
    assert store.put(twin) == first
    assert os.stat(store.root / first).st_ino == inode  # the first copy was kept
    assert store_entries(store) == [first]


def test_symlinks_inside_are_kept(store: ResultsStore, result: Path) -> None:
    (result / "outputs" / "latest").symlink_to("sub/b.bin")
    (result / "outputs" / "dir-link").symlink_to("sub")
    stored = store.get(store.put(result))
    assert os.readlink(stored / "outputs" / "latest") == "sub/b.bin"
    assert (stored / "outputs" / "dir-link").is_symlink()


def test_hidden_names_are_not_stored(store: ResultsStore, result: Path) -> None:
    (result / ".git").mkdir()
    (result / ".git" / "HEAD").write_text("ref")
    (result / "outputs" / ".secret").write_text("s")
    cid = store.put(result)
    stored = store.get(cid)
    assert not (stored / ".git").exists()
    assert not (stored / "outputs" / ".secret").exists()
    assert cid == directory_cid(result)


def test_several_results(store: ResultsStore, tmp_path: Path) -> None:
    cids = {store.put(make_result(tmp_path / f"r{i}", stdout=f"{i}\n".encode())) for i in range(3)}
    assert len(cids) == 3
    assert store.list() == sorted(cids)


def test_delete(store: ResultsStore, result: Path) -> None:
    cid = store.put(result)
    assert store.delete(cid) is True
    assert not store.has(cid)
    assert store.list() == []
    assert store_entries(store) == []
    with pytest.raises(ResultNotFoundError) as info:
        store.delete(cid)
    assert info.value.cid == cid
    assert store.delete(cid, missing_ok=True) is False
    with pytest.raises(ResultNotFoundError):
        store.get(cid)


def test_list_ignores_foreign_entries(store: ResultsStore, result: Path) -> None:
    cid = store.put(result)
    (store.root / "notes.txt").write_text("x")
    (store.root / "not-a-cid").mkdir()
    (store.root / ".tmp-put-abc").mkdir()
    assert store.list() == [cid]


def test_clean_temporary(store: ResultsStore) -> None:
    old = store.root / ".tmp-put-old"
    old.mkdir()
    (old / "f").write_text("x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    (store.root / ".tmp-put-new").mkdir()
    assert store.clean_temporary(older_than_s=3600) == 1
    assert store_entries(store) == [".tmp-put-new"]


# --------------------------------------------------------------------------
# CID validation: no path traversal
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["..", "../outside", "/etc", "bafy/../../x", "", "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn",
     "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"],
)
def test_cids_are_validated(store: ResultsStore, bad: str) -> None:
    for call in (store.get, store.has, store.delete, store.path_of):
        with pytest.raises(InvalidCIDError):
            call(bad)


def test_contains_is_false_for_invalid_text(store: ResultsStore, result: Path) -> None:
    store.put(result)
    assert "../etc" not in store
    assert 42 not in store


def test_get_absent(store: ResultsStore, result: Path) -> None:
    cid = directory_cid(result)
    assert not store.has(cid)
    with pytest.raises(ResultNotFoundError, match=cid):
        store.get(cid)


# --------------------------------------------------------------------------
# Tampering is detected on read
# --------------------------------------------------------------------------


def test_modified_file_is_detected(store: ResultsStore, result: Path) -> None:
    cid = store.put(result)
    target = store.root / cid / "outputs" / "a.txt"
    os.chmod(target, 0o644)
    target.write_bytes(b"forged")
    with pytest.raises(ResultCorruptedError) as info:
        store.get(cid)
    assert info.value.cid == cid
    assert info.value.actual is not None and info.value.actual != cid
    assert store.get(cid, verify=False) == store.root / cid  # opt-out reads do not check


def test_added_hidden_file_is_detected(store: ResultsStore, result: Path) -> None:
    cid = store.put(result)
    (store.root / cid / "outputs" / ".payload").write_bytes(b"x")
    with pytest.raises(ResultCorruptedError):
        store.get(cid)


def test_removed_file_is_detected(store: ResultsStore, result: Path) -> None:
    cid = store.put(result)
    (store.root / cid / "stderr").unlink()
    with pytest.raises(ResultCorruptedError):
        store.get(cid)


def test_stored_entry_replaced_by_a_symlink(store: ResultsStore, result: Path, tmp_path: Path) -> None:
    cid = store.put(result)
    real = store.root / cid
    real.rename(tmp_path / "moved")
    real.symlink_to(tmp_path / "moved")
    with pytest.raises(ResultCorruptedError, match="not a directory"):
        store.get(cid)


def test_special_file_injected_is_detected(store: ResultsStore, result: Path) -> None:
    cid = store.put(result)
    os.mkfifo(store.root / cid / "outputs" / "fifo")
    with pytest.raises(ResultCorruptedError) as info:
        store.get(cid)
    assert info.value.actual is None


# --------------------------------------------------------------------------
# Refusals (and nothing is left behind)
# --------------------------------------------------------------------------


def test_refuses_a_fifo(store: ResultsStore, result: Path) -> None:
    os.mkfifo(result / "outputs" / "pipe")
    with pytest.raises(UnsafeResultError, match="not a regular file"):
        store.put(result)
    assert store_entries(store) == []


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("/etc/passwd", "absolute path"),
        ("../../../../../../../etc/passwd", "outside"),
        ("../..", "outside"),
        ("missing", "does not resolve"),
    ],
)
def test_refuses_escaping_symlinks(store: ResultsStore, result: Path, target: str, reason: str) -> None:
    (result / "outputs" / "link").symlink_to(target)
    with pytest.raises(UnsafeResultError, match=reason):
        store.put(result)
    assert store_entries(store) == []


def test_refuses_symlink_chain_escaping(store: ResultsStore, result: Path) -> None:
    (result / "outputs" / "d").symlink_to("..")
    (result / "outputs" / "x").symlink_to("d/..")
    with pytest.raises(UnsafeResultError, match="outside"):
        store.put(result)
    assert store_entries(store) == []


def test_refuses_symlink_into_hidden_content(store: ResultsStore, result: Path) -> None:
    (result / "outputs" / ".hidden").write_text("not stored")
    (result / "outputs" / "link").symlink_to(".hidden")
    with pytest.raises(UnsafeResultError, match="does not resolve"):
        store.put(result)


def test_size_limit(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "store", max_result_bytes=1000)
    small = make_result(tmp_path / "small", outputs={"f": b"x" * 900})
    big = make_result(tmp_path / "big", outputs={"f": b"x" * 1000})
    assert store.put(small) == directory_cid(small)
    with pytest.raises(ResultTooLargeError) as info:
        store.put(big)
    assert info.value.limit == 1000 and info.value.unit == "bytes"
    assert store.list() == [directory_cid(small)]
    assert len(store_entries(store)) == 1


def test_size_limit_enforced_while_copying(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ResultsStore(tmp_path / "store", max_result_bytes=1000)
    result = make_result(tmp_path / "r", outputs={"f": b"x" * 10})
    original = ResultsStore._copy_tree

    def grow_then_copy(self: ResultsStore, source: Path, dest: Path) -> None:
        (source / "outputs" / "f").write_bytes(b"x" * 5000)  # grows after the size check
        original(self, source, dest)

    monkeypatch.setattr(ResultsStore, "_copy_tree", grow_then_copy)
    with pytest.raises(ResultTooLargeError):
        store.put(result)
    assert store_entries(store) == []


def test_source_changed_during_copy(store: ResultsStore, result: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = ResultsStore._copy_tree

    def change_then_copy(self: ResultsStore, source: Path, dest: Path) -> None:
        (source / "stdout").write_bytes(b"changed\n")
        original(self, source, dest)

    expected = directory_cid(result)
    monkeypatch.setattr(ResultsStore, "_copy_tree", change_then_copy)
    with pytest.raises(ResultCIDMismatchError) as info:
        store.put(result)
    assert info.value.expected == expected
    assert info.value.actual == directory_cid(result)
    assert store_entries(store) == []


def test_put_of_a_non_directory(store: ResultsStore, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ResultLayoutError):
        store.put(tmp_path / "file")


# --------------------------------------------------------------------------
# Concurrency
# --------------------------------------------------------------------------


def test_concurrent_puts_of_the_same_result(store: ResultsStore, tmp_path: Path) -> None:
    sources = [
        make_result(tmp_path / f"copy{i}", outputs={f"f{j}": bytes([j]) * 5000 for j in range(20)})
        for i in range(8)
    ]
    barrier = threading.Barrier(len(sources))

    def put(source: Path) -> str:
        barrier.wait()
        return store.put(source)

    with ThreadPoolExecutor(max_workers=len(sources)) as pool:
        cids = list(pool.map(put, sources))
    assert len(set(cids)) == 1
    assert store.list() == cids[:1]
    assert store_entries(store) == cids[:1]  # exactly one copy, no leftovers
    assert store.get(cids[0]) == store.root / cids[0]


def _put_in_another_process(root: str, source: str) -> str:
    return ResultsStore(Path(root)).put(Path(source))


def test_concurrent_puts_from_several_processes(tmp_path: Path) -> None:
    root = tmp_path / "store"
    ResultsStore(root)
    sources = [str(make_result(tmp_path / f"copy{i}", stdout=b"same\n")) for i in range(4)]
    with ProcessPoolExecutor(max_workers=4, mp_context=multiprocessing.get_context("fork")) as pool:
        cids = list(pool.map(_put_in_another_process, [str(root)] * 4, sources))
    assert len(set(cids)) == 1
    assert sorted(os.listdir(root)) == cids[:1]
    assert ResultsStore(root).get(cids[0]).is_dir()


def test_losing_the_race_keeps_the_winner(
    store: ResultsStore, result: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = store.put(result)
    winner = os.stat(store.root / cid).st_ino
    # Pretend the result was not there when this put looked, so it copies and
    # then finds the target taken at rename time.
    real_exists = ResultsStore._exists
    calls: list[Path] = []

    def exists_once_false(path: Path) -> bool:
        calls.append(path)
        return False if len(calls) == 1 else real_exists(path)

    monkeypatch.setattr(ResultsStore, "_exists", staticmethod(exists_once_false))
    assert store.put(result) == cid
    assert os.stat(store.root / cid).st_ino == winner
    assert store_entries(store) == [cid]
    assert len(calls) == 2  # the early check, then the check after the failed rename


def test_concurrent_put_and_delete(store: ResultsStore, tmp_path: Path) -> None:
    result = make_result(tmp_path / "r")
    cid = store.put(result)
    errors: list[BaseException] = []

    def churn() -> None:
        try:
            for _ in range(20):
                store.put(result)
                store.delete(cid, missing_ok=True)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store.put(result)
    assert store.list() == [cid]
    assert store.get(cid) == store.root / cid
    assert store_entries(store) == [cid]
