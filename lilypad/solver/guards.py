"""Request guards of the solver's HTTP API, found by its hostile-input suite.

* :class:`JSONBodyLimit` bounds every request body except the two archive
  uploads (which have their own, larger limits): a body over
  :data:`MAX_JSON_BODY_BYTES` is answered ``413 {"error": "too_large"}``
  before anything parses it, whether it declares a ``Content-Length`` or is
  sent chunked. Without it, one POST of gigabytes of JSON is read whole into
  the solver's memory.
* JSON nested deeper than :data:`MAX_JSON_DEPTH` is answered ``400`` before
  it is parsed (deep nesting crashed the process, see there).
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

__all__ = ["MAX_JSON_BODY_BYTES", "MAX_JSON_DEPTH", "JSONBodyLimit", "install_http_error_handler", "json_depth"]

#: The largest JSON body the API reads: a job offer carries at most 256 KiB
#: of inputs, which JSON escaping can grow up to 6 times.
MAX_JSON_BODY_BYTES = 4 << 20
#: The deepest JSON nesting the API reads. Python's JSON parser recurses, and
#: with a recursion limit raised by an imported library (py-evm sets 12288,
#: others more) a body of 100,000 ``[`` crashes the whole process (SIGSEGV)
#: instead of raising RecursionError. Offers nest about 5 levels.
MAX_JSON_DEPTH = 64

_UPLOADS = re.compile(r".*/(deals/[^/]+/result|job_offers/[^/]+/inputs)")
_CODES = {400: "invalid_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}


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
        chunks: list[bytes] = []
        seen = 0
        while True:  # read the (bounded) body first, so that it can be checked before any parser sees it
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > limit:
                await self._refuse(send, f"the request body is over the limit of {limit} bytes")
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        depth = json_depth(body)
        if depth > MAX_JSON_DEPTH:
            payload = json.dumps({"error": "invalid_request",
                                  "detail": f"the JSON nests {depth} levels deep; at most {MAX_JSON_DEPTH} are read"})
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload.encode()})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def json_depth(body: bytes) -> int:
    """How deep ``[`` and ``{`` nest in ``body`` (outside strings); cheap when they are few."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


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
