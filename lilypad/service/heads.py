"""Waking loops when the chain makes a block: ``eth_subscribe("newHeads")``.

A loop that follows the chain (the solver's chain watcher, the bridge reading
``JobAdded``) would otherwise ask the node for its head every fraction of a
second just in case. :class:`HeadWaker` holds one WebSocket subscription to
the node's new blocks (web3.py's ``WebSocketProvider``, in a daemon thread
with its own event loop) and wakes its loops on every block: nothing new can
be in a log until a block is made. While subscribed it sets each loop's
``events_connected``, so a loop with an ``idle_interval`` rests that long
between rounds when it has nothing in flight
(:meth:`~lilypad.service.loop.ServiceLoop.wait_time`). A node without a
WebSocket endpoint, or one that drops it, leaves ``events_connected`` clear
and the loops poll at their ``interval`` as before; the waker retries the
connection with a growing pause (1 s to 30 s).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["HeadWaker", "websocket_url"]

log = logging.getLogger("lilypad.service")

#: The longest pause between two connection attempts to a node without a WebSocket endpoint.
MAX_RETRY_S = 30.0
#: How often the subscription's thread looks at the stop flag.
STOP_CHECK_S = 0.5


def websocket_url(provider_or_url: Any) -> str | None:
    """The WebSocket URL of a node: an ape provider's ``ws_uri`` when it has one, else its
    HTTP URL with the scheme swapped (anvil and geth serve both on one port); ``None``
    for a node reached otherwise (IPC, an in-process chain)."""
    if isinstance(provider_or_url, str):
        url = provider_or_url
    else:
        ws = getattr(provider_or_url, "ws_uri", None)
        if isinstance(ws, str) and ws.startswith(("ws://", "wss://")):
            return ws
        url = getattr(provider_or_url, "http_uri", None) or getattr(provider_or_url, "uri", None) or ""
    if not isinstance(url, str):
        return None
    if url.startswith(("ws://", "wss://")):
        return url
    if url.startswith("http://"):
        return "ws://" + url.removeprefix("http://")
    if url.startswith("https://"):
        return "wss://" + url.removeprefix("https://")
    return None


class HeadWaker:
    """Wakes ``loops`` (:class:`~lilypad.service.loop.ServiceLoop`) on every new block of the node
    at ``ws_url`` until ``stop`` is set (see the module docstring). ``heads`` counts the blocks
    seen; ``connected`` is set while subscribed."""

    def __init__(self, ws_url: str, loops: Sequence[Any], stop: threading.Event, *,
                 name: str = "chain-heads") -> None:
        self.ws_url, self.loops, self.stop = ws_url, list(loops), stop
        self.connected = threading.Event()
        self.heads = 0
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> HeadWaker:
        self.thread.start()
        return self

    def _set_connected(self, value: bool) -> None:
        for loop in self.loops:
            (loop.events_connected.set if value else loop.events_connected.clear)()
            if value:  # what came while disconnected: a round reads it
                loop.wake()
        (self.connected.set if value else self.connected.clear)()

    def _run(self) -> None:
        # web3's subscription manager logs every (re)subscription at INFO, over several lines.
        logging.getLogger("web3.providers.persistent").setLevel(logging.WARNING)
        asyncio.run(self._main())

    async def _main(self) -> None:
        pause, reported = 1.0, False
        while not self.stop.is_set():
            try:
                await self._follow()
                pause = 1.0
            except Exception as exc:  # no endpoint, refused, dropped: poll meanwhile, try again
                if not reported:
                    log.info("no new-block subscription at %s (%s: %s): polling the chain instead",
                             self.ws_url, type(exc).__name__, exc)
                    reported = True
                pause = min(MAX_RETRY_S, pause * 2)
            finally:
                self._set_connected(False)
            await self._sleep_unless_stopped(pause)

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        end = asyncio.get_running_loop().time() + seconds
        while not self.stop.is_set() and asyncio.get_running_loop().time() < end:
            await asyncio.sleep(min(STOP_CHECK_S, seconds))

    async def _follow(self) -> None:
        from web3 import AsyncWeb3, WebSocketProvider

        async with AsyncWeb3(WebSocketProvider(self.ws_url, max_connection_retries=1)) as w3:
            await w3.eth.subscribe("newHeads")
            self._set_connected(True)
            heads = asyncio.ensure_future(self._wake_on_heads(w3))
            try:
                while not self.stop.is_set() and not heads.done():
                    await asyncio.wait({heads}, timeout=STOP_CHECK_S)
            finally:
                if not heads.done():
                    heads.cancel()
            if heads.done() and not heads.cancelled() and heads.exception() is not None:
                raise heads.exception()  # type: ignore[misc]

    async def _wake_on_heads(self, w3: Any) -> None:
        async for _ in w3.socket.process_subscriptions():
            self.heads += 1
            for loop in self.loops:
                loop.wake()
        raise ConnectionError("the node closed the subscription")
