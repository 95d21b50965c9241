"""Input files of a job (``lilypad run --inputs-path DIR``): limits and checks.

A job's input files are a directory, mounted read-only at ``/inputs`` in the
job's container. It travels like a result: a deterministic ``.tar.gz``
(:func:`lilypad.results.archive.pack`), named by its UnixFS CID
(:func:`lilypad.results.cid.directory_cid`), which the job offer carries in
``inputs_cid`` - so it is signed by the job creator, and whoever runs the job
(provider, mediator) verifies what it downloads against it.

Input trees are stricter than results (:func:`check_input_tree`): regular
files and directories only (no symbolic links), no hidden names (the CID would
not cover them), each file at most :data:`MAX_INPUT_FILE_BYTES` (the
original's 10 MB), at most ``max_total_bytes`` and ``max_files`` in all. The
same checks run on the job creator's machine before the upload, in the solver
on the upload, and in the provider and mediator after the download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lilypad.exceptions import InputFilesError, UnsafeResultError
from lilypad.results.archive import unpack
from lilypad.results.cid import directory_cid
from lilypad.results.layout import walk_result

__all__ = [
    "DEFAULT_MAX_INPUT_FILES",
    "DEFAULT_MAX_INPUTS_BYTES",
    "MAX_INPUT_FILE_BYTES",
    "InputLimits",
    "check_input_tree",
    "inputs_cid",
    "unpack_inputs",
]

#: The original caps each input file at 10 MB.
MAX_INPUT_FILE_BYTES = 10 * 1024 * 1024
#: The default cap on all of one job's input files together.
DEFAULT_MAX_INPUTS_BYTES = 100 * 1024 * 1024
#: The default cap on the number of entries (files and directories) of one job's inputs.
DEFAULT_MAX_INPUT_FILES = 1000
#: Slack allowed on an upload's archive over ``max_total_bytes`` (tar headers, gzip framing).
ARCHIVE_OVERHEAD = 1 << 20


@dataclass(frozen=True)
class InputLimits:
    """How much one job's input files may be."""

    max_file_bytes: int = MAX_INPUT_FILE_BYTES
    max_total_bytes: int = DEFAULT_MAX_INPUTS_BYTES
    max_files: int = DEFAULT_MAX_INPUT_FILES

    @property
    def max_archive_bytes(self) -> int:
        """The largest upload (packed) accepted for these limits."""
        return self.max_total_bytes + ARCHIVE_OVERHEAD


def _size(n: int) -> str:
    return f"{n >> 20} MB" if n and n % (1 << 20) == 0 else f"{n} bytes"


def check_input_tree(root: str | os.PathLike[str], limits: InputLimits = InputLimits()) -> tuple[int, int]:
    """Check the input directory ``root``; ``(entries, total bytes)``.

    Raises :class:`~lilypad.exceptions.InputFilesError` for a missing
    directory, a symbolic link, a special file, a hidden name or a file or
    total over ``limits``.
    """
    path = Path(root)
    if not path.is_dir() or path.is_symlink():
        raise InputFilesError(path, "not a directory")
    hidden = sorted(p.name for p in path.rglob(".*"))
    if hidden:
        raise InputFilesError(path, f"hidden names are not sent (the CID does not cover them): {hidden[:5]}")
    count = total = 0
    try:
        for entry in walk_result(path):
            count += 1
            if entry.kind == "symlink":
                raise InputFilesError(path, f"{entry.rel} is a symbolic link; input files must be regular files")
            if entry.kind == "file":
                if entry.size > limits.max_file_bytes:
                    raise InputFilesError(path, f"{entry.rel} is {entry.size} bytes; each input file is capped at "
                                                f"{_size(limits.max_file_bytes)}")
                total += entry.size
            if count > limits.max_files:
                raise InputFilesError(path, f"more than {limits.max_files} files and directories")
            if total > limits.max_total_bytes:
                raise InputFilesError(path, f"the input files are over {_size(limits.max_total_bytes)} in all")
    except UnsafeResultError as exc:
        raise InputFilesError(path, exc.reason) from None
    return count, total


def inputs_cid(root: str | os.PathLike[str], limits: InputLimits = InputLimits()) -> str:
    """The CID of the input directory ``root`` after :func:`check_input_tree`."""
    check_input_tree(root, limits)
    return directory_cid(root)


def unpack_inputs(archive: bytes | BinaryIO, dest: str | os.PathLike[str], *, expected_cid: str | None,
                  limits: InputLimits = InputLimits()) -> str:
    """Unpack an (untrusted) inputs archive into the new directory ``dest``
    safely (:func:`lilypad.results.archive.unpack`: no ``..``, no escaping
    links, size-metered, the CID checked when ``expected_cid`` is given) and
    check it as an input tree; its CID. On a refused tree ``dest`` is removed."""
    import shutil

    cid = unpack(archive, dest, expected_cid=expected_cid, max_bytes=limits.max_total_bytes,
                 max_files=limits.max_files)
    try:
        check_input_tree(dest, limits)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return cid
