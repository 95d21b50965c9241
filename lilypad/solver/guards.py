"""Request guards of the solver's HTTP API, found by its hostile-input suite.

* :class:`JSONBodyLimit` bounds every request body except the two archive
  uploads (which have their own, larger limits): a body over
  :data:`MAX_JSON_BODY_BYTES` is answered ``413 {"error": "too_large"}``
  before anything parses it, whether it declares a ``Content-Length`` or is
  sent chunked. Without it, one POST of gigabytes of JSON is read whole into
  the solver's memory.
* :func:`install_http_error_handler` answers the framework's own errors
  (unknown path, wrong method, a body the JSON parser rejects) in the API's
  ``{"error": CODE, "detail": MESSAGE}`` form instead of ``{"detail": ...}``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_JSON_BODY_BYTES", "JSONBodyLimit", "install_http_error_handler"]

#: The largest JSON body the API reads: a job offer carries at most 256 KiB
#: of inputs, which JSON escaping can grow up to 6 times.
MAX_JSON_BODY_BYTES = 4 << 20

_UPLOADS = re.compile(r".*/(deals/[^/]+/result|job_offers/[^/]+/inputs)")
_CODES = {400: "invalid_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}


class _TooLarge(StarletteHTTPException):
    """Raised from ``receive``: FastAPI's body reader passes HTTP exceptions on as they are."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit} bytes")


class JSONBodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` (413), uploads excepted."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_JSON_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Send, detail: str) -> None:
        body = json.dumps({"error": "too_large", "detail": detail}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _UPLOADS.fullmatch(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._refuse(send, f"the request body is {int(value)} bytes; the limit is {limit}")
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send, f"the request body is over the limit of {limit} bytes")


def install_http_error_handler(app: FastAPI) -> None:
    """Answer the framework's HTTP errors as ``{"error", "detail"}``."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail: Any = exc.detail
        if detail == "There was an error parsing the body":
            detail = "the body is not valid JSON (or nests too deep, or holds a number too large to parse)"
        code = _CODES.get(exc.status_code, "http_error")
        return JSONResponse({"error": code, "detail": str(detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))
