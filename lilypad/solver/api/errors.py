"""The solver API's errors: every refusal is JSON ``{"error": CODE, "detail": MESSAGE}``.

* :class:`ApiError` - raised by a handler for what only HTTP knows (a
  missing signature header, an oversize body, a bad query parameter);
* :data:`ERROR_CODES` - the status and code of each
  :class:`~lilypad.exceptions.LilypadError` the core raises, the most
  specific first: 400 for a refused offer (bad signature, replayed nonce,
  stale or future clock, wrong kind, malformed body), 403 for an upload
  signed by the wrong key, 404 for an unknown offer or deal or a missing
  result or input files, 409 for a state conflict, 410 for a deleted result;
  any other one is a 500 ``internal`` (and logged);
* a request the framework rejects as invalid is ``400 invalid_request``
  with the validation ``errors`` listed.

:func:`install_error_handlers` adds the handlers to an app (the framework's
own HTTP errors are :func:`lilypad.solver.guards.install_http_error_handler`).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from lilypad.exceptions import (
    DealNotFoundError,
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
    ResultCIDMismatchError,
    ResultGoneError,
    ResultNotOnChainError,
    ResultNotUploadedError,
    UploadSignerError,
)

__all__ = ["ERROR_CODES", "ApiError", "error_response", "install_error_handlers"]

log = logging.getLogger(__name__)

#: ``(error class, HTTP status, error code)`` of the core's errors: the most specific first.
ERROR_CODES: list[tuple[type[LilypadError], int, str]] = [
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


def error_response(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    """The JSON answer of an error (``extra`` keys beside ``error`` and ``detail``)."""
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """Answer :class:`ApiError`, the core's errors and invalid requests as JSON errors."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.detail)

    @app.exception_handler(LilypadError)
    async def lilypad_error(_: Request, exc: LilypadError) -> JSONResponse:
        for cls, status, code in ERROR_CODES:
            if isinstance(exc, cls):
                return error_response(status, code, str(exc))
        log.error("unexpected error", exc_info=exc)
        return error_response(500, "internal", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        summary = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
        return error_response(400, "invalid_request", summary or "invalid request", errors=errors)
