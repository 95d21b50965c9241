"""Archives in and out of the solver: the one signed upload stream both uploads use, and the download.

A result (``PUT /deals/{id}/result``) and a job offer's input files
(``PUT /job_offers/{id}/inputs``) are uploaded the same way, through
:func:`signed_upload`: an EIP-191 signature over the target's id and the
body's SHA-256 in :data:`~lilypad.protocol.auth.SIGNATURE_HEADER` and
:data:`~lilypad.protocol.auth.SHA256_HEADER` (checked, with the caller's
rule for who may upload, before the body is read); the body is size-limited
while it is read, spooled and hashed. :func:`unpack_into_store` then
unpacks it (with the caller's safe unpacker) into the store by CID, and
:func:`archive_response` serves a stored directory back as a ``.tar.gz``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from lilypad.exceptions import ResultCorruptedError, ResultNotFoundError
from lilypad.protocol.auth import CID_HEADER, SHA256_HEADER, SIGNATURE_HEADER
from lilypad.results.archive import pack_to
from lilypad.results.store import ResultsStore
from lilypad.solver.api.errors import ApiError

__all__ = ["Upload", "archive_response", "signed_upload", "unpack_into_store"]

_SPOOL_BYTES = 8 << 20
_CHUNK = 1 << 20
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Upload:
    """A received upload: its ``body`` (a spooled file at offset 0), ``size`` in bytes and signed ``digest``."""

    body: IO[bytes]
    size: int
    digest: str


def _spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # closed by its users


def _iter_file(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := handle.read(_CHUNK):
            yield chunk
    finally:
        handle.close()


@contextlib.asynccontextmanager
async def signed_upload(request: Request, *, over: str, authorize: Callable[[str, str], object],
                        limit: int) -> AsyncIterator[Upload]:
    """Receive a signed upload: the one path of both archive uploads.

    The request must carry an EIP-191 signature (:data:`SIGNATURE_HEADER`)
    over ``over`` (the deal or offer id) and the body's SHA-256
    (:data:`SHA256_HEADER`), else 401. ``authorize(digest, signature)`` then
    decides whether the signer may upload (it raises otherwise), all before
    the body is read. A declared ``Content-Length`` over ``limit`` is refused
    at once, and the body is streamed into a spooled file while it is counted
    (413 past ``limit``) and hashed (400 unless it is the signed digest). The
    file is closed when the block ends.
    """
    signature = request.headers.get(SIGNATURE_HEADER)
    digest = request.headers.get(SHA256_HEADER, "").strip().lower()
    if not signature or not _SHA256_RE.fullmatch(digest):
        raise ApiError(401, "unauthenticated",
                       f"sign the upload: {SIGNATURE_HEADER} (EIP-191) over the {over} and {SHA256_HEADER}")
    authorize(digest, signature)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"the archive is {declared} bytes; the limit is {limit}")
    spool = _spool()
    try:
        hasher, size = hashlib.sha256(), 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "too_large", f"the archive is over the limit of {limit} bytes")
            hasher.update(chunk)
            spool.write(chunk)
        if hasher.hexdigest() != digest:
            raise ApiError(400, "digest_mismatch", f"the body's SHA-256 is not the signed {digest}")
        spool.seek(0)
        yield Upload(spool, size, digest)
    finally:
        spool.close()


def unpack_into_store(archive: IO[bytes], store: ResultsStore, name: str,
                      unpack_to: Callable[[BinaryIO, Path], object]) -> str:
    """Unpack an uploaded archive with ``unpack_to(archive, dest)`` into a scratch
    directory ``name`` under ``store``'s root, put it into ``store``; its CID.
    The scratch directory is removed whatever happens."""
    work = Path(tempfile.mkdtemp(prefix=".tmp-upload-", dir=store.root))
    try:
        dest = work / name
        unpack_to(cast(BinaryIO, archive), dest)
        return store.put(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _packed(store: ResultsStore, cid: str) -> tuple[IO[bytes], int]:
    try:
        path = store.get(cid)
    except (ResultNotFoundError, ResultCorruptedError) as exc:
        raise ApiError(500, "result_unavailable", str(exc)) from None
    spool = _spool()
    try:
        pack_to(path, spool)  # type: ignore[arg-type]
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool, size


async def archive_response(store: ResultsStore, cid: str) -> StreamingResponse:
    """Stream the stored directory ``cid`` as a ``.tar.gz``, its CID in :data:`CID_HEADER`."""
    handle, size = await run_in_threadpool(_packed, store, cid)
    return StreamingResponse(_iter_file(handle), media_type="application/gzip",
                             headers={CID_HEADER: cid, "Content-Length": str(size)})
