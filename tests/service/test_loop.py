"""The one service loop: rounds, wake, stop and restart, failed rounds, the metrics server."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from lilypad.exceptions import ServiceConfigError
from lilypad.observability.metrics import DaemonMetrics
from lilypad.service import ServiceLoop


class Counting(ServiceLoop):
    """A loop whose rounds count themselves and do what ``then`` says."""

    name = "counting"

    def __init__(self, interval: float, then: Callable[[int], Any] = lambda n: None, **kw: Any) -> None:
        super().__init__(interval, **kw)
        self.rounds: list[float] = []
        self.then = then

    def step(self) -> None:
        self.rounds.append(time.monotonic())
        self.then(len(self.rounds))


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_an_interval_must_be_positive() -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match="positive"):
            ServiceLoop(bad)


def test_a_thread_loop_runs_rounds_each_interval_stops_and_restarts() -> None:
    loop = Counting(0.05)
    with loop:
        assert loop.running and loop._thread is not None and loop._thread.name == "counting"
        wait_for(lambda: len(loop.rounds) >= 4)
    assert not loop.running and loop.stopping
    gaps = [b - a for a, b in zip(loop.rounds, loop.rounds[1:])]
    assert min(gaps) >= 0.04  # it slept between rounds
    done = len(loop.rounds)
    time.sleep(0.2)
    assert len(loop.rounds) == done  # stopped means stopped
    loop.start()  # again, after a stop
    wait_for(lambda: len(loop.rounds) > done)
    assert loop.start() is loop  # starting a running loop is a no-op
    loop.stop()
    assert not loop.running and loop.errors == 0


def test_wake_starts_the_next_round_now() -> None:
    loop = Counting(30.0).start()
    try:
        wait_for(lambda: len(loop.rounds) == 1)
        started = time.monotonic()
        loop.wake()
        wait_for(lambda: len(loop.rounds) == 2)
        assert time.monotonic() - started < 5
    finally:
        stopped = time.monotonic()
        loop.stop()
    assert time.monotonic() - stopped < 5  # the 30 s sleep is cut short by stop()


def test_a_blocking_loop_ends_after_the_round_that_stops_it() -> None:
    loop: Counting = Counting(30.0, then=lambda n: loop.stop() if n == 3 else loop.wake())
    loop.run()  # in this thread, as the daemons do
    assert len(loop.rounds) == 3
    assert loop.pause(5) is True  # a stopped loop does not sleep


def test_a_failed_round_is_counted_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    def then(n: int) -> None:
        if n == 2:
            raise RuntimeError("the solver said no")
        if n == 3:
            loop.stop()

    metrics = DaemonMetrics("provider")
    logger = logging.getLogger("lilypad.provider")
    loop = Counting(0.01, then=then, logger=logger, metrics=metrics)
    with caplog.at_level(logging.INFO, logger=logger.name):
        loop.run()
    assert len(loop.rounds) == 3 and loop.errors == 1
    (line,) = [r.getMessage() for r in caplog.records if "round_failed" in r.getMessage()]
    assert json.loads(line) == {"event": "round_failed", "error": "RuntimeError: the solver said no"}
    assert metrics.rounds._value.get() == 3 and metrics.round_failures._value.get() == 1


def test_with_fatal_errors_a_failed_round_ends_the_loop() -> None:
    def then(n: int) -> None:
        raise OSError("disk full")

    loop = Counting(0.01, then=then, fatal_errors=True)
    with pytest.raises(OSError, match="disk full"):
        loop.run()
    assert len(loop.rounds) == 1 and loop.errors == 1


def test_a_plain_loop_runs_the_step_it_is_given() -> None:
    loop = ServiceLoop(0.01, fatal_errors=True)
    with pytest.raises(NotImplementedError, match="pass one to run"):
        loop.run()
    calls: list[int] = []

    def step() -> None:
        calls.append(1)
        if len(calls) == 2:
            loop.stop()

    loop = ServiceLoop(0.01)
    loop.run(step)
    assert calls == [1, 1]


def health(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        return json.loads(response.read())


def test_the_metrics_server_counts_the_rounds_and_serves_health() -> None:
    loop = Counting(0.01)
    assert loop.serve_metrics(DaemonMetrics("bridge"), None) is None and loop.metrics is None
    metrics = DaemonMetrics("bridge")
    server = loop.serve_metrics(metrics, 0, health=lambda: {"address": "0xAb"})
    assert server is not None and loop.metrics_server is server and loop.metrics is metrics
    try:
        loop.then = lambda n: loop.stop() if n == 2 else None
        loop.run()
        body = health(server.port)
        assert body["status"] == "ok" and body["component"] == "bridge" and body["rounds"] == 2
        assert body["address"] == "0xAb"
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            with pytest.raises(ServiceConfigError) as info:
                Counting(0.01).serve_metrics(DaemonMetrics("mediator"), taken.getsockname()[1])
        assert info.value.option == "--metrics-port" and "cannot listen on 127.0.0.1:" in info.value.reason
    finally:
        loop.stop_metrics()
    with pytest.raises(OSError):
        health(server.port)


def test_the_solvers_loops_report_failed_rounds_as_text(caplog: pytest.LogCaptureFixture) -> None:
    from lilypad.solver.watcher import TimeoutKeeper

    failures = iter([ConnectionError("connection refused"), ValueError("a bug")])

    def clock() -> int:
        raise next(failures)

    from types import SimpleNamespace

    core = SimpleNamespace(may_time_out=lambda: True)  # a deal is open: the keeper reads the clock
    keeper = TimeoutKeeper(None, core, None, interval=0.05, clock=clock)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="lilypad.solver.watcher"), keeper:
        wait_for(lambda: keeper.errors >= 2)
    unreachable, bug = [r for r in caplog.records if "round failed" in r.getMessage()][:2]
    assert unreachable.levelno == logging.WARNING and unreachable.exc_info is None
    assert unreachable.getMessage() == ("solver-timeout-keeper: round failed, the chain is unreachable "
                                        "(ConnectionError: connection refused); retrying in 0.1s")
    assert bug.levelno == logging.ERROR and bug.exc_info is not None and bug.getMessage() == (
        "solver-timeout-keeper: round failed")
    assert not keeper.running


def test_a_timeout_keeper_with_nothing_that_can_time_out_does_not_read_the_chain() -> None:
    from types import SimpleNamespace

    from lilypad.solver.watcher import TimeoutKeeper

    def clock() -> int:
        raise AssertionError("the chain's clock was read")

    keeper = TimeoutKeeper(None, SimpleNamespace(may_time_out=lambda: False), None, clock=clock)  # type: ignore[arg-type]
    assert keeper.step() == [] and keeper.sent == keeper.reverted == 0


def test_idle_with_its_events_connected_a_loop_waits_the_idle_interval() -> None:
    """The wait after a round: ``interval`` while work is in flight or no event source is
    connected (nothing would wake it), ``idle_interval`` only when both allow it; a wake still
    starts the next round at once."""
    loop = ServiceLoop(0.05, idle_interval=30.0)
    busy = [True]
    loop.busy = lambda: busy[0]
    assert loop.wait_time() == 0.05  # busy
    busy[0] = False
    assert loop.wait_time() == 0.05  # idle, but nothing would wake it
    loop.events_connected.set()
    assert loop.wait_time() == 30.0
    assert ServiceLoop(0.05).wait_time() == 0.05  # no idle interval: always the interval
    rounds: list[float] = []
    thread = threading.Thread(target=loop.run, args=(lambda: rounds.append(time.monotonic()),), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not rounds and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        assert len(rounds) == 1  # idle: no second round within 0.3 s of a 0.05 s interval
        loop.wake()
        deadline = time.monotonic() + 5
        while len(rounds) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(rounds) == 2  # an event starts it at once
        busy[0] = True
        loop.wake()
        time.sleep(0.4)
        assert len(rounds) >= 5  # busy again: every 0.05 s
    finally:
        loop.stop()
        thread.join(5)


def test_however_often_it_is_woken_a_loop_rests_min_interval_between_rounds() -> None:
    """A source that wakes the loop on every block or event (faster than rounds can pay for
    under load) starts at most one round per ``min_interval``; without one, a wake is at once."""
    loop = Counting(30.0, min_interval=0.1).start()
    try:
        wait_for(lambda: len(loop.rounds) == 1)
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:  # woken every millisecond for 0.6 s
            loop.wake()
            time.sleep(0.001)
        wait_for(lambda: len(loop.rounds) >= 4)
    finally:
        loop.stop()
    gaps = [b - a for a, b in zip(loop.rounds, loop.rounds[1:])]
    assert min(gaps) >= 0.099, gaps
    assert len(loop.rounds) <= 1 + 0.6 / 0.1 + 1  # not one round per wake (600 wakes)
