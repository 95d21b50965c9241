"""The solver's push channel: :class:`EventBus` fans ``deal`` and ``offer`` events
out to asyncio subscribers (the HTTP ``/events`` stream), from any thread, and
keeps the recent ones so that a reconnecting client (SSE ``Last-Event-ID``)
misses nothing. Re-exported by :mod:`lilypad.solver.service`."""

from __future__ import annotations

import asyncio
import collections
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "EventBus", "Subscription", "event_parties"]


@dataclass(frozen=True)
class Event:
    """One pushed event: ``type`` is ``deal`` or ``offer``; ``id`` increases."""

    id: int
    type: str
    data: dict[str, Any]


def event_parties(event: Event) -> frozenset[str]:
    """The addresses (lower case) an event is about: an offer event's signer; a deal event's
    job creator, resource provider, solver and mediators. A stream asked for one party
    (``/events?party=``) carries only the events naming it."""
    data = event.data
    if event.type == "offer":
        signer = data.get("signer")
        return frozenset({signer.lower()}) if isinstance(signer, str) else frozenset()
    members = ((data.get("deal") or {}).get("terms") or {}).get("members") or {}
    found = {members.get(k) for k in ("job_creator", "resource_provider", "solver")}
    found.update(members.get("mediators") or ())
    return frozenset(a.lower() for a in found if isinstance(a, str))


@dataclass(eq=False)
class Subscription:
    """One listener's queue. Iterate it (``async for``) in the loop it was made
    in; iteration ends when it is closed or fell ``maxsize`` events behind."""

    bus: EventBus
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False
    closed: bool = False

    def _deliver(self, event: Event | None) -> None:
        """Runs in the subscriber's loop. The queue holds ``bus.maxsize`` events
        plus room for the closing ``None``."""
        if self.closed:
            return
        if event is not None and self.queue.qsize() >= self.bus.maxsize:
            self.overflowed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            event = None
        if event is None:
            self.closed = True
            self.bus._remove(self)
        self.queue.put_nowait(event)

    async def get(self) -> Event | None:
        """The next event, or ``None`` once closed."""
        if self.closed and self.queue.empty():
            return None
        return await self.queue.get()

    def close(self) -> None:
        self.bus._remove(self)
        self.closed = True

    def drain(self) -> bool:
        """Take every queued event without waiting; whether there was any."""
        had = not self.queue.empty()
        while not self.queue.empty():
            self.queue.get_nowait()
        return had

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        event = await self.get()
        if event is None:
            self.close()
            raise StopAsyncIteration
        return event


class EventBus:
    """Fans events out to asyncio subscribers; :meth:`publish` may be called
    from any thread (events reach each subscriber's loop thread-safely).

    The last ``replay`` events are kept, so a client reconnecting with the id of
    the last event it saw (SSE ``Last-Event-ID``) gets those it missed. Ids
    increase and start at ``first_id`` (default: the clock in milliseconds, so
    a restarted solver's ids stay above those it gave before)."""

    def __init__(self, *, maxsize: int = 10_000, replay: int = 1000, first_id: int | None = None) -> None:
        self.maxsize = maxsize
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()
        self._ids = itertools.count(int(time.time() * 1000) if first_id is None else first_id)
        self._recent: collections.deque[Event] = collections.deque(maxlen=max(0, min(replay, maxsize)))

    def subscribe(self, *, after: int | None = None) -> Subscription:
        """A new subscription bound to the running event loop; with ``after``,
        it first gets the kept events whose id is greater (a reconnect)."""
        sub = Subscription(self, asyncio.get_running_loop(), asyncio.Queue(self.maxsize + 1))
        with self._lock:
            self._subscribers.add(sub)
            backlog = [e for e in self._recent if e.id > after] if after is not None else []
        for event in backlog:
            sub._deliver(event)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def _send(self, sub: Subscription, event: Event | None) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is sub.loop:
            sub._deliver(event)
            return
        try:
            sub.loop.call_soon_threadsafe(sub._deliver, event)
        except RuntimeError:  # its loop is closed: drop it
            self._remove(sub)

    def publish(self, type: str, data: dict[str, Any]) -> Event:
        with self._lock:
            event = Event(next(self._ids), type, data)
            self._recent.append(event)
            subscribers = list(self._subscribers)
        for sub in subscribers:
            self._send(sub, event)
        return event

    def close(self) -> None:
        """End every subscription."""
        with self._lock:
            subscribers, self._subscribers = list(self._subscribers), set()
        for sub in subscribers:
            self._send(sub, None)
