"""Comparing two job results (lilypad.results.compare), for ``lilypad module check``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from lilypad.exceptions import CIDError
from lilypad.results.cid import directory_cid
from lilypad.results.compare import (
    EXCERPT_MAX_LINES,
    TEXT_DIFF_MAX_BYTES,
    FileDifference,
    compare_results,
)


def make_result(
    root: Path, *, stdout: bytes = b"hello\n", exit_code: bytes = b"0",
    outputs: dict[str, bytes] | None = None,
) -> Path:
    root.mkdir(parents=True)
    (root / "stdout").write_bytes(stdout)
    (root / "stderr").write_bytes(b"")
    (root / "exitCode").write_bytes(exit_code)
    (root / "outputs").mkdir()
    for rel, data in (outputs or {}).items():
        path = root / "outputs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_identical_results_are_reproducible(tmp_path: Path) -> None:
    outputs = {"a.txt": b"a", "sub/b.bin": bytes(range(256))}
    a = make_result(tmp_path / "a", outputs=outputs)
    b = make_result(tmp_path / "b", outputs=outputs)
    os.utime(b / "stdout", (0, 0))  # metadata is not content
    (b / ".hidden").write_text("not part of the result")
    diff = compare_results(a, b)
    assert diff.reproducible
    assert diff.cid_a == diff.cid_b == directory_cid(a)
    assert (diff.only_in_a, diff.only_in_b, diff.differing) == ([], [], [])
    assert (diff.exit_code_a, diff.exit_code_b) == (0, 0)
    assert not diff.exit_codes_differ
    assert diff.summary() == f"reproducible: both results have CID {diff.cid_a}"


def test_differing_text_file_has_sizes_hashes_and_excerpt(tmp_path: Path) -> None:
    a = make_result(tmp_path / "a", stdout=b"step 1\nstep 2\nresult: 0.1234\ndone\n")
    b = make_result(tmp_path / "b", stdout=b"step 1\nstep 2\nresult: 0.1235\ndone\n")
    diff = compare_results(a, b)
    assert not diff.reproducible
    assert diff.cid_a == directory_cid(a) and diff.cid_b == directory_cid(b)
    assert len(diff.differing) == 1
    difference = diff.differing[0]
    assert difference.path == "stdout"
    assert (difference.kind_a, difference.kind_b) == ("file", "file")
    assert difference.size_a == difference.size_b == len((a / "stdout").read_bytes()) == 34
    assert difference.sha256_a == sha256((a / "stdout").read_bytes())
    assert difference.sha256_b == sha256((b / "stdout").read_bytes())
    assert difference.excerpt is not None
    lines = difference.excerpt.splitlines()
    assert lines[:2] == ["--- a/stdout", "+++ b/stdout"]
    assert "-result: 0.1234" in lines and "+result: 0.1235" in lines
    summary = diff.summary()
    assert summary.startswith("NOT reproducible")
    assert "differs: stdout: 34 bytes, sha256 " + difference.sha256_a[:12] in summary
    assert "    +result: 0.1235" in summary
    assert summary.endswith("1 difference")


def test_files_only_on_one_side(tmp_path: Path) -> None:
    a = make_result(tmp_path / "a", outputs={"common": b"c", "only-a.txt": b"a", "extra/x": b"1", "extra/y/z": b"2"})
    b = make_result(tmp_path / "b", outputs={"common": b"c", "only-b.txt": b"b"})
    diff = compare_results(a, b)
    assert diff.only_in_a == ["outputs/extra/", "outputs/only-a.txt"]  # a directory hides its contents
    assert diff.only_in_b == ["outputs/only-b.txt"]
    assert diff.differing == []
    summary = diff.summary()
    assert "only in a: outputs/extra/" in summary
    assert "only in b: outputs/only-b.txt" in summary
    assert summary.endswith("3 differences")


def test_exit_code_difference(tmp_path: Path) -> None:
    a = make_result(tmp_path / "a", exit_code=b"0")
    b = make_result(tmp_path / "b", exit_code=b"137\n")
    diff = compare_results(a, b)
    assert (diff.exit_code_a, diff.exit_code_b) == (0, 137)
    assert diff.exit_codes_differ
    assert [d.path for d in diff.differing] == ["exitCode"]
    assert "exit code: 0 in a, 137 in b" in diff.summary()


def test_unreadable_exit_code_is_none(tmp_path: Path) -> None:
    a = make_result(tmp_path / "a", exit_code=b"oops")
    b = make_result(tmp_path / "b")
    (b / "exitCode").unlink()
    diff = compare_results(a, b)
    assert (diff.exit_code_a, diff.exit_code_b) == (None, None)
    assert diff.only_in_a == ["exitCode"]


def test_binary_and_large_files_get_no_excerpt(tmp_path: Path) -> None:
    big_a = b"line\n" * (TEXT_DIFF_MAX_BYTES // 5 + 10)
    big_b = big_a + b"one more\n"
    a = make_result(tmp_path / "a", outputs={"img.png": b"\x89PNG\x00\x01", "log.txt": big_a})
    b = make_result(tmp_path / "b", outputs={"img.png": b"\x89PNG\x00\x02", "log.txt": big_b})
    diff = compare_results(a, b)
    by_path = {d.path: d for d in diff.differing}
    assert set(by_path) == {"outputs/img.png", "outputs/log.txt"}
    assert by_path["outputs/img.png"].excerpt is None
    assert by_path["outputs/img.png"].sha256_b == sha256(b"\x89PNG\x00\x02")
    assert by_path["outputs/log.txt"].excerpt is None
    assert (by_path["outputs/log.txt"].size_a, by_path["outputs/log.txt"].size_b) == (len(big_a), len(big_b))


def test_long_excerpts_are_cut(tmp_path: Path) -> None:
    a = make_result(tmp_path / "a", stdout="".join(f"a{i}\n" for i in range(100)).encode())
    b = make_result(tmp_path / "b", stdout="".join(f"b{i}\n" for i in range(100)).encode())
    (difference,) = compare_results(a, b).differing
    assert difference.excerpt is not None
    lines = difference.excerpt.splitlines()
    assert len(lines) == EXCERPT_MAX_LINES + 1
    assert lines[-1].startswith("... (") and lines[-1].endswith("more lines)")


def test_symlinks_and_kind_changes(tmp_path: Path) -> None:
    a = make_result(tmp_path / "a", outputs={"t1": b"1", "t2": b"2", "thing": b"file"})
    b = make_result(tmp_path / "b", outputs={"t1": b"1", "t2": b"2", "thing/inner": b"dir"})
    (a / "outputs" / "latest").symlink_to("t1")
    (b / "outputs" / "latest").symlink_to("t2")
    diff = compare_results(a, b)
    by_path = {d.path: d for d in diff.differing}
    assert by_path["outputs/latest"] == FileDifference(
        "outputs/latest", "symlink", "symlink", target_a="t1", target_b="t2"
    )
    thing = by_path["outputs/thing"]
    assert (thing.kind_a, thing.kind_b) == ("file", "dir")
    assert thing.sha256_a == sha256(b"file") and thing.sha256_b is None
    assert diff.only_in_b == ["outputs/thing/inner"]
    summary = diff.summary()
    assert "outputs/latest: link to 't1' in a, to 't2' in b" in summary
    assert "outputs/thing: a file in a, a dir in b" in summary


def test_same_size_different_content(tmp_path: Path) -> None:
    a = make_result(tmp_path / "a", outputs={"w.bin": b"\x00" * 64})
    b = make_result(tmp_path / "b", outputs={"w.bin": b"\x00" * 63 + b"\x01"})
    (difference,) = compare_results(a, b).differing
    assert difference.size_a == difference.size_b == 64
    assert difference.sha256_a != difference.sha256_b


def test_special_files_are_refused(tmp_path: Path) -> None:
    a = make_result(tmp_path / "a")
    b = make_result(tmp_path / "b", stdout=b"other")
    os.mkfifo(b / "outputs" / "pipe")
    with pytest.raises(CIDError, match="not a regular file") as info:
        compare_results(a, b)
    assert info.value.path.endswith("pipe")
