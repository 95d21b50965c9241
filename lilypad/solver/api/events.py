"""``GET /api/v1/events``: a server-sent-event stream of ``deal`` and ``offer``
events (JSON data, increasing ids) from the core's
:class:`~lilypad.solver.events.EventBus`. A client reconnecting with
``Last-Event-ID`` (or ``?last_event_id=``) first gets the recent events after
that id; ``sse_ping_s`` apart, a ping keeps an idle stream open. ``?party=ADDRESS``
keeps only the events naming that address (:func:`~lilypad.solver.events.event_parties`):
a client then reads its own events, not every client's (ids still increase, with gaps)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from eth_utils import is_address
from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from lilypad.solver.api.deps import AppState
from lilypad.solver.api.errors import ApiError
from lilypad.solver.events import event_parties

__all__ = ["router"]

router = APIRouter()


@router.get("/events")
async def events(request: Request, solver: AppState,
                 party: str | None = Query(None, description="only the events naming this address")
                 ) -> EventSourceResponse:
    last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if last is not None and not last.strip().isdigit():
        raise ApiError(400, "invalid_request", f"Last-Event-ID {last!r} is not an event id")
    if party is not None and not is_address(party):
        raise ApiError(400, "invalid_request", f"party {party!r} is not an address")
    wanted = party.lower() if party is not None else None
    # A reconnecting client first gets the kept events it missed.
    subscription = solver.core.bus.subscribe(after=int(last) if last is not None else None)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            async for event in subscription:
                if wanted is not None and wanted not in event_parties(event):
                    continue
                yield ServerSentEvent(data=json.dumps(event.data), event=event.type, id=str(event.id))
        finally:
            subscription.close()

    # The background task also ends a subscription whose stream never started.
    return EventSourceResponse(stream(), ping=solver.sse_ping_s, background=BackgroundTask(subscription.close))
