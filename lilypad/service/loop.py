"""One loop for every lilypad service: rounds every ``interval`` seconds until stopped.

The resource provider, the mediator and the bridge run a :class:`ServiceLoop`
in their main thread (:meth:`ServiceLoop.run`, until a signal handler calls
:meth:`~ServiceLoop.stop`); the solver's chain watcher and timeout keeper run
theirs in a daemon thread (:meth:`~ServiceLoop.start` / :meth:`~ServiceLoop.stop`,
or as a context manager). Either way a round is :meth:`~ServiceLoop.step` (or
the callable given to :meth:`~ServiceLoop.run`), and between two rounds the
loop sleeps ``interval`` seconds, less when :meth:`~ServiceLoop.wake` is called
(the solver's ``/events`` stream, a finished job) or at once when it is stopped.
A daemon with nothing in flight (:attr:`~ServiceLoop.busy`) whose event stream is
connected (:attr:`~ServiceLoop.events_connected`) sleeps ``idle_interval`` instead:
idle, it costs (almost) nothing, and an event still starts the next round at once.
The event source is the solver's stream (:class:`~lilypad.service.waker.EventWaker`)
or the chain's new blocks (:class:`~lilypad.service.heads.HeadWaker`); ``min_interval``
bounds how often such a source can start a round.

A round that raises is counted in :attr:`~ServiceLoop.errors` and reported by
:meth:`~ServiceLoop.round_failed` (one ``round_failed`` log line; the next
round retries after the interval), unless the loop was made with
``fatal_errors``: then :meth:`~ServiceLoop.run` raises it (the bridge, whose
rounds retry what can be retried themselves, so what escapes ends the process
for its supervisor to restart).

With metrics (a :class:`~lilypad.observability.metrics.DaemonMetrics`), every
round is counted as done or failed; :meth:`~ServiceLoop.serve_metrics` serves
them on ``/metrics`` and ``/health`` until :meth:`~ServiceLoop.stop_metrics`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lilypad.observability.logs import log_event

if TYPE_CHECKING:
    from lilypad.observability.metrics import DaemonMetrics, MetricsServer

__all__ = ["ServiceLoop"]

log = logging.getLogger("lilypad.service")


class ServiceLoop:
    """Rounds every ``interval`` seconds until stopped (see the module docstring).

    ``name`` names the thread (and the loop in log lines); ``logger`` gets the
    ``round_failed`` lines; ``metrics`` counts the rounds.
    """

    #: The thread's name; subclasses set their own.
    name = "service-loop"

    def __init__(self, interval: float, *, name: str | None = None, logger: logging.Logger | None = None,
                 metrics: DaemonMetrics | None = None, fatal_errors: bool = False,
                 idle_interval: float | None = None, min_interval: float = 0.0) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = float(interval)
        #: The least time from one round's start to the next, even when woken (a source that
        #: wakes the loop on every block or event then costs at most one round per this).
        self.min_interval = float(min_interval)
        #: The wait between rounds when :attr:`busy` says no work is in flight and
        #: :attr:`events_connected` is set (None: always ``interval``).
        self.idle_interval = idle_interval
        #: Whether the daemon has work in flight (set by the daemon; default: always).
        self.busy: Callable[[], bool] = lambda: True
        #: Set while something that wakes the loop on every change is connected (an
        #: :class:`~lilypad.service.waker.EventWaker` on the solver's stream).
        self.events_connected = threading.Event()
        if name is not None:
            self.name = name
        self.logger = logger or log
        self.metrics = metrics
        self.fatal_errors = fatal_errors
        #: Set by :meth:`stop`; the loop ends after the round in progress.
        self.stop_event = threading.Event()
        #: Set by :meth:`wake` (and :meth:`stop`): the next round starts now.
        self.wake_event = threading.Event()
        self.metrics_server: MetricsServer | None = None
        self.errors = 0
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ rounds
    def step(self) -> Any:
        """One round (subclasses; or give :meth:`run` a callable)."""
        raise NotImplementedError(f"{type(self).__name__} has no step: pass one to run()")

    def round_failed(self, exc: Exception) -> None:
        """Report a round that raised ``exc`` (called in the ``except`` block)."""
        log_event(self.logger, "round_failed", error=f"{type(exc).__name__}: {exc}")

    def run(self, step: Callable[[], Any] | None = None) -> None:
        """Run rounds of ``step`` (default :meth:`step`) in this thread until :meth:`stop`."""
        step = step or self.step
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                step()
            except Exception as exc:  # keep serving: the next round retries
                self.errors += 1
                if self.fatal_errors:
                    raise
                if self.metrics is not None:
                    self.metrics.round_done(False)
                self.round_failed(exc)
            else:
                if self.metrics is not None:
                    self.metrics.round_done(True)
            self.wake_event.wait(self.wait_time())
            self.wake_event.clear()
            if self.min_interval > 0 and not self.stop_event.is_set():
                rest = self.min_interval - (time.monotonic() - started)
                if rest > 0:
                    self.stop_event.wait(rest)

    def wait_time(self) -> float:
        """The wait after a round: ``interval``, or ``idle_interval`` when there is one, nothing
        is in flight (:attr:`busy`) and an event source that wakes the loop is connected."""
        if self.idle_interval is None or not self.events_connected.is_set() or self.busy():
            return self.interval
        return max(self.interval, self.idle_interval)

    # ------------------------------------------------------------------ control
    def wake(self) -> None:
        """Start the next round now rather than after the interval."""
        self.wake_event.set()

    def stop(self, timeout: float = 30.0) -> None:
        """End the loop after the round in progress; a loop started with
        :meth:`start` is waited for (up to ``timeout`` seconds). Safe from a
        signal handler and from any thread."""
        self.stop_event.set()
        self.wake_event.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            self._thread = None

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self.stop_event.is_set()

    def pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` inside a round, cut short by :meth:`stop`; whether it was."""
        return self.stop_event.wait(seconds)

    def start(self) -> ServiceLoop:
        """Run the loop in a daemon thread named :attr:`name` (again, after a :meth:`stop`)."""
        if self.running:
            return self
        self.stop_event.clear()
        self.wake_event.clear()
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """Whether the loop's thread (:meth:`start`) is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ServiceLoop:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ metrics
    def serve_metrics(self, metrics: DaemonMetrics, port: int | None, *, host: str = "127.0.0.1",
                      health: Callable[[], dict[str, Any]] | None = None) -> MetricsServer | None:
        """With a ``port`` (0: any free one), count the rounds in ``metrics`` and
        serve them on ``host:port`` (``/metrics``, ``/health``) until
        :meth:`stop_metrics`; the server (``None`` without a port). ``/health``
        says ``stalled`` when no round completed in max(60 s, 20 intervals) and
        adds ``health()``'s fields. A port it cannot listen on is a
        :class:`~lilypad.exceptions.ServiceConfigError` (``--metrics-port``)."""
        if port is None:
            return None
        from lilypad.exceptions import ServiceConfigError
        from lilypad.observability.metrics import MetricsServer

        self.metrics = metrics
        max_age = max(60.0, 20 * self.interval)
        try:
            server = MetricsServer(metrics.registry, port, host=host,
                                   health=lambda: metrics.health(max_round_age=max_age, **(health() if health else {})))
        except OSError as exc:
            raise ServiceConfigError("--metrics-port", f"cannot listen on {host}:{port}: {exc}") from None
        self.metrics_server = server.start()
        return self.metrics_server

    def stop_metrics(self) -> None:
        """Stop serving metrics (nothing without :meth:`serve_metrics`)."""
        if self.metrics_server is not None:
            self.metrics_server.stop()
