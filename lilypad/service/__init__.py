"""The service kit: what lilypad's long-running processes share.

* :mod:`lilypad.service.state` - :func:`open_sqlite`, the one SQLite opener.
"""

from __future__ import annotations

from lilypad.service.state import BUSY_TIMEOUT_S, open_sqlite

__all__ = ["BUSY_TIMEOUT_S", "open_sqlite"]
