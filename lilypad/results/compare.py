"""Compare two job results, for ``lilypad module check`` (is a module reproducible?).

Two runs of a deterministic module give results with the same CID. When they
do not, :func:`compare_results` says where they differ: entries only in one of
them, entries whose content differs (size and sha256 of each side, the link
text of symbolic links, and for small UTF-8 text files an excerpt of a unified
diff), and the exit codes. Like the CID, the comparison ignores names starting
with ``.`` and never follows symbolic links.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from lilypad.results.cid import directory_cid
from lilypad.results.layout import (
    EXIT_CODE,
    EXIT_CODE_MAX_BYTES,
    Entry,
    EntryKind,
    parse_exit_code,
    walk_result,
)

__all__ = [
    "EXCERPT_MAX_LINES",
    "TEXT_DIFF_MAX_BYTES",
    "FileDifference",
    "ResultDiff",
    "compare_results",
]

TEXT_DIFF_MAX_BYTES = 64 * 1024
"""Files up to this size (on both sides) get a unified diff excerpt if they are text."""
EXCERPT_MAX_LINES = 20
"""The most lines of a unified diff excerpt."""

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileDifference:
    """An entry present in both results with different content.

    ``path`` is relative to the result's root (``/``-separated). For each side:
    ``kind_*`` (``file``, ``dir`` or ``symlink``), ``size_*`` and ``sha256_*``
    (files only, else ``None``) and ``target_*`` (symbolic links only).
    ``excerpt`` is the start of a unified diff when both sides are small UTF-8
    text files, else ``None``.
    """

    path: str
    kind_a: EntryKind
    kind_b: EntryKind
    size_a: int | None = None
    size_b: int | None = None
    sha256_a: str | None = None
    sha256_b: str | None = None
    target_a: str | None = None
    target_b: str | None = None
    excerpt: str | None = None

    def describe(self) -> str:
        """One line: what differs."""
        if self.kind_a != self.kind_b:
            return f"{self.path}: a {self.kind_a} in a, a {self.kind_b} in b"
        if self.kind_a == "symlink":
            return f"{self.path}: link to {self.target_a!r} in a, to {self.target_b!r} in b"
        return (
            f"{self.path}: {self.size_a} bytes, sha256 {(self.sha256_a or '')[:12]} in a; "
            f"{self.size_b} bytes, sha256 {(self.sha256_b or '')[:12]} in b"
        )


@dataclass(frozen=True)
class ResultDiff:
    """How two results ``a`` and ``b`` compare.

    ``reproducible`` is whether their CIDs are equal (then every list is
    empty). ``only_in_a``/``only_in_b`` list entries present on one side only
    (directories end with ``/`` and hide their contents); ``differing`` the
    entries whose content differs; ``exit_code_a``/``exit_code_b`` are the exit
    codes (``None`` where ``exitCode`` is missing or not an integer).
    """

    a: Path
    b: Path
    cid_a: str
    cid_b: str
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)
    differing: list[FileDifference] = field(default_factory=list)
    exit_code_a: int | None = None
    exit_code_b: int | None = None

    @property
    def reproducible(self) -> bool:
        """Whether both results have the same CID (the same content)."""
        return self.cid_a == self.cid_b

    @property
    def exit_codes_differ(self) -> bool:
        """Whether the exit codes differ."""
        return self.exit_code_a != self.exit_code_b

    def summary(self) -> str:
        """A human-readable report, several lines."""
        if self.reproducible:
            return f"reproducible: both results have CID {self.cid_a}"
        lines = [
            "NOT reproducible: the results differ",
            f"  a: {self.a} (CID {self.cid_a})",
            f"  b: {self.b} (CID {self.cid_b})",
        ]
        if self.exit_codes_differ:
            lines.append(f"  exit code: {self.exit_code_a} in a, {self.exit_code_b} in b")
        lines += [f"  only in a: {path}" for path in self.only_in_a]
        lines += [f"  only in b: {path}" for path in self.only_in_b]
        for difference in self.differing:
            lines.append(f"  differs: {difference.describe()}")
            if difference.excerpt:
                lines += [f"    {line}" for line in difference.excerpt.splitlines()]
        count = len(self.only_in_a) + len(self.only_in_b) + len(self.differing)
        lines.append(f"{count} difference{'s' if count != 1 else ''}")
        return "\n".join(lines)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _read_exit_code(root: Path) -> int | None:
    try:
        with open(root / EXIT_CODE, "rb") as stream:
            data = stream.read(EXIT_CODE_MAX_BYTES + 1)
        if len(data) > EXIT_CODE_MAX_BYTES:
            return None
        return parse_exit_code(data)
    except (OSError, ValueError):
        return None


def _text(path: Path, size: int) -> list[str] | None:
    if size > TEXT_DIFF_MAX_BYTES:
        return None
    data = path.read_bytes()
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None


def _excerpt(rel: str, a: Entry, b: Entry) -> str | None:
    lines_a, lines_b = _text(a.path, a.size), _text(b.path, b.size)
    if lines_a is None or lines_b is None:
        return None
    diff = list(difflib.unified_diff(
        lines_a, lines_b, fromfile=f"a/{rel}", tofile=f"b/{rel}", n=2, lineterm=""
    ))
    if len(diff) > EXCERPT_MAX_LINES:
        more = len(diff) - EXCERPT_MAX_LINES
        diff = [*diff[:EXCERPT_MAX_LINES], f"... ({more} more line{'s' if more != 1 else ''})"]
    return "\n".join(diff) if diff else None


def _compare_entries(rel: str, a: Entry, b: Entry) -> FileDifference | None:
    if a.kind != b.kind:
        return FileDifference(
            rel, a.kind, b.kind,
            size_a=a.size if a.kind == "file" else None,
            size_b=b.size if b.kind == "file" else None,
            sha256_a=_sha256(a.path) if a.kind == "file" else None,
            sha256_b=_sha256(b.path) if b.kind == "file" else None,
            target_a=a.target, target_b=b.target,
        )
    if a.kind == "symlink":
        if a.target == b.target:
            return None
        return FileDifference(rel, a.kind, b.kind, target_a=a.target, target_b=b.target)
    if a.kind == "dir":
        return None
    hash_a, hash_b = _sha256(a.path), _sha256(b.path)
    if a.size == b.size and hash_a == hash_b:
        return None
    return FileDifference(
        rel, a.kind, b.kind, size_a=a.size, size_b=b.size, sha256_a=hash_a, sha256_b=hash_b,
        excerpt=_excerpt(rel, a, b),
    )


def _only(entries: dict[str, Entry], other: dict[str, Entry]) -> list[str]:
    """Entries missing from ``other``, each directory standing for its contents."""
    missing = [rel for rel in entries if rel not in other]
    missing_dirs = {rel for rel in missing if entries[rel].kind == "dir"}
    shown = []
    for rel in missing:
        parents = rel.split("/")[:-1]
        if any("/".join(parents[:depth]) in missing_dirs for depth in range(1, len(parents) + 1)):
            continue
        shown.append(rel + "/" if rel in missing_dirs else rel)
    return shown


def compare_results(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> ResultDiff:
    """Compare the result directories ``a`` and ``b`` (see :class:`ResultDiff`).

    Raises :class:`~lilypad.exceptions.CIDError` if either holds something
    that is not a regular file, a directory or a symbolic link (or is not a
    directory).
    """
    path_a, path_b = Path(a), Path(b)
    cid_a, cid_b = directory_cid(path_a), directory_cid(path_b)
    exit_a, exit_b = _read_exit_code(path_a), _read_exit_code(path_b)
    if cid_a == cid_b:
        return ResultDiff(path_a, path_b, cid_a, cid_b, exit_code_a=exit_a, exit_code_b=exit_b)
    entries_a = {entry.rel: entry for entry in walk_result(path_a)}
    entries_b = {entry.rel: entry for entry in walk_result(path_b)}
    differing = []
    for rel, entry_a in entries_a.items():
        entry_b = entries_b.get(rel)
        if entry_b is not None and (difference := _compare_entries(rel, entry_a, entry_b)):
            differing.append(difference)
    return ResultDiff(
        path_a, path_b, cid_a, cid_b,
        only_in_a=_only(entries_a, entries_b),
        only_in_b=_only(entries_b, entries_a),
        differing=differing,
        exit_code_a=exit_a,
        exit_code_b=exit_b,
    )
