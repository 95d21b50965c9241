"""Deterministic packing and safe unpacking of result archives (lilypad.results.archive).

Hostile archives are built here with ``tarfile``; gzip bombs are built as
concatenated gzip members (each a compressed MiB of zeros), so a GiB of
decompressed data costs about a MB of memory and nothing on disk.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path
from typing import TypedDict

import pytest

from lilypad.exceptions import (
    InvalidCIDError,
    ResultArchiveError,
    ResultCIDMismatchError,
    ResultTooLargeError,
    UnsafeResultError,
)
from lilypad.results.archive import HEADER_ALLOWANCE, MAX_DEPTH, pack, pack_to, unpack
from lilypad.results.cid import directory_cid


class Limits(TypedDict):
    max_bytes: int
    max_files: int


LIMITS: Limits = {"max_bytes": 1 << 20, "max_files": 100}
Member = tuple[tarfile.TarInfo, bytes | None]


def make_result(root: Path, outputs: dict[str, bytes] | None = None, stdout: bytes = b"out\n") -> Path:
    root.mkdir(parents=True)
    (root / "stdout").write_bytes(stdout)
    (root / "stderr").write_bytes(b"err\n")
    (root / "exitCode").write_bytes(b"0")
    (root / "outputs").mkdir()
    for rel, data in (outputs or {}).items():
        path = root / "outputs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


# --------------------------------------------------------------------------
# Building (hostile) archives
# --------------------------------------------------------------------------


def regular(name: str, data: bytes = b"x") -> Member:
    return tarfile.TarInfo(name), data


def directory(name: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info, None


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def special(name: str, kind: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return info, None


BASE: list[Member] = [
    regular("exitCode", b"0"), directory("outputs"), regular("stderr", b""), regular("stdout", b"hi\n"),
]


def targz(members: list[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is None:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def gzip_bomb(header: tarfile.TarInfo, zero_mib: int) -> bytes:
    """A tar.gz whose first header is ``header``, followed by ``zero_mib`` MiB of zeros."""
    zeros = gzip.compress(b"\0" * (1 << 20), mtime=0)
    return gzip.compress(header.tobuf(format=tarfile.GNU_FORMAT), mtime=0) + zeros * zero_mib


class CountingReader(io.BytesIO):
    """A BytesIO that counts how many bytes were read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.consumed += len(data)
        return data


def assert_nothing_left(dest: Path) -> None:
    assert not dest.exists()
    assert [name for name in os.listdir(dest.parent) if name.startswith(".unpack-")] == []


# --------------------------------------------------------------------------
# Deterministic packing
# --------------------------------------------------------------------------


def test_pack_is_deterministic(tmp_path: Path) -> None:
    result = make_result(tmp_path / "r", {"a.txt": b"a", "dir/b.bin": os.urandom(300_000)})
    assert pack(result) == pack(result)


def test_identical_trees_pack_to_identical_bytes(tmp_path: Path) -> None:
    outputs = {"z.txt": b"z" * 10, "a/b/c.txt": b"c", "m.bin": bytes(range(256)) * 100}
    first = make_result(tmp_path / "one", outputs)
    (first / "outputs" / "link").symlink_to("a/b/c.txt")
    (first / "outputs" / "empty").mkdir()
    # The second tree: created in another order, other mtimes, modes and junk.
    second = tmp_path / "two"
    (second / "outputs" / "empty").mkdir(parents=True)
    (second / "outputs" / "link").symlink_to("a/b/c.txt")
    for rel, data in reversed(list(outputs.items())):
        path = second / "outputs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, 0o700)
    for name, data in (("stdout", b"out\n"), ("exitCode", b"0"), ("stderr", b"err\n")):
        (second / name).write_bytes(data)
    (second / ".DS_Store").write_bytes(b"not part of the result")
    for path in [*second.rglob("*"), second]:
        if not path.is_symlink():
            os.utime(path, (1_000_000, 1_000_000))
    assert directory_cid(first) == directory_cid(second)
    assert pack(first) == pack(second)


def test_packed_headers_are_normalised(tmp_path: Path) -> None:
    result = make_result(tmp_path / "r", {"b/x": b"x", "a": b"a"})
    (result / "outputs" / "l").symlink_to("a")
    os.chmod(result / "outputs" / "a", 0o755)
    data = pack(result)
    assert data[:4] == b"\x1f\x8b\x08\x00"  # gzip, deflate, no flags (no file name)
    assert data[4:8] == b"\0\0\0\0"  # gzip mtime 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "exitCode", "outputs", "outputs/a", "outputs/b", "outputs/b/x", "outputs/l", "stderr", "stdout",
    ]
    for member in members:
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (0, 0, 0, "", "")
        expected = 0o755 if member.isdir() else 0o777 if member.issym() else 0o644
        assert member.mode == expected


def test_pack_leaves_out_hidden_names(tmp_path: Path) -> None:
    result = make_result(tmp_path / "r", {"keep": b"k"})
    (result / "outputs" / ".hidden").write_bytes(b"h")
    with tarfile.open(fileobj=io.BytesIO(pack(result)), mode="r:gz") as tar:
        names = tar.getnames()
    assert "outputs/keep" in names
    assert not any(".hidden" in name for name in names)


def test_pack_to_file_object(tmp_path: Path) -> None:
    result = make_result(tmp_path / "r", {"x": b"1"})
    with open(tmp_path / "r.tar.gz", "wb") as out:
        pack_to(result, out)
    assert (tmp_path / "r.tar.gz").read_bytes() == pack(result)


def test_pack_refuses_escaping_symlinks_and_special_files(tmp_path: Path) -> None:
    result = make_result(tmp_path / "r")
    (result / "outputs" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeResultError, match="absolute"):
        pack(result)
    (result / "outputs" / "passwd").unlink()
    (result / "outputs" / ".secret").write_text("left out of the archive")
    (result / "outputs" / "secret").symlink_to(".secret")
    with pytest.raises(UnsafeResultError, match="hidden name"):
        pack(result)
    (result / "outputs" / "secret").unlink()
    os.mkfifo(result / "outputs" / "fifo")
    with pytest.raises(UnsafeResultError, match="not a regular file"):
        pack(result)


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    long_name = "ünïcødé-" + "n" * 150 + ".txt"
    result = make_result(tmp_path / "r", {"a.txt": b"a", "deep/er/b": os.urandom(600_000), long_name: b"u"})
    (result / "outputs" / "link").symlink_to("deep/er/b")
    (result / "outputs" / "dirlink").symlink_to("deep")
    (result / "outputs" / "chain").symlink_to("dirlink/er")
    (result / "outputs" / "empty").mkdir()
    cid = directory_cid(result)
    dest = tmp_path / "out" / "result"
    assert unpack(pack(result), dest, expected_cid=cid, max_bytes=1 << 20, max_files=20) == cid
    assert directory_cid(dest) == cid
    assert os.readlink(dest / "outputs" / "link") == "deep/er/b"
    assert (dest / "outputs" / long_name).read_bytes() == b"u"
    assert (dest / "outputs" / "empty").is_dir()
    assert_nothing_left(tmp_path / "out" / "other")


def test_unpack_from_a_file_and_without_expected_cid(tmp_path: Path) -> None:
    result = make_result(tmp_path / "r", {"x": b"1"})
    (tmp_path / "r.tar.gz").write_bytes(pack(result))
    with open(tmp_path / "r.tar.gz", "rb") as stream:
        assert unpack(stream, tmp_path / "dest", **LIMITS) == directory_cid(result)


def test_unpack_into_an_empty_existing_directory(tmp_path: Path) -> None:
    result = make_result(tmp_path / "r")
    (tmp_path / "dest").mkdir()
    assert unpack(pack(result), tmp_path / "dest", **LIMITS) == directory_cid(result)


def test_unpack_archive_made_by_tar_with_dot_prefix(tmp_path: Path) -> None:
    result = make_result(tmp_path / "r", {"sub/f": b"f"})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(result, arcname=".")
    names = tarfile.open(fileobj=io.BytesIO(buffer.getvalue())).getnames()
    assert "./stdout" in names
    cid = unpack(buffer.getvalue(), tmp_path / "dest", expected_cid=directory_cid(result), **LIMITS)
    assert cid == directory_cid(result)


def test_explicit_directory_after_its_contents(tmp_path: Path) -> None:
    members = [*BASE, regular("outputs/a/f", b"f"), directory("outputs/a")]
    unpack(targz(members), tmp_path / "dest", **LIMITS)
    assert (tmp_path / "dest" / "outputs" / "a" / "f").read_bytes() == b"f"


# --------------------------------------------------------------------------
# CID checks
# --------------------------------------------------------------------------


def test_cid_mismatch(tmp_path: Path) -> None:
    result = make_result(tmp_path / "r", {"x": b"1"})
    other = make_result(tmp_path / "o", {"x": b"2"})
    dest = tmp_path / "dest"
    with pytest.raises(ResultCIDMismatchError) as info:
        unpack(pack(result), dest, expected_cid=directory_cid(other), **LIMITS)
    assert info.value.expected == directory_cid(other)
    assert info.value.actual == directory_cid(result)
    assert_nothing_left(dest)


def test_invalid_expected_cid(tmp_path: Path) -> None:
    result = make_result(tmp_path / "r")
    with pytest.raises(InvalidCIDError):
        unpack(pack(result), tmp_path / "dest", expected_cid="../x", **LIMITS)
    assert_nothing_left(tmp_path / "dest")


# --------------------------------------------------------------------------
# Hostile archives
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hostile", "reason"),
    [
        ([regular("/tmp/lilypad-absolute-escape")], "absolute path"),
        ([regular("../escape")], r"'\.\.' in the path"),
        ([regular("outputs/../../escape")], r"'\.\.' in the path"),
        ([link("outputs/passwd", "/etc/passwd")], "absolute path"),
        ([link("outputs/up", "../../../../../../etc/passwd")], "outside|does not resolve"),
        ([link("outputs/up", "../..")], "outside"),
        # Each link looks harmless alone (data_filter checks them lexically);
        # followed together they leave the result.
        ([link("outputs/d", ".."), link("outputs/x", "d/..")], "points outside the result"),
        ([link("outputs/a", "b"), link("outputs/b", "c"), link("outputs/c", "../..")], "outside"),
        ([link("outputs/a", "b/.."), link("outputs/b", "..")], "points outside the result"),
        ([link("outputs/dangling", "nowhere")], "does not resolve"),
        ([link("outputs/l1", "l2"), link("outputs/l2", "l1")], "does not resolve"),
        # A link and then a file written through it.
        ([link("outputs/d", "."), regular("outputs/d/f")], "lies under the symlink"),
        ([link("outputs/etc", "../outputs"), regular("outputs/etc/passwd")], "lies under the symlink"),
        ([regular("outputs/d/f"), link("outputs/d", ".")], "duplicate"),
        ([regular("outputs/f"), regular("outputs/f/g")], "lies under the file"),
        ([regular("outputs/f"), regular("outputs/f")], "duplicate"),
        ([link("outputs/h", "stdout", tarfile.LNKTYPE)], "hard links"),
        ([link("outputs/h", "/etc/passwd", tarfile.LNKTYPE)], "hard links"),
        ([special("outputs/null", tarfile.CHRTYPE)], "device"),
        ([special("outputs/disk", tarfile.BLKTYPE)], "device"),
        ([special("outputs/pipe", tarfile.FIFOTYPE)], "FIFO"),
        ([special("outputs/odd", b"Z")], "unsupported entry type"),
        ([regular("outputs/.env", b"SECRET=1")], "starting with '.'"),
        ([regular("/".join(["d"] * (MAX_DEPTH + 1)))], f"more than {MAX_DEPTH}"),
        ([regular("stdout/x")], "lies under the file|duplicate"),
    ],
)
def test_hostile_archives_are_refused(tmp_path: Path, hostile: list[Member], reason: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    dest = work / "dest"
    with pytest.raises(UnsafeResultError, match=reason):
        unpack(targz([*BASE, *hostile]), dest, **LIMITS)
    assert_nothing_left(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written beside it
    assert not Path("/tmp/lilypad-absolute-escape").exists()


def test_names_that_are_not_utf8_are_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT, encoding="latin-1") as tar:
        info = tarfile.TarInfo("outputs/caf\u00e9")  # written as the single byte 0xE9
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(UnsafeResultError, match="not valid UTF-8"):
        unpack(buffer.getvalue(), tmp_path / "dest", **LIMITS)
    assert_nothing_left(tmp_path / "dest")


def test_declared_size_bomb_is_stopped_at_the_header(tmp_path: Path) -> None:
    header = tarfile.TarInfo("outputs/huge")
    header.size = 1 << 30  # 1 GiB of zeros really follows, in about 1 MB of gzip
    archive = gzip_bomb(header, zero_mib=1024)
    assert len(archive) < 2 << 20
    reader = CountingReader(archive)
    with pytest.raises(ResultTooLargeError) as info:
        unpack(reader, tmp_path / "dest", max_bytes=1 << 20, max_files=10)
    assert info.value.limit == 1 << 20 and info.value.unit == "bytes"
    assert reader.consumed < len(archive) // 4  # stopped long before the end
    assert_nothing_left(tmp_path / "dest")


@pytest.mark.parametrize("kind", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE])
def test_huge_metadata_header_bomb_is_stopped_while_streaming(tmp_path: Path, kind: bytes) -> None:
    # tarfile reads long-name and pax headers whole into memory: the metered
    # stream must cut them off after HEADER_ALLOWANCE bytes.
    header = tarfile.TarInfo("././@LongLink")
    header.type = kind
    header.size = 1 << 30
    archive = gzip_bomb(header, zero_mib=1024)
    reader = CountingReader(archive)
    with pytest.raises(ResultTooLargeError) as info:
        unpack(reader, tmp_path / "dest", max_bytes=1 << 30, max_files=10)
    assert info.value.limit == HEADER_ALLOWANCE
    assert reader.consumed < len(archive) // 4
    assert_nothing_left(tmp_path / "dest")


def test_total_size_limit_across_files(tmp_path: Path) -> None:
    members = [*BASE, *(regular(f"outputs/f{i}", b"x" * 300_000) for i in range(5))]
    with pytest.raises(ResultTooLargeError) as info:
        unpack(targz(members), tmp_path / "dest", max_bytes=1_000_000, max_files=100)
    assert info.value.unit == "bytes"
    assert_nothing_left(tmp_path / "dest")


def test_size_limit_is_inclusive(tmp_path: Path) -> None:
    members = [regular("stdout", b"x" * 1000), regular("stderr", b""), regular("exitCode", b"")]
    cid = unpack(targz(members), tmp_path / "dest", max_bytes=1000, max_files=3)
    assert cid == directory_cid(tmp_path / "dest")


def test_too_many_files(tmp_path: Path) -> None:
    members = [*BASE, *(regular(f"outputs/f{i:04}", b"") for i in range(200))]
    with pytest.raises(ResultTooLargeError) as info:
        unpack(targz(members), tmp_path / "dest", max_bytes=1 << 20, max_files=100)
    assert (info.value.limit, info.value.unit) == (100, "files")
    assert_nothing_left(tmp_path / "dest")


def test_implied_directories_count_as_files(tmp_path: Path) -> None:
    members = [regular("a/b/c/d/e/f")]
    with pytest.raises(ResultTooLargeError, match="files"):
        unpack(targz(members), tmp_path / "dest", max_bytes=10, max_files=5)
    assert unpack(targz(members), tmp_path / "ok", max_bytes=10, max_files=6)


@pytest.mark.parametrize(
    "archive",
    [b"", b"not gzip at all", gzip.compress(b"not a tar archive" * 100), b"\x1f\x8b\x08\x00garbage"],
)
def test_unreadable_archives(tmp_path: Path, archive: bytes) -> None:
    with pytest.raises(ResultArchiveError):
        unpack(archive, tmp_path / "dest", **LIMITS)
    assert_nothing_left(tmp_path / "dest")


def test_truncated_archive(tmp_path: Path) -> None:
    result = make_result(tmp_path / "r", {"big": os.urandom(200_000)})
    data = pack(result)
    with pytest.raises(ResultArchiveError):
        unpack(data[: len(data) // 2], tmp_path / "dest", **LIMITS)
    assert_nothing_left(tmp_path / "dest")


def test_existing_destination_is_not_touched(tmp_path: Path) -> None:
    result = make_result(tmp_path / "r")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep").write_text("mine")
    with pytest.raises(ResultArchiveError, match="already exists"):
        unpack(pack(result), dest, **LIMITS)
    assert os.listdir(dest) == ["keep"]


def test_negative_limits(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        unpack(b"", tmp_path / "dest", max_bytes=-1, max_files=1)
