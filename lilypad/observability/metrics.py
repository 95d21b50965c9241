"""Prometheus metrics for lilypad's services, on a registry of their own.

* :func:`new_registry` gives each service (and each test) its own
  ``CollectorRegistry``, so two daemons in one process never share counters;
* :class:`DaemonMetrics` is what the resource provider and the mediator
  record: jobs run (by outcome), run durations, deal status transitions,
  rounds and failed rounds, the account's ETH and LP balances, LP locked as
  collateral in the escrow of open deals, and the chain head (block, lag);
* :class:`MetricsServer` serves ``/metrics`` (Prometheus text format) and
  ``/health`` (JSON; 503 when unhealthy) from a daemon thread, for services
  that have no HTTP app of their own (``--metrics-port``).

Metric names are ``lilypad_<component>_...``; amounts of LP and ETH are in
whole tokens (floats), times in seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = [
    "CONTENT_TYPE_LATEST",
    "DURATION_BUCKETS",
    "DaemonMetrics",
    "MetricsServer",
    "new_registry",
    "render",
]

#: Job run durations (seconds): container start-up to hour-long jobs.
DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, float("inf"))
_TOKEN = 10**18


def new_registry() -> CollectorRegistry:
    """A fresh registry (not prometheus_client's process-global one)."""
    return CollectorRegistry(auto_describe=True)


def render(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus' text exposition format."""
    return generate_latest(registry)


class DaemonMetrics:
    """The metrics of a resource provider or mediator (``component``:
    ``provider`` or ``mediator``), on ``registry`` (default: a new one)."""

    def __init__(self, component: str, registry: CollectorRegistry | None = None) -> None:
        self.component = component
        self.registry = registry if registry is not None else new_registry()
        p, r = f"lilypad_{component}", self.registry
        self.jobs = Counter(f"{p}_jobs", "Jobs run to completion or failure, by outcome "
                            "(succeeded: exit code 0; nonzero_exit; failed: could not run).", ["outcome"], registry=r)
        self.job_seconds = Histogram(f"{p}_job_duration_seconds", "Wall time of each job run (fetch, resolve, "
                                     "render, container).", buckets=DURATION_BUCKETS, registry=r)
        self.transitions = Counter(f"{p}_deal_transitions", "Changes of a deal's local status, by new status.",
                                   ["status"], registry=r)
        self.rounds = Counter(f"{p}_rounds", "Rounds of the daemon's loop.", registry=r)
        self.round_failures = Counter(f"{p}_round_failures", "Rounds that raised (retried next round).",
                                      registry=r)
        self.running = Gauge(f"{p}_jobs_running", "Jobs running now.", registry=r)
        self.eth_balance = Gauge(f"{p}_eth_balance", "The account's ETH balance (for gas).", registry=r)
        self.lp_balance = Gauge(f"{p}_lp_balance", "The account's LP token balance (free, not escrowed).",
                                registry=r)
        self.collateral = Gauge(f"{p}_escrow_locked_lp", "LP this account has locked in the escrow of open "
                                "deals (collateral).", registry=r)
        self.head_block = Gauge(f"{p}_chain_head_block", "The chain's head block as last read.", registry=r)
        self.head_lag = Gauge(f"{p}_chain_head_lag_seconds", "Seconds between now and the head block's "
                              "timestamp at the last read.", registry=r)
        self.last_round = Gauge(f"{p}_last_round_timestamp_seconds", "When the last round completed (Unix).",
                                registry=r)
        self._lock = threading.Lock()
        self._last_round = 0.0
        self._round_count = 0
        self._started = time.time()

    # Recording -------------------------------------------------------------
    def round_done(self, ok: bool = True) -> None:
        self.rounds.inc()
        with self._lock:
            self._round_count += 1
        if not ok:
            self.round_failures.inc()
            return
        now = time.time()
        with self._lock:
            self._last_round = now
        self.last_round.set(now)

    def job_finished(self, seconds: float, outcome: str) -> None:
        """One job run of ``seconds`` ended with ``outcome``."""
        self.jobs.labels(outcome=outcome).inc()
        self.job_seconds.observe(max(0.0, seconds))

    def chain_read(self, *, head_block: int, head_timestamp: int, eth_wei: int | None = None,
                   lp_units: int | None = None, locked_units: int | None = None) -> None:
        """Record what a periodic chain read found (``None``: not read)."""
        self.head_block.set(head_block)
        self.head_lag.set(max(0.0, time.time() - head_timestamp))
        if eth_wei is not None:
            self.eth_balance.set(eth_wei / _TOKEN)
        # The locked LP first: a scrape between the two sets never shows a
        # payout (LP balance up) with its escrow still locked.
        if locked_units is not None:
            self.collateral.set(locked_units / _TOKEN)
        if lp_units is not None:
            self.lp_balance.set(lp_units / _TOKEN)

    # Health ------------------------------------------------------------------
    def health(self, *, max_round_age: float = 60.0, **extra: Any) -> dict[str, Any]:
        """``status`` ``ok`` while a round completed in the last ``max_round_age``
        seconds (or the daemon started less than that ago), else ``stalled``."""
        now = time.time()
        with self._lock:
            last, rounds = self._last_round, self._round_count
        age = now - (last or self._started)
        return {"status": "ok" if age <= max_round_age else "stalled", "component": self.component,
                "last_round_age_s": round(age, 3), "rounds": rounds,
                "uptime_s": round(now - self._started, 3), **extra}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, render(self.server.registry), CONTENT_TYPE_LATEST)
        elif path in ("/health", "/healthz"):
            try:
                body = self.server.health()
                status = 200 if body.get("status") == "ok" else 503
            except Exception as exc:  # report, never crash the server
                body, status = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}, 503
            self._send(status, json.dumps(body, default=str).encode(), "application/json")
        elif path == "/":
            self._send(200, b"lilypad metrics: /metrics (Prometheus), /health (JSON)\n", "text/plain")
        else:
            self._send(404, b"not found: try /metrics or /health\n", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: CollectorRegistry
    health: Callable[[], dict[str, Any]]


class MetricsServer:
    """``/metrics`` and ``/health`` on ``host:port`` (``port`` 0: any free one;
    see :attr:`port`) in a daemon thread. ``health()`` gives the JSON body;
    its ``status`` other than ``ok`` answers 503."""

    def __init__(self, registry: CollectorRegistry, port: int, *, host: str = "127.0.0.1",
                 health: Callable[[], dict[str, Any]] | None = None) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.registry = registry
        self._server.health = health or (lambda: {"status": "ok"})
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    def start(self) -> MetricsServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
