"""The chain's new blocks waking a loop: :class:`lilypad.service.HeadWaker` on the real anvil."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from lilypad.service import HeadWaker, ServiceLoop, websocket_url


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class _Provider:
    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)


def test_the_websocket_url_of_a_node() -> None:
    assert websocket_url("http://127.0.0.1:8545") == "ws://127.0.0.1:8545"
    assert websocket_url("https://rpc.example/v1/key") == "wss://rpc.example/v1/key"
    assert websocket_url("ws://127.0.0.1:1") == "ws://127.0.0.1:1"
    assert websocket_url("/tmp/geth.ipc") is None
    assert websocket_url(_Provider(ws_uri="wss://a/b", uri="https://c")) == "wss://a/b"
    assert websocket_url(_Provider(ws_uri=None, http_uri="http://h:1", uri="http://other:2")) == "ws://h:1"
    assert websocket_url(_Provider(uri="https://c")) == "wss://c"
    assert websocket_url(_Provider()) is None


def _idle_loop(rounds: list[float]) -> ServiceLoop:
    loop = ServiceLoop(0.05, idle_interval=60.0)
    loop.busy = lambda: False
    thread = threading.Thread(target=loop.run, args=(lambda: rounds.append(time.monotonic()),), daemon=True)
    thread.start()
    loop._thread = thread  # so stop() joins it
    return loop


def test_each_new_block_wakes_an_idle_loop_that_otherwise_rests(networks: Any, chain: Any) -> None:
    url = websocket_url(networks.provider)
    assert url is not None and url.startswith("ws://")
    rounds: list[float] = []
    loop = _idle_loop(rounds)
    waker = HeadWaker(url, [loop], loop.stop_event).start()
    try:
        wait_for(waker.connected.is_set)
        assert loop.events_connected.is_set() and loop.wait_time() == 60.0
        wait_for(lambda: len(rounds) >= 2)  # the first round, then the wake on connecting
        time.sleep(0.5)
        settled = len(rounds)
        time.sleep(0.5)
        assert len(rounds) == settled  # no block, no round: the 0.05 s interval is not used
        for n in range(3):
            chain.mine()
            wait_for(lambda n=n: waker.heads >= n + 1 and len(rounds) >= settled + n + 1)
        assert waker.heads == 3
    finally:
        loop.stop(5)
        waker.thread.join(5)
    assert not waker.thread.is_alive()
    assert not loop.events_connected.is_set() and not waker.connected.is_set()


def test_without_a_websocket_endpoint_the_loop_keeps_polling() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rounds: list[float] = []
    loop = _idle_loop(rounds)
    waker = HeadWaker(f"ws://127.0.0.1:{port}", [loop], loop.stop_event).start()
    try:
        time.sleep(0.5)
        assert not waker.connected.is_set() and not loop.events_connected.is_set()
        assert loop.wait_time() == 0.05
        assert len(rounds) >= 4  # polling at the interval meanwhile
    finally:
        loop.stop(5)
        waker.thread.join(5)
    assert not waker.thread.is_alive()


def test_a_stopped_waker_ends_its_thread_promptly(networks: Any) -> None:
    stop = threading.Event()
    loop = ServiceLoop(1.0)
    waker = HeadWaker(websocket_url(networks.provider) or "", [loop], stop).start()
    wait_for(waker.connected.is_set)
    started = time.monotonic()
    stop.set()
    waker.thread.join(5)
    assert not waker.thread.is_alive() and time.monotonic() - started < 2
