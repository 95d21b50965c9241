"""What a job result is: its directory layout and its safe contents.

A job's result is a directory holding exactly::

    stdout      the container's standard output (a regular file)
    stderr      its standard error (a regular file)
    exitCode    its exit status as decimal text, e.g. ``0`` (a regular file)
    outputs/    the files the job wrote to its outputs volume (a directory)

and it is identified by its IPFS CID (:func:`lilypad.results.cid.directory_cid`).
Like kubo without ``--hidden``, the CID leaves out every name starting with
``.``, so throughout :mod:`lilypad.results` a result is *what its CID covers*:
hidden names are ignored when a directory is read (:func:`validate_layout`,
:func:`walk_result`), left out when one is stored or packed, and refused in an
archive.

This module also holds the rules the store and the archive share:

* :func:`walk_result` lists a tree without following symbolic links and
  refuses anything but regular files, directories and symbolic links;
* :func:`check_symlinks` accepts a symbolic link only if its target is
  relative and resolves, through any chain of links, to an existing path inside
  the tree (absolute, dangling, looping and escaping links are refused).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lilypad.exceptions import (
    ResultLayoutError,
    UnsafeResultError,
)

__all__ = [
    "EXIT_CODE",
    "EXIT_CODE_MAX_BYTES",
    "OUTPUTS",
    "RESULT_DIRS",
    "RESULT_ENTRIES",
    "RESULT_FILES",
    "STDERR",
    "STDOUT",
    "Entry",
    "EntryKind",
    "ResultView",
    "check_symlinks",
    "is_hidden",
    "parse_exit_code",
    "read_result",
    "validate_layout",
    "walk_result",
]

STDOUT = "stdout"
STDERR = "stderr"
EXIT_CODE = "exitCode"
OUTPUTS = "outputs"
RESULT_FILES: tuple[str, ...] = (STDOUT, STDERR, EXIT_CODE)
"""The regular files of a result."""
RESULT_DIRS: tuple[str, ...] = (OUTPUTS,)
"""The directories of a result."""
RESULT_ENTRIES: frozenset[str] = frozenset(RESULT_FILES + RESULT_DIRS)
"""Every top-level name of a result, and nothing else."""
EXIT_CODE_MAX_BYTES = 64
"""The largest ``exitCode`` file read (an exit status is a few digits)."""

_EXIT_CODE_RE = re.compile(r"[+-]?[0-9]{1,10}")

EntryKind = Literal["file", "dir", "symlink"]


# --------------------------------------------------------------------------
# Walking a result tree safely
# --------------------------------------------------------------------------


def is_hidden(name: str) -> bool:
    """Whether a file name is left out of a result's CID (it starts with ``.``)."""
    return name.startswith(".")


@dataclass(frozen=True)
class Entry:
    """One entry of a result tree, as listed by :func:`walk_result`.

    ``rel`` is its path relative to the tree's root with ``/`` separators,
    ``path`` its file system path, ``size`` its size in bytes for a file (0
    otherwise) and ``target`` the link text for a symbolic link.
    """

    rel: str
    path: Path
    kind: EntryKind
    size: int = 0
    target: str | None = None


def _list_dir(dir_path: Path, rel_dir: str) -> list[Entry]:
    children: list[tuple[bytes, Entry]] = []
    with os.scandir(dir_path) as iterator:
        for item in iterator:
            if is_hidden(item.name):
                continue
            try:
                key = item.name.encode("utf-8")
            except UnicodeEncodeError:
                raise UnsafeResultError(item.path, "the name is not valid UTF-8") from None
            rel = f"{rel_dir}/{item.name}" if rel_dir else item.name
            info = item.stat(follow_symlinks=False)
            path = Path(item.path)
            if stat.S_ISLNK(info.st_mode):
                entry = Entry(rel, path, "symlink", target=os.readlink(item.path))
            elif stat.S_ISDIR(info.st_mode):
                entry = Entry(rel, path, "dir")
            elif stat.S_ISREG(info.st_mode):
                entry = Entry(rel, path, "file", size=info.st_size)
            else:
                raise UnsafeResultError(item.path, "not a regular file, directory or symbolic link")
            children.append((key, entry))
    children.sort(key=lambda child: child[0])
    return [entry for _, entry in children]


def walk_result(root: str | os.PathLike[str]) -> Iterator[Entry]:
    """Every entry under ``root``, depth first, each directory just before its
    contents, siblings sorted by the UTF-8 bytes of their names (the order of
    the CID's links).

    Symbolic links are listed, never followed; names starting with ``.`` are
    skipped. Raises :class:`~lilypad.exceptions.UnsafeResultError` for
    anything that is not a regular file, a directory or a symbolic link (a
    FIFO, a socket, a device) and for names that are not valid UTF-8.
    """
    stack: list[Iterator[Entry]] = [iter(_list_dir(Path(root), ""))]
    while stack:  # an explicit stack: deep trees cannot overflow Python's
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        yield entry
        if entry.kind == "dir":
            stack.append(iter(_list_dir(entry.path, entry.rel)))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def check_symlinks(root: str | os.PathLike[str]) -> int:
    """Check every symbolic link under ``root`` (hidden names skipped); return
    how many there are.

    A link is accepted only if its target is relative and it resolves, through
    any chain of links, to an existing path inside ``root`` that is part of the
    result (no component starting with ``.``): the kernel must be able to
    follow it (``os.stat``), and :func:`os.path.realpath` in strict mode must
    land inside ``os.path.realpath(root)``. Raises
    :class:`~lilypad.exceptions.UnsafeResultError` for absolute, dangling,
    looping and escaping links.
    """
    real_root = os.path.realpath(root, strict=True)
    count = 0
    for entry in walk_result(root):
        if entry.kind != "symlink":
            continue
        count += 1
        target = entry.target or ""
        if not target:
            raise UnsafeResultError(str(entry.path), "empty symbolic link")
        if os.path.isabs(target):
            raise UnsafeResultError(
                str(entry.path), f"symbolic link to an absolute path {target!r}"
            )
        try:
            os.stat(entry.path)  # the kernel's own resolution (at most 40 links deep)
            resolved = os.path.realpath(entry.path, strict=True)
        except (OSError, RecursionError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UnsafeResultError(
                str(entry.path), f"symbolic link {target!r} does not resolve: {reason}"
            ) from None
        if not _inside(resolved, real_root):
            raise UnsafeResultError(
                str(entry.path), f"symbolic link {target!r} points outside the result"
            )
        parts = os.path.relpath(resolved, real_root).split(os.sep)
        if any(is_hidden(part) for part in parts if part != "."):
            raise UnsafeResultError(
                str(entry.path), f"symbolic link {target!r} points to a hidden name"
            )
    return count


# --------------------------------------------------------------------------
# The layout of a result
# --------------------------------------------------------------------------


def parse_exit_code(text: str | bytes) -> int:
    """The exit status in an ``exitCode`` file's text (surrounding white space
    allowed). Raises :class:`ValueError` if it is not a decimal integer."""
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    stripped = text.strip()
    if not _EXIT_CODE_RE.fullmatch(stripped):
        raise ValueError(f"not an integer: {stripped[:20]!r}")
    return int(stripped)


def _read_exit_code(path: Path) -> int:
    file = path / EXIT_CODE
    with open(file, "rb") as stream:
        data = stream.read(EXIT_CODE_MAX_BYTES + 1)
    if len(data) > EXIT_CODE_MAX_BYTES:
        raise ResultLayoutError(str(file), f"{EXIT_CODE} is over {EXIT_CODE_MAX_BYTES} bytes")
    try:
        return parse_exit_code(data)
    except ValueError as exc:
        raise ResultLayoutError(str(file), f"{EXIT_CODE} must hold an integer: {exc}") from None


def validate_layout(path: str | os.PathLike[str]) -> None:
    """Check that ``path`` is a result directory: exactly the regular files
    ``stdout``, ``stderr`` and ``exitCode`` (an integer as text) and the
    directory ``outputs`` (names starting with ``.`` are not part of a result
    and are ignored). None of the four may be a symbolic link.

    Raises :class:`~lilypad.exceptions.ResultLayoutError` saying what is wrong.
    """
    root = Path(path)
    try:
        info = os.lstat(root)
    except OSError as exc:
        raise ResultLayoutError(str(root), exc.strerror or str(exc)) from None
    if not stat.S_ISDIR(info.st_mode):
        raise ResultLayoutError(str(root), "not a directory")
    names = {name for name in os.listdir(root) if not is_hidden(name)}
    missing = sorted(RESULT_ENTRIES - names)
    extra = sorted(names - RESULT_ENTRIES)
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing))
    if extra:
        problems.append("unexpected " + ", ".join(repr(name) for name in extra))
    if problems:
        raise ResultLayoutError(
            str(root),
            "; ".join(problems)
            + f" (a result holds exactly {', '.join(RESULT_FILES)} and {OUTPUTS}/)",
        )
    for name in RESULT_FILES:
        mode = os.lstat(root / name).st_mode
        if not stat.S_ISREG(mode):
            raise ResultLayoutError(str(root / name), f"{name} must be a regular file")
    if not stat.S_ISDIR(os.lstat(root / OUTPUTS).st_mode):
        raise ResultLayoutError(str(root / OUTPUTS), f"{OUTPUTS} must be a directory")
    _read_exit_code(root)


@dataclass(frozen=True)
class ResultView:
    """A result read back: its standard output and error (UTF-8, undecodable
    bytes replaced), its exit status and the paths of its output files
    (relative to ``outputs/``, ``/``-separated, sorted; regular files and
    symbolic links, not directories)."""

    stdout: str
    stderr: str
    exit_code: int
    outputs: list[str]


def read_result(path: str | os.PathLike[str]) -> ResultView:
    """Read the result directory at ``path`` after :func:`validate_layout`."""
    root = Path(path)
    validate_layout(root)
    outputs = sorted(entry.rel for entry in walk_result(root / OUTPUTS) if entry.kind != "dir")
    return ResultView(
        stdout=(root / STDOUT).read_bytes().decode("utf-8", errors="replace"),
        stderr=(root / STDERR).read_bytes().decode("utf-8", errors="replace"),
        exit_code=_read_exit_code(root),
        outputs=outputs,
    )
