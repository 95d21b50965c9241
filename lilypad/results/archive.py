"""Result directories as deterministic ``.tar.gz`` archives, and their safe extraction.

Packing (:func:`pack`, :func:`pack_to`)
    The archive holds exactly what the result's CID covers: every entry under
    the directory except names starting with ``.``, depth first, siblings in the
    byte order of their UTF-8 names (the CID's order), each directory before its
    contents. Every header is normalised: POSIX pax format, ``mtime`` 0, uid and
    gid 0, empty user and group names, mode 0644 for files, 0755 for
    directories and 0777 for symbolic links; the gzip header has ``mtime`` 0 and
    no file name. The bytes therefore depend only on the result's content (its
    CID), not on when, where or by whom it was written (for a given zlib build).
    A directory with a special file or a symbolic link that escapes is refused.

Unpacking (:func:`unpack`)
    The archive is untrusted (it comes from a resource provider). It is read as
    a stream, never seeked, and checked entry by entry *before* anything of the
    entry is written:

    * only regular files, directories and symbolic links: hard links, devices,
      FIFOs, sparse files and unknown types are refused;
    * names must be relative, with no ``..`` component, no component starting
      with ``.`` (not covered by the CID), valid UTF-8, at most
      :data:`MAX_DEPTH` components, and unique; no entry may lie under a file
      or a symbolic link of the archive;
    * **symbolic links**: the target must be relative and, once the whole
      archive is extracted, resolve (through any chain of links) to an existing
      path inside the result (:func:`~lilypad.results.layout.check_symlinks`).
      Links are created only after every file and directory has been written,
      so no write can ever go through a link;
    * ``max_files`` bounds the number of entries (files, directories, links,
      implied parent directories) and ``max_bytes`` the total size of files,
      checked against each header before its data is read. The decompressed
      stream is itself metered: it may hold only the declared file data plus
      :data:`HEADER_ALLOWANCE` bytes of headers per entry, so a gzip bomb (or a
      huge pax or long-name header) is stopped after at most that much
      decompression, with nothing of it written;
    * ``tarfile.data_filter`` is applied to every member as a second line of
      defence (it also refuses a link whose target leaves the tree *lexically*,
      e.g. ``x -> d/../..``, even where ``d`` is a link that would bring it
      back inside).

    Everything is extracted into a temporary directory beside ``dest``; its CID
    is computed and compared with ``expected_cid``; only then is it renamed to
    ``dest``. On any error the temporary directory is removed and ``dest`` is
    untouched.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar, cast

from lilypad.exceptions import (
    CIDError,
    ResultArchiveError,
    ResultCIDMismatchError,
    ResultLayoutError,
    ResultTooLargeError,
    UnsafeResultError,
)
from lilypad.protocol.cid import validate_cid
from lilypad.results.cid import directory_cid
from lilypad.results.layout import check_symlinks, is_hidden, walk_result

__all__ = [
    "COMPRESS_LEVEL",
    "HEADER_ALLOWANCE",
    "MAX_DEPTH",
    "pack",
    "pack_to",
    "unpack",
]

COMPRESS_LEVEL = 6
"""The gzip level :func:`pack` uses (fixed, so the bytes are reproducible)."""
HEADER_ALLOWANCE = 64 * 1024
"""Bytes of tar headers (ustar, pax, GNU long names) allowed per archive entry."""
MAX_DEPTH = 128
"""The most path components an archive entry may have."""

_BLOCK = tarfile.BLOCKSIZE
_SLACK = 2 * tarfile.RECORDSIZE  # tarfile reads ahead up to one record
_CHUNK = 1 << 20
_FILE_MODE, _DIR_MODE, _LINK_MODE = 0o644, 0o755, 0o777
_T = TypeVar("_T")


# --------------------------------------------------------------------------
# Packing
# --------------------------------------------------------------------------


def _tarinfo(name: str, kind: str, size: int = 0, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, _DIR_MODE
    elif kind == "symlink":
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, _LINK_MODE, target
    else:
        info.type, info.mode, info.size = tarfile.REGTYPE, _FILE_MODE, size
    return info


def pack_to(result_dir: str | os.PathLike[str], fileobj: BinaryIO) -> None:
    """Write the deterministic ``.tar.gz`` of the result directory ``result_dir``
    to ``fileobj`` (see the module documentation).

    Raises :class:`~lilypad.exceptions.UnsafeResultError` for special files
    and for symbolic links that are absolute, dangle or escape the result.
    """
    root = Path(result_dir)
    if not root.is_dir():
        raise ResultLayoutError(str(root), "not a directory")
    check_symlinks(root)
    nofollow = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    with gzip.GzipFile(
        filename="", mode="wb", fileobj=fileobj, compresslevel=COMPRESS_LEVEL, mtime=0
    ) as compressed, tarfile.open(
        fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8"
    ) as tar:
        for entry in walk_result(root):
            if entry.kind != "file":
                tar.addfile(_tarinfo(entry.rel, entry.kind, target=entry.target or ""))
                continue
            with open(os.open(entry.path, os.O_RDONLY | nofollow), "rb") as stream:
                info = os.fstat(stream.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise UnsafeResultError(str(entry.path), "no longer a regular file")
                tar.addfile(_tarinfo(entry.rel, "file", size=info.st_size), stream)


def pack(result_dir: str | os.PathLike[str]) -> bytes:
    """The deterministic ``.tar.gz`` of the result directory ``result_dir``, in memory."""
    buffer = io.BytesIO()
    pack_to(result_dir, buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------
# Unpacking
# --------------------------------------------------------------------------


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _MeteredReader:
    """A read-only stream that fails once more than ``limit`` bytes were read."""

    def __init__(self, raw: _Readable) -> None:
        self.raw = raw
        self.count = 0
        self.limit = HEADER_ALLOWANCE + _SLACK

    def allow(self, data_bytes: int) -> None:
        """Allow the next ``data_bytes`` of entry data and one entry's headers."""
        self.limit = self.count + data_bytes + HEADER_ALLOWANCE + _SLACK

    def read(self, size: int | None = -1) -> bytes:
        room = self.limit - self.count
        if size is None or size < 0 or size > room + 1:
            size = room + 1
        data = self.raw.read(size)
        self.count += len(data)
        if self.count > self.limit:
            raise ResultTooLargeError(
                HEADER_ALLOWANCE, "bytes of tar headers (or undeclared data) for one entry",
                "archive",
            )
        return data


def _guard(action: Callable[[], _T]) -> _T:
    """Run a read of the archive, turning format errors into ResultArchiveError."""
    try:
        return action()
    except (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError) as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise ResultArchiveError(detail) from None


def _member_parts(member: tarfile.TarInfo) -> tuple[str, ...]:
    """The checked path components of a member's name (``()`` for the root)."""
    name = member.name
    if "\x00" in name:
        raise UnsafeResultError(name, "NUL byte in the name")
    if name.startswith("/") or os.path.isabs(name):
        raise UnsafeResultError(name, "absolute path")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeResultError(name, "the name is not valid UTF-8") from None
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise UnsafeResultError(name, "'..' in the path")
    if any(is_hidden(part) for part in parts):
        raise UnsafeResultError(name, "a name starting with '.' (not covered by the CID)")
    if len(parts) > MAX_DEPTH:
        raise UnsafeResultError(name, f"more than {MAX_DEPTH} path components")
    return parts


def _member_kind(member: tarfile.TarInfo) -> str:
    if member.islnk():
        raise UnsafeResultError(member.name, "hard links are not allowed")
    if member.issym():
        target = member.linkname
        if not target or "\x00" in target:
            raise UnsafeResultError(member.name, "empty or invalid symbolic link target")
        if target.startswith("/") or os.path.isabs(target):
            raise UnsafeResultError(member.name, f"symbolic link to an absolute path {target!r}")
        return "symlink"
    if member.isdir():
        return "dir"
    if member.isreg() and not member.issparse():
        if member.size < 0:
            raise UnsafeResultError(member.name, "negative size")
        return "file"
    if member.issparse():
        raise UnsafeResultError(member.name, "sparse files are not allowed")
    if member.ischr() or member.isblk():
        raise UnsafeResultError(member.name, "device nodes are not allowed")
    if member.isfifo():
        raise UnsafeResultError(member.name, "FIFOs are not allowed")
    raise UnsafeResultError(member.name, f"unsupported entry type {member.type!r}")


class _Extraction:
    """The state of one :func:`unpack`: what was declared and created so far."""

    def __init__(self, temp: Path, reader: _MeteredReader, max_bytes: int, max_files: int,
                 root: str | None = None) -> None:
        self.temp = temp
        self.root = root
        self.reader = reader
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.kinds: dict[tuple[str, ...], str] = {}
        self.explicit: set[tuple[str, ...]] = set()
        self.links: list[tuple[tuple[str, ...], str]] = []
        self.data_bytes = 0

    def declare(self, member: tarfile.TarInfo, parts: tuple[str, ...], kind: str) -> None:
        """Record an entry, refusing duplicates, paths under non-directories and limits."""
        for depth in range(1, len(parts)):
            parent = parts[:depth]
            known = self.kinds.setdefault(parent, "dir")
            if known != "dir":
                raise UnsafeResultError(member.name, f"lies under the {known} {'/'.join(parent)!r}")
        existing = self.kinds.get(parts)
        if existing is not None and not (existing == kind == "dir" and parts not in self.explicit):
            raise UnsafeResultError(member.name, "duplicate entry")
        self.kinds[parts] = kind
        self.explicit.add(parts)
        if len(self.kinds) > self.max_files:
            raise ResultTooLargeError(self.max_files, "files", "archive")
        if kind == "file":
            self.data_bytes += member.size
            if self.data_bytes > self.max_bytes:
                raise ResultTooLargeError(self.max_bytes, "bytes", "archive")

    def write_file(self, path: Path, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        source = _guard(lambda: tar.extractfile(member))
        if source is None:
            raise ResultArchiveError(f"no data for {member.name!r}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        remaining = member.size
        with open(os.open(path, flags, _FILE_MODE), "wb") as out:
            while remaining > 0:
                chunk = _guard(partial(source.read, min(_CHUNK, remaining)))
                if not chunk:
                    raise ResultArchiveError(f"truncated data for {member.name!r}")
                remaining -= len(chunk)
                out.write(chunk)

    def extract(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        parts = _member_parts(member)
        if self.root is not None:  # kubo's tar: every entry under the directory named by the CID
            if not parts or parts[0] != self.root:
                raise UnsafeResultError(member.name, f"not under the archive's root {self.root!r}")
            parts = parts[1:]
        kind = _member_kind(member)
        if not parts:  # the archive's root, e.g. "./"
            if kind != "dir":
                raise UnsafeResultError(member.name, "the root of the archive must be a directory")
            self.reader.allow(0)
            return
        self.declare(member, parts, kind)
        try:
            tarfile.data_filter(member, str(self.temp))
        except tarfile.FilterError as exc:
            raise UnsafeResultError(member.name, str(exc)) from None
        # Checked: let the reader go through this entry's data and the next headers.
        self.reader.allow(-(-member.size // _BLOCK) * _BLOCK if kind == "file" else 0)
        path = self.temp.joinpath(*parts)
        if kind == "dir":
            os.makedirs(path, _DIR_MODE, exist_ok=True)
            return
        os.makedirs(path.parent, _DIR_MODE, exist_ok=True)
        if kind == "symlink":
            self.links.append((parts, member.linkname))  # created once all data is written
        else:
            self.write_file(path, member, tar)

    def create_links(self) -> None:
        for parts, target in self.links:
            os.symlink(target, self.temp.joinpath(*parts))
        try:
            check_symlinks(self.temp)
        except UnsafeResultError as exc:
            name = exc.path
            if name.startswith(str(self.temp)):  # report the member's name, not the temp path
                name = os.path.relpath(name, self.temp)
            raise UnsafeResultError(name, exc.reason) from None


def _check_dest(dest: Path) -> None:
    try:
        mode = os.lstat(dest).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode) or any(os.scandir(dest)):
        raise ResultArchiveError(f"the destination {str(dest)!r} already exists")


def unpack(
    archive: bytes | BinaryIO,
    dest: str | os.PathLike[str],
    *,
    expected_cid: str | None = None,
    max_bytes: int,
    max_files: int,
    tar_root: str | None = None,
) -> str:
    """Extract the ``.tar.gz`` ``archive`` safely to the new directory ``dest``;
    return the CID of what was extracted.

    With ``tar_root`` the archive is instead a plain (uncompressed) tar whose
    entries all lie under the directory ``tar_root``, as kubo's ``/api/v0/get``
    and an IPFS gateway's ``?format=tar`` serve a CID (``tar_root`` is the CID);
    that first component is stripped and every other rule applies unchanged.

    ``dest`` must not exist (or be an empty directory); its parent is created
    if needed. ``max_bytes`` bounds the total size of the files and
    ``max_files`` the number of entries. With ``expected_cid``, the extracted
    tree must have that CID or nothing is kept. See the module documentation
    for what is refused.

    Raises :class:`~lilypad.exceptions.UnsafeResultError`,
    :class:`~lilypad.exceptions.ResultTooLargeError`,
    :class:`~lilypad.exceptions.ResultCIDMismatchError` and
    :class:`~lilypad.exceptions.ResultArchiveError` (not gzip, corrupt tar,
    ``dest`` exists).
    """
    if max_bytes < 0 or max_files < 0:
        raise ValueError("max_bytes and max_files must not be negative")
    if expected_cid is not None:
        validate_cid(expected_cid)
    dest_path = Path(dest)
    _check_dest(dest_path)
    dest_path.parent.mkdir(parents=True, exist_ok=True)
    stream: BinaryIO = io.BytesIO(archive) if isinstance(archive, (bytes, bytearray)) else archive
    temp = Path(tempfile.mkdtemp(prefix=f".unpack-{dest_path.name}-", dir=dest_path.parent))
    try:
        with contextlib.nullcontext(stream) if tar_root is not None else gzip.GzipFile(
                fileobj=stream, mode="rb") as decompressed:
            reader = _MeteredReader(decompressed)
            state = _Extraction(temp, reader, max_bytes, max_files, tar_root)
            fileobj = cast(BinaryIO, reader)  # tarfile's stream mode only calls read()
            tar = _guard(lambda: tarfile.open(fileobj=fileobj, mode="r|", encoding="utf-8"))  # noqa: SIM115 - `with tar` below
            with tar:
                while (member := _guard(tar.next)) is not None:
                    state.extract(member, tar)
        state.create_links()
        try:
            cid = directory_cid(temp)
        except CIDError as exc:
            raise ResultArchiveError(f"the extracted tree has no CID: {exc.reason}") from None
        if expected_cid is not None and cid != expected_cid:
            raise ResultCIDMismatchError(expected_cid, cid)
        os.chmod(temp, _DIR_MODE)
        try:
            os.rename(temp, dest_path)
        except OSError as exc:
            raise ResultArchiveError(
                f"cannot move the result to {str(dest_path)!r}: {exc.strerror}"
            ) from None
    finally:
        if os.path.lexists(temp):
            shutil.rmtree(temp, ignore_errors=True)
    return cid
