"""The result layout and the safe tree walk (lilypad.results.layout); CID text validation (lilypad.protocol.cid)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lilypad.exceptions import (
    InvalidCIDError,
    ResultLayoutError,
    ResultsError,
    UnsafeResultError,
)
from lilypad.protocol.cid import validate_cid
from lilypad.results.cid import bytes_cid, directory_cid
from lilypad.results.layout import (
    EXIT_CODE,
    OUTPUTS,
    RESULT_ENTRIES,
    STDERR,
    STDOUT,
    ResultView,
    check_symlinks,
    parse_exit_code,
    read_result,
    validate_layout,
    walk_result,
)


def make_result(
    root: Path, *, stdout: bytes = b"out\n", stderr: bytes = b"", exit_code: bytes = b"0",
    outputs: dict[str, bytes] | None = None,
) -> Path:
    root.mkdir(parents=True)
    (root / STDOUT).write_bytes(stdout)
    (root / STDERR).write_bytes(stderr)
    (root / EXIT_CODE).write_bytes(exit_code)
    (root / OUTPUTS).mkdir()
    for rel, data in (outputs or {}).items():
        path = root / OUTPUTS / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


# --------------------------------------------------------------------------
# validate_layout / read_result
# --------------------------------------------------------------------------


def test_layout_constants() -> None:
    assert RESULT_ENTRIES == {"stdout", "stderr", "exitCode", "outputs"}


def test_valid_layout_and_read_result(tmp_path: Path) -> None:
    root = make_result(
        tmp_path / "r", stdout=b"hello\n", stderr=b"warn\xff\n", exit_code=b"3\n",
        outputs={"b.txt": b"b", "a/z.bin": b"z", "a/y.bin": b"y"},
    )
    validate_layout(root)
    view = read_result(root)
    assert view == ResultView(
        stdout="hello\n", stderr="warn\ufffd\n", exit_code=3,
        outputs=["a/y.bin", "a/z.bin", "b.txt"],
    )


def test_hidden_names_are_not_part_of_a_result(tmp_path: Path) -> None:
    root = make_result(tmp_path / "r", outputs={"x": b"1"})
    (root / ".DS_Store").write_bytes(b"junk")
    (root / OUTPUTS / ".cache").mkdir()
    (root / OUTPUTS / ".cache" / "f").write_bytes(b"junk")
    validate_layout(root)
    assert read_result(root).outputs == ["x"]


@pytest.mark.parametrize("missing", sorted(RESULT_ENTRIES))
def test_missing_entry(tmp_path: Path, missing: str) -> None:
    root = make_result(tmp_path / "r")
    target = root / missing
    if target.is_dir():
        target.rmdir()
    else:
        target.unlink()
    with pytest.raises(ResultLayoutError) as info:
        validate_layout(root)
    assert f"missing {missing}" in info.value.reason
    assert info.value.path == str(root)


def test_unexpected_entry(tmp_path: Path) -> None:
    root = make_result(tmp_path / "r")
    (root / "extra.txt").write_text("x")
    with pytest.raises(ResultLayoutError, match="unexpected 'extra.txt'"):
        validate_layout(root)


@pytest.mark.parametrize("text", [b"", b"zero", b"1.5", b"0x1", b"1 2", b"99999999999"])
def test_exit_code_must_be_an_integer(tmp_path: Path, text: bytes) -> None:
    root = make_result(tmp_path / "r", exit_code=text)
    with pytest.raises(ResultLayoutError, match="exitCode must hold an integer") as info:
        validate_layout(root)
    assert info.value.path == str(root / EXIT_CODE)


def test_exit_code_file_size_is_bounded(tmp_path: Path) -> None:
    root = make_result(tmp_path / "r", exit_code=b"0" + b" " * 1000)
    with pytest.raises(ResultLayoutError, match="over 64 bytes"):
        validate_layout(root)


@pytest.mark.parametrize(("text", "expected"), [("0", 0), (" 1\n", 1), ("-1", -1), (b"+255\r\n", 255)])
def test_parse_exit_code(text: str | bytes, expected: int) -> None:
    assert parse_exit_code(text) == expected


def test_outputs_must_be_a_directory(tmp_path: Path) -> None:
    root = make_result(tmp_path / "r")
    (root / OUTPUTS).rmdir()
    (root / OUTPUTS).write_text("not a dir")
    with pytest.raises(ResultLayoutError, match="outputs must be a directory"):
        validate_layout(root)


def test_stdout_must_not_be_a_symlink(tmp_path: Path) -> None:
    root = make_result(tmp_path / "r")
    (root / STDOUT).unlink()
    (root / STDOUT).symlink_to(STDERR)
    with pytest.raises(ResultLayoutError, match="stdout must be a regular file"):
        validate_layout(root)


def test_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ResultLayoutError, match="not a directory"):
        validate_layout(tmp_path / "file")
    with pytest.raises(ResultLayoutError):
        validate_layout(tmp_path / "absent")
    with pytest.raises(ResultLayoutError):
        read_result(tmp_path / "absent")


# --------------------------------------------------------------------------
# validate_cid
# --------------------------------------------------------------------------


def test_validate_cid_accepts_directory_cids(tmp_path: Path) -> None:
    cid = directory_cid(make_result(tmp_path / "r"))
    assert validate_cid(cid) == cid


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "expected a CIDv1"),
        ("../../etc/passwd", "expected a CIDv1"),
        ("bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354/..", "expected a CIDv1"),
        ("BAFYBEICZSSCDSBS7FFQZ55ASQDF3SMV6KLCW3GOFSZVWLYARCI47BGF354", "expected a CIDv1"),
        ("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn", "expected a CIDv1"),
        ("bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf35", "expected a CIDv1"),
        ("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "codec raw"),
    ],
)
def test_validate_cid_rejects(text: str, reason: str) -> None:
    with pytest.raises(InvalidCIDError, match=reason) as info:
        validate_cid(text)
    assert info.value.text == text
    assert isinstance(info.value, ResultsError)


def test_validate_cid_rejects_a_raw_leaf() -> None:
    # A raw-codec CID of the same length as a directory CID cannot name a result.
    raw = bytes_cid(b"x" * 10)
    assert raw.startswith("bafkrei")
    with pytest.raises(InvalidCIDError, match="expected dag-pb"):
        validate_cid(raw)


def test_validate_cid_rejects_non_strings() -> None:
    with pytest.raises(InvalidCIDError, match="not a string"):
        validate_cid(b"bafy")  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# walk_result / check_symlinks
# --------------------------------------------------------------------------


def test_walk_result_order_and_kinds(tmp_path: Path) -> None:
    root = tmp_path / "t"
    (root / "b" / "c").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"12345")
    (root / "b" / "c" / "d").write_bytes(b"")
    (root / "b" / "link").symlink_to("c/d")
    (root / ".hidden").write_bytes(b"x")
    entries = list(walk_result(root))
    assert [(e.rel, e.kind) for e in entries] == [
        ("a.txt", "file"), ("b", "dir"), ("b/c", "dir"), ("b/c/d", "file"), ("b/link", "symlink"),
    ]
    assert entries[0].size == 5
    assert entries[4].target == "c/d"


def test_walk_result_refuses_special_files(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    os.mkfifo(root / "fifo")
    with pytest.raises(UnsafeResultError, match="not a regular file") as info:
        list(walk_result(root))
    assert info.value.path.endswith("fifo")


def test_check_symlinks_accepts_links_inside(tmp_path: Path) -> None:
    root = make_result(tmp_path / "r", outputs={"sub/data": b"x"})
    (root / OUTPUTS / "to_file").symlink_to("sub/data")
    (root / OUTPUTS / "to_dir").symlink_to("sub")
    (root / OUTPUTS / "chain").symlink_to("to_dir/data")
    (root / OUTPUTS / "to_root").symlink_to("..")
    assert check_symlinks(root) == 4


@pytest.mark.parametrize(
    ("links", "reason"),
    [
        ({"abs": "/etc/passwd"}, "absolute path"),
        ({"up": "../../etc/passwd"}, "does not resolve|outside"),
        ({"up": "../.."}, "outside"),
        ({"dangling": "nothing-here"}, "does not resolve"),
        ({"loop1": "loop2", "loop2": "loop1"}, "does not resolve"),
        # each link alone looks inside; followed together they leave the result
        ({"d": "..", "x": "d/.."}, "outside"),
        ({"h": ".hidden-dir"}, "hidden name"),
    ],
)
def test_check_symlinks_refuses(tmp_path: Path, links: dict[str, str], reason: str) -> None:
    root = make_result(tmp_path / "r")
    (root / OUTPUTS / ".hidden-dir").mkdir()
    for name, target in links.items():
        (root / OUTPUTS / name).symlink_to(target)
    with pytest.raises(UnsafeResultError, match=reason):
        check_symlinks(root)
