"""A content-addressed store of job results on the local file system.

:class:`ResultsStore` keeps each result directory under ``ROOT/<cid>/``, where
``<cid>`` is the result's IPFS CID (:func:`~lilypad.results.cid.directory_cid`).
Results are immutable: a CID names one content forever, so storing a result
that is already there keeps the stored copy.

How a result gets in (:meth:`ResultsStore.put`):

1. the source tree is listed without following symbolic links
   (:func:`~lilypad.results.layout.walk_result`): anything but regular files,
   directories and symbolic links is refused, and so is a tree whose files add
   up to more than ``max_result_bytes``;
2. its CID is computed; if the store already has it, that is the answer;
3. the tree is copied into a fresh temporary directory under ``ROOT``
   (``.tmp-...``): symbolic links as links (never followed), files with
   ``O_NOFOLLOW`` and the size limit enforced again while copying, names
   starting with ``.`` left out (the CID does not cover them);
4. the copy's symbolic links must all be relative and resolve inside the copy
   (:func:`~lilypad.results.layout.check_symlinks`), and the copy's CID must be
   the source's (else the source changed while it was copied);
5. the copy is moved into place with one ``os.rename``. If another writer got
   there first, the rename fails (the target is a non-empty directory), this
   copy is dropped and the CID is returned: two concurrent puts of the same
   result both succeed and one copy is kept.

Stored files are made read-only (mode 0444). :meth:`ResultsStore.get`
re-computes the CID (hidden names included, so nothing can be slipped in)
before it hands out a path. A CID given to any method must pass
:func:`~lilypad.protocol.cid.validate_cid`, so it can never name a path
outside the store.
"""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import stat
import tempfile
import time
import uuid
from pathlib import Path

from lilypad.exceptions import (
    CIDError,
    InvalidCIDError,
    ResultCIDMismatchError,
    ResultCorruptedError,
    ResultLayoutError,
    ResultNotFoundError,
    ResultTooLargeError,
    UnsafeResultError,
)
from lilypad.protocol.cid import validate_cid
from lilypad.results.cid import directory_cid
from lilypad.results.layout import check_symlinks, is_hidden, walk_result

__all__ = [
    "DEFAULT_MAX_RESULT_BYTES",
    "ResultsStore",
]

DEFAULT_MAX_RESULT_BYTES = 1 << 30
"""The default limit on the total size of a result's files: 1 GiB."""

_TEMP_PREFIX = ".tmp-"
_COPY_CHUNK = 1 << 20
_FILE_MODE = 0o444
_DIR_MODE = 0o755
_INSTALL_ATTEMPTS = 8


class ResultsStore:
    """Result directories kept by CID under ``root/<cid>/``.

    ``root`` is created if missing. ``max_result_bytes`` bounds the total size
    of the regular files of one result (symbolic links and directories count
    nothing).
    """

    def __init__(
        self, root: str | os.PathLike[str], *, max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    ) -> None:
        if max_result_bytes < 0:
            raise ValueError("max_result_bytes must not be negative")
        self.root = Path(root)
        self.max_result_bytes = max_result_bytes
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.root)!r}, max_result_bytes={self.max_result_bytes})"

    # ----------------------------------------------------------------------
    # Reading
    # ----------------------------------------------------------------------

    def path_of(self, cid: str) -> Path:
        """Where the result ``cid`` is (or would be) kept; checks only the CID text."""
        return self.root / validate_cid(cid)

    def has(self, cid: str) -> bool:
        """Whether the store holds a result ``cid`` (without verifying it)."""
        return self._exists(self.path_of(cid))

    def __contains__(self, cid: object) -> bool:
        try:
            return isinstance(cid, str) and self.has(cid)
        except InvalidCIDError:
            return False

    def get(self, cid: str, *, verify: bool = True) -> Path:
        """The directory of the stored result ``cid``.

        With ``verify`` (the default) its CID is computed again, hidden names
        included, and must be ``cid``: this reads the whole result. Raises
        :class:`~lilypad.exceptions.ResultNotFoundError` if there is no such
        result and :class:`~lilypad.exceptions.ResultCorruptedError` if its
        content has changed.
        """
        path = self.path_of(cid)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            raise ResultNotFoundError(cid) from None
        if not stat.S_ISDIR(mode):
            raise ResultCorruptedError(cid, None, "the stored entry is not a directory")
        if verify:
            try:
                actual = directory_cid(path, hidden=True)
            except CIDError as exc:
                if not self._exists(path):  # deleted meanwhile
                    raise ResultNotFoundError(cid) from None
                raise ResultCorruptedError(cid, None, exc.reason) from None
            if actual != cid:
                raise ResultCorruptedError(cid, actual)
        return path

    def list(self) -> builtins.list[str]:
        """The CIDs of the stored results, sorted."""
        cids: builtins.list[str] = []
        with os.scandir(self.root) as iterator:
            for item in iterator:
                if is_hidden(item.name) or not item.is_dir(follow_symlinks=False):
                    continue
                try:
                    cids.append(validate_cid(item.name))
                except InvalidCIDError:  # not a result: leave it alone
                    continue
        return sorted(cids)

    # ----------------------------------------------------------------------
    # Writing
    # ----------------------------------------------------------------------

    def put(self, result_dir: str | os.PathLike[str]) -> str:
        """Store the result directory ``result_dir``; return its CID.

        Raises :class:`~lilypad.exceptions.UnsafeResultError` for special
        files and symbolic links that are absolute, dangle or escape the
        result, :class:`~lilypad.exceptions.ResultTooLargeError` past
        ``max_result_bytes`` and
        :class:`~lilypad.exceptions.ResultCIDMismatchError` if the source
        changed while it was being copied. Nothing is left behind on failure.
        """
        source = Path(result_dir)
        if not source.is_dir():
            raise ResultLayoutError(str(source), "not a directory")
        total = 0
        for entry in walk_result(source):
            total += entry.size
            if total > self.max_result_bytes:
                raise ResultTooLargeError(self.max_result_bytes, "bytes", str(source))
        cid = directory_cid(source)
        target = self.root / cid
        if self._exists(target):
            return cid
        temp = Path(tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}put-", dir=self.root))
        try:
            self._copy_tree(source, temp)
            check_symlinks(temp)
            actual = directory_cid(temp, hidden=True)
            if actual != cid:
                raise ResultCIDMismatchError(cid, actual)
            os.chmod(temp, _DIR_MODE)
            self._install(temp, target)
        finally:
            if os.path.lexists(temp):
                shutil.rmtree(temp, ignore_errors=True)
        return cid

    def delete(self, cid: str, *, missing_ok: bool = False) -> bool:
        """Remove the result ``cid``; return whether it was there.

        The directory is first renamed out of the way, so readers never see a
        half-deleted result. Raises
        :class:`~lilypad.exceptions.ResultNotFoundError` if it is absent,
        unless ``missing_ok``.
        """
        path = self.path_of(cid)
        trash = self.root / f"{_TEMP_PREFIX}del-{uuid.uuid4().hex}"
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            if missing_ok:
                return False
            raise ResultNotFoundError(cid) from None
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def clean_temporary(self, *, older_than_s: float = 3600.0) -> int:
        """Remove temporary directories (``.tmp-*``) older than ``older_than_s``
        seconds, left by interrupted puts and deletes; return how many."""
        removed = 0
        cutoff = time.time() - older_than_s
        with os.scandir(self.root) as iterator:
            stale = [
                Path(item.path)
                for item in iterator
                if item.name.startswith(_TEMP_PREFIX)
                and item.stat(follow_symlinks=False).st_mtime < cutoff
            ]
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        return removed

    # ----------------------------------------------------------------------
    # Helpers
    # ----------------------------------------------------------------------

    @staticmethod
    def _exists(path: Path) -> bool:
        try:
            return stat.S_ISDIR(os.lstat(path).st_mode)
        except FileNotFoundError:
            return False

    def _install(self, temp: Path, target: Path) -> None:
        """Move ``temp`` to ``target`` unless a result is already there."""
        for _ in range(_INSTALL_ATTEMPTS):
            try:
                os.rename(temp, target)
                return
            except OSError as exc:
                # Linux reports ENOTEMPTY, other systems EEXIST, when the target
                # is a non-empty directory: another put stored the result first.
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                if self._exists(target):
                    return
                # A concurrent delete moved it away between the two calls: retry.
        raise OSError(
            errno.EEXIST, "cannot install the result: the target keeps changing", str(target)
        )

    def _copy_tree(self, source: Path, dest: Path) -> None:
        """Copy ``source`` into the existing empty directory ``dest``."""
        copied = 0
        for entry in walk_result(source):
            out = dest / entry.rel
            if entry.kind == "dir":
                os.mkdir(out, _DIR_MODE)
            elif entry.kind == "symlink":
                assert entry.target is not None
                os.symlink(entry.target, out)
            else:
                copied = self._copy_file(entry.path, out, copied)

    def _copy_file(self, source: Path, dest: Path, copied: int) -> int:
        """Copy one regular file, counting against the limit; return the new total."""
        # O_NONBLOCK: a FIFO swapped in since the listing must not block the open.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            src_fd = os.open(source, flags)
        except OSError as exc:
            raise UnsafeResultError(str(source), f"cannot open: {exc.strerror or exc}") from None
        with open(src_fd, "rb") as src:
            if not stat.S_ISREG(os.fstat(src_fd).st_mode):
                raise UnsafeResultError(str(source), "no longer a regular file")
            dst_flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            with open(os.open(dest, dst_flags, _FILE_MODE), "wb") as dst:
                while chunk := src.read(_COPY_CHUNK):
                    copied += len(chunk)
                    if copied > self.max_result_bytes:
                        raise ResultTooLargeError(self.max_result_bytes, "bytes", str(source))
                    dst.write(chunk)
        return copied
