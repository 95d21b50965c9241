"""Observability shared by lilypad's services: Prometheus metrics on a
registry per service, a small ``/metrics`` + ``/health`` HTTP server for the
daemons, and structured log lines (one per state change, one per service
event) that never carry a secret.

Heavy imports (``prometheus_client``) happen only when metrics are used:
import :mod:`lilypad.observability.metrics` for them.
"""

from __future__ import annotations

from lilypad.observability.logs import (
    LOG_FORMAT_ENV,
    format_event,
    format_state_change,
    is_secret_field,
    log_event,
    log_state_change,
)

__all__ = ["LOG_FORMAT_ENV", "format_event", "format_state_change", "is_secret_field", "log_event",
           "log_state_change"]
