"""Observability shared by lilypad's services: Prometheus metrics on a
registry per service, a small ``/metrics`` + ``/health`` HTTP server for the
daemons, and one structured log line per state change.

Heavy imports (``prometheus_client``) happen only when metrics are used:
import :mod:`lilypad.observability.metrics` for them.
"""

from __future__ import annotations

from lilypad.observability.logs import LOG_FORMAT_ENV, format_state_change, log_state_change

__all__ = ["LOG_FORMAT_ENV", "format_state_change", "log_state_change"]
