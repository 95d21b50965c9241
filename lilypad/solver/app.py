"""The solver's HTTP API (docs/solver-api.md) over a :class:`~lilypad.solver.service.SolverCore`.

:func:`create_app` builds the FastAPI application. Everything stateful is in
the core; this module only translates HTTP:

* errors are JSON ``{"error": CODE, "detail": MESSAGE}``: 400 for a refused
  offer (bad signature, replayed nonce, stale or future clock, malformed
  body), 403 for a request signed by the wrong key, 404 for an unknown offer
  or deal, 409 for a state conflict, 413 for an oversize upload;
* ``DELETE`` of an offer takes ``{"created_at", "signature"}``, the author's
  EIP-712 ``CancelOffer`` signature (:func:`~lilypad.solver.service.sign_cancel`);
* ``PUT /deals/{id}/result`` takes the ``.tar.gz`` of the result directory
  (:func:`lilypad.results.archive.pack`), authenticated by the provider's
  EIP-191 signature over ``(deal id, SHA-256 of the body)`` in the
  ``X-Lilypad-Signature`` and ``X-Lilypad-Content-SHA256`` headers (checked
  before the body is read); the body is size-limited while it is read,
  unpacked with :func:`lilypad.results.archive.unpack` (which refuses hostile
  archives), checked to be a job result and stored by CID;
* ``GET /deals/{id}/result`` serves the packed result only while its CID
  equals ``onchain_result(deal_id)``, the CID recorded on-chain (409 otherwise);
* ``PUT /job_offers/{id}/inputs`` takes the ``.tar.gz`` of a job offer's input
  files, authenticated like a result upload but by the job creator's signature
  (:func:`~lilypad.solver.auth.inputs_upload_message`), size-limited
  (:class:`~lilypad.solver.inputs.InputLimits`), unpacked safely, checked to
  have the offer's signed ``inputs_cid`` and stored by CID; the offer is
  matched only from then on. ``GET /job_offers/{id}/inputs`` serves them;
* ``GET /events`` is a server-sent-event stream of ``deal`` and ``offer`` events
  (JSON data, increasing ids); a client reconnecting with ``Last-Event-ID``
  (or ``?last_event_id=``) first gets the recent events after that id;
* a background task runs :meth:`SolverCore.tick` (expiry, then a matching
  round) every ``match_interval`` seconds while the app runs (its lifespan).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from eth_utils import is_address
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from lilypad.exceptions import (
    CIDError,
    DealNotFoundError,
    InputFilesError,
    InputsClosedError,
    InputsNotFoundError,
    LilypadError,
    OfferError,
    OfferExpiredError,
    OfferFromFutureError,
    OfferKindError,
    OfferNotFoundError,
    OfferReplayError,
    OfferSignatureError,
    OfferStateError,
    OnChainResultMismatchError,
    ResultArchiveError,
    ResultCIDMismatchError,
    ResultCorruptedError,
    ResultGoneError,
    ResultLayoutError,
    ResultNotFoundError,
    ResultNotOnChainError,
    ResultNotUploadedError,
    ResultTooLargeError,
    UnsafeResultError,
    UploadSignerError,
)
from lilypad.results.archive import pack_to, unpack
from lilypad.results.layout import validate_layout
from lilypad.results.store import ResultsStore
from lilypad.solver.service import (
    CID_HEADER,
    SHA256_HEADER,
    SIGNATURE_HEADER,
    SolverCore,
    deal_view,
    offer_view,
    parse_state,
)
from lilypad.solver.guards import JSONBodyLimit, install_http_error_handler
from lilypad.solver.inputs import InputLimits, unpack_inputs
from lilypad.solver.rules import check_inputs_uploader, check_result_uploader
from lilypad.solver.signing import SignedOffer
from lilypad.solver.store import OfferKind, OfferRecord

__all__ = [
    "API_PREFIX",
    "ApiError",
    "CancelBody",
    "DEFAULT_MATCH_INTERVAL",
    "DEFAULT_MAX_RESULT_FILES",
    "Upload",
    "archive_response",
    "create_app",
    "signed_upload",
    "unpack_into_store",
]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
DEFAULT_MATCH_INTERVAL = 0.2
DEFAULT_MAX_RESULT_FILES = 10_000
_SPOOL_BYTES = 8 << 20
_CHUNK = 1 << 20
_SHA256_RE = re.compile(r"[0-9a-f]{64}")

#: Offer errors: the most specific first.
_ERRORS: list[tuple[type[LilypadError], int, str]] = [
    (OfferSignatureError, 400, "bad_signature"),
    (OfferReplayError, 400, "replayed_nonce"),
    (OfferExpiredError, 400, "expired"),
    (OfferFromFutureError, 400, "from_future"),
    (OfferError, 400, "offer_refused"),
    (OfferKindError, 400, "wrong_kind"),
    (UploadSignerError, 403, "forbidden"),
    (OfferNotFoundError, 404, "offer_not_found"),
    (DealNotFoundError, 404, "deal_not_found"),
    (InputsNotFoundError, 404, "no_inputs"),
    (ResultNotUploadedError, 404, "no_result"),
    (OfferStateError, 409, "offer_state"),
    (InputsClosedError, 409, "offer_state"),
    (ResultNotOnChainError, 409, "not_on_chain"),
    (ResultCIDMismatchError, 409, "result_cid_mismatch"),
    (OnChainResultMismatchError, 409, "result_cid_mismatch"),
    (ResultGoneError, 410, "result_gone"),
]


class ApiError(Exception):
    """An HTTP error answered as ``{"error": code, "detail": detail}``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


class CancelBody(BaseModel):
    """A signed cancel request (see :func:`lilypad.solver.service.sign_cancel`)."""

    created_at: int = Field(ge=0, lt=2**64)
    signature: str = Field(min_length=2, max_length=200)


def _error(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.detail)

    @app.exception_handler(LilypadError)
    async def lilypad_error(_: Request, exc: LilypadError) -> JSONResponse:
        for cls, status, code in _ERRORS:
            if isinstance(exc, cls):
                return _error(status, code, str(exc))
        log.exception("unexpected error", exc_info=exc)
        return _error(500, "internal", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        summary = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
        return _error(400, "invalid_request", summary or "invalid request", errors=errors)


def _spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 - closed by its users


def _iter_file(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := handle.read(_CHUNK):
            yield chunk
    finally:
        handle.close()


@dataclass(frozen=True)
class Upload:
    """A received upload: its ``body`` (a spooled file at offset 0), ``size`` in bytes and signed ``digest``."""

    body: IO[bytes]
    size: int
    digest: str


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


def create_app(
    core: SolverCore,
    *,
    results_store: ResultsStore,
    onchain_result: Callable[[str], str | None],
    max_result_bytes: int,
    domain: dict[str, Any],
    head_block: Callable[[], int | None] | None = None,
    match_interval: float = DEFAULT_MATCH_INTERVAL,
    max_result_files: int = DEFAULT_MAX_RESULT_FILES,
    background: bool = True,
    require_result_layout: bool = True,
    sse_ping_s: int = 15,
    solver_address: str | None = None,
    inputs_store: ResultsStore | None = None,
    input_limits: InputLimits = InputLimits(),
) -> FastAPI:
    """The solver's FastAPI app (see the module docstring).

    ``onchain_result(deal_id)`` gives the result CID recorded on-chain for a
    deal (``None`` if none); ``max_result_bytes`` bounds an uploaded archive
    (the unpacked result is bounded by ``results_store.max_result_bytes``
    and ``max_result_files``); ``domain`` is the EIP-712 domain served at
    ``/domain``; ``head_block()`` the chain's head for ``/health``;
    ``solver_address`` the solver's own address, reported by ``/health`` as ``solver``;
    ``inputs_store`` where job offers' input files are kept by CID (``None``:
    no input files), ``input_limits`` their limits.
    ``background=False`` leaves ticking to the caller (tests).
    """
    if max_result_bytes < 1:
        raise ValueError("max_result_bytes must be positive")
    expected = core.domain.as_eip712()
    if (domain.get("chainId"), str(domain.get("verifyingContract")).lower()) != (
        expected["chainId"], expected["verifyingContract"].lower()
    ):
        raise ValueError(f"the domain {domain} is not the one the core verifies offers with ({expected})")

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_rounds()) if background else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            core.bus.close()

    async def _rounds() -> None:
        while True:
            try:
                await run_in_threadpool(core.tick)
                for cid in await run_in_threadpool(core.purge_results):
                    results_store.delete(cid, missing_ok=True)
                    log.info("result %s deleted: its deal ended more than the download timeout ago", cid)
            except Exception:  # keep matching whatever one round hit
                log.exception("solver round failed")
            await asyncio.sleep(match_interval)

    app = FastAPI(title="lilypad solver", version="1", lifespan=lifespan)
    app.state.core = core
    app.state.results_store = results_store
    _install_error_handlers(app)
    install_http_error_handler(app)  # after: it covers what those leave to the framework
    app.add_middleware(JSONBodyLimit)
    p = API_PREFIX

    # Discovery -------------------------------------------------------------
    @app.get(f"{p}/health")
    async def health() -> dict[str, Any]:
        block = None
        if head_block is not None:
            try:
                block = await run_in_threadpool(head_block)
            except Exception as exc:  # report, do not fail the health check
                log.warning("head_block failed: %s", exc)
        return {"status": "ok", "chain_id": domain.get("chainId"), "controller": domain.get("verifyingContract"),
                "head_block": block, "solver": solver_address, "open_offers": dict(core.counts())}

    @app.get(f"{p}/domain")
    def get_domain() -> dict[str, Any]:
        return domain

    # Offers ----------------------------------------------------------------
    def _post(kind: OfferKind, signed: SignedOffer) -> JSONResponse:
        record = core.accept_offer(signed, kind)
        return JSONResponse({"id": record.id, "state": record.state}, status_code=201)

    def _cancel(kind: OfferKind, offer_id: str, body: CancelBody) -> dict[str, Any]:
        try:
            record = core.cancel_offer(kind, offer_id, created_at=body.created_at, signature=body.signature)
        except OfferSignatureError as exc:
            raise ApiError(403, "forbidden", str(exc)) from None
        return offer_view(record)

    @app.post(f"{p}/resource_offers", status_code=201)
    def post_resource_offer(signed: SignedOffer) -> JSONResponse:
        return _post("resource", signed)

    @app.get(f"{p}/resource_offers")
    def list_resource_offers() -> dict[str, Any]:
        return {"offers": [offer_view(r) for r in core.open_offers("resource")]}

    @app.get(f"{p}/resource_offers/{{offer_id}}")
    def get_resource_offer(offer_id: str) -> dict[str, Any]:
        return offer_view(core.offer("resource", offer_id))

    @app.delete(f"{p}/resource_offers/{{offer_id}}")
    def cancel_resource_offer(offer_id: str, body: CancelBody) -> dict[str, Any]:
        return _cancel("resource", offer_id, body)

    @app.post(f"{p}/job_offers", status_code=201)
    def post_job_offer(signed: SignedOffer) -> JSONResponse:
        return _post("job", signed)

    @app.get(f"{p}/job_offers/{{offer_id}}")
    def get_job_offer(offer_id: str) -> dict[str, Any]:
        return offer_view(core.offer("job", offer_id))

    @app.delete(f"{p}/job_offers/{{offer_id}}")
    def cancel_job_offer(offer_id: str, body: CancelBody) -> dict[str, Any]:
        return _cancel("job", offer_id, body)

    # Deals -----------------------------------------------------------------
    @app.get(f"{p}/deals")
    def list_deals(party: str | None = Query(None, description="an address taking part in any role"),
                   state: str | None = Query(None, description="AgreementState names, comma-separated")
                   ) -> dict[str, Any]:
        if party is not None and not is_address(party):
            raise ApiError(400, "invalid_request", f"party {party!r} is not an address")
        states = None
        if state:
            try:
                states = [parse_state(s) for s in state.split(",") if s.strip()]
            except ValueError as exc:
                raise ApiError(400, "invalid_request", str(exc)) from None
        return {"deals": [deal_view(r, core.result(r.deal_id)) for r in core.deals(party=party, states=states)]}

    @app.get(f"{p}/deals/{{deal_id}}")
    def get_deal(deal_id: str) -> dict[str, Any]:
        record = core.deal(deal_id)
        return deal_view(record, core.result(record.deal_id))

    @app.get(f"{p}/deals/{{deal_id}}/job")
    def get_job(deal_id: str) -> dict[str, Any]:
        return core.job(deal_id)

    # Results ---------------------------------------------------------------
    def _unpack_result(archive: BinaryIO, dest: Path) -> None:
        unpack(archive, dest, max_bytes=results_store.max_result_bytes, max_files=max_result_files)
        if require_result_layout:
            validate_layout(dest)

    def _ingest(archive: IO[bytes]) -> str:
        try:
            return unpack_into_store(archive, results_store, "result", _unpack_result)
        except ResultTooLargeError as exc:
            raise ApiError(413, "too_large", str(exc)) from None
        except UnsafeResultError as exc:
            raise ApiError(400, "unsafe_archive", str(exc)) from None
        except ResultLayoutError as exc:
            raise ApiError(400, "not_a_result", str(exc)) from None
        except (ResultArchiveError, CIDError) as exc:
            raise ApiError(400, "bad_archive", str(exc)) from None

    @app.put(f"{p}/deals/{{deal_id}}/result")
    async def put_result(deal_id: str, request: Request) -> dict[str, Any]:
        record = await run_in_threadpool(core.deal, deal_id)
        async with signed_upload(request, over="deal id", authorize=partial(check_result_uploader, record),
                                 limit=max_result_bytes) as upload:
            cid = await run_in_threadpool(_ingest, upload.body)
        result = await run_in_threadpool(core.record_result, record.deal_id, cid, upload.size)
        return {"deal_id": record.deal_id, "cid": result.cid, "size": result.size}

    @app.get(f"{p}/deals/{{deal_id}}/result")
    async def get_result(deal_id: str) -> StreamingResponse:
        result = await run_in_threadpool(core.servable_result, deal_id, onchain_result)
        return await archive_response(results_store, result.cid)

    # Input files -------------------------------------------------------------
    def _ingest_inputs(archive: IO[bytes], expected_cid: str) -> str:
        assert inputs_store is not None

        def unpack_to(source: BinaryIO, dest: Path) -> None:
            unpack_inputs(source, dest, expected_cid=expected_cid, limits=input_limits)

        try:
            return unpack_into_store(archive, inputs_store, "inputs", unpack_to)
        except ResultCIDMismatchError as exc:
            raise ApiError(400, "inputs_cid_mismatch", f"the input files are not the offer's inputs_cid: {exc}") from None
        except ResultTooLargeError as exc:
            raise ApiError(413, "too_large", str(exc)) from None
        except (UnsafeResultError, InputFilesError) as exc:
            raise ApiError(400, "unsafe_archive", str(exc)) from None
        except (ResultArchiveError, CIDError) as exc:
            raise ApiError(400, "bad_archive", str(exc)) from None

    def _job_inputs(offer_id: str) -> tuple[OfferRecord, str]:
        if inputs_store is None:
            raise InputsNotFoundError()
        return core.job_inputs(offer_id)

    @app.put(f"{p}/job_offers/{{offer_id}}/inputs")
    async def put_inputs(offer_id: str, request: Request) -> dict[str, Any]:
        record, expected = await run_in_threadpool(_job_inputs, offer_id)
        async with signed_upload(request, over="offer id", authorize=partial(check_inputs_uploader, record),
                                 limit=input_limits.max_archive_bytes) as upload:
            if not await run_in_threadpool(inputs_store.has, expected):  # type: ignore[union-attr]
                await run_in_threadpool(_ingest_inputs, upload.body, expected)
        await run_in_threadpool(core.inputs_uploaded, record.id)
        return {"offer_id": record.id, "cid": expected, "size": upload.size}

    @app.get(f"{p}/job_offers/{{offer_id}}/inputs")
    async def get_inputs(offer_id: str) -> StreamingResponse:
        record, cid = await run_in_threadpool(_job_inputs, offer_id)
        if not await run_in_threadpool(inputs_store.has, cid):  # type: ignore[union-attr]
            raise InputsNotFoundError(record.id, cid)
        assert inputs_store is not None
        return await archive_response(inputs_store, cid)

    # Events ----------------------------------------------------------------
    @app.get(f"{p}/events")
    async def events(request: Request) -> EventSourceResponse:
        last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        if last is not None and not last.strip().isdigit():
            raise ApiError(400, "invalid_request", f"Last-Event-ID {last!r} is not an event id")
        # A reconnecting client first gets the kept events it missed.
        subscription = core.bus.subscribe(after=int(last) if last is not None else None)

        async def stream() -> AsyncIterator[ServerSentEvent]:
            try:
                async for event in subscription:
                    yield ServerSentEvent(data=json.dumps(event.data), event=event.type, id=str(event.id))
            finally:
                subscription.close()

        # The background task also ends a subscription whose stream never started.
        return EventSourceResponse(stream(), ping=sse_ping_s, background=BackgroundTask(subscription.close))

    # Operators: /status (HTML), /health, /metrics (lilypad.solver.status).
    from lilypad.solver.status import install_status_routes

    install_status_routes(app, core, domain=domain, solver_address=solver_address)
    return app
