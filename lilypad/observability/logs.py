"""Structured log lines: one per state change, one per service event.

:func:`log_state_change` writes ``component``, ``entity``, ``id``, ``old`` and
``new`` (plus any fields) as one line, JSON by default or ``key=value`` pairs
(``LILYPAD_LOG_FORMAT=kv``), so operators can grep a deal's whole history
(``grep 'id=0xabc'``) or feed the lines to a log pipeline.

:func:`log_event` writes any other event of a service (``offer_posted``,
``round_failed``, ``bridge_started`` ...) as one JSON object with sorted keys,
``event`` plus the fields; the benchmarks parse these lines.

Both leave out every field whose name looks secret (``key``, ``private_key``,
``secret``, ``password``, ``passphrase``, ``mnemonic``): a key passed to a log
line by mistake is never written.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

__all__ = ["LOG_FORMAT_ENV", "format_event", "format_state_change", "is_secret_field", "log_event",
           "log_state_change"]

#: ``json`` (default) or ``kv``.
LOG_FORMAT_ENV = "LILYPAD_LOG_FORMAT"
_SECRET = re.compile(r"(private_?key|secret|password|passphrase|mnemonic|^key$)", re.I)
_BARE = re.compile(r"[A-Za-z0-9_.:/@+\-]+")


def is_secret_field(name: str) -> bool:
    """Whether a log field called ``name`` would hold a secret (it is never written)."""
    return _SECRET.search(name) is not None


def _kv(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if _BARE.fullmatch(text) else json.dumps(text)


def format_state_change(component: str, entity: str, id: Any, old: Any, new: Any, *, fmt: str | None = None,
                        **fields: Any) -> str:
    """The line :func:`log_state_change` writes (``fmt``: ``json`` or ``kv``;
    default ``$LILYPAD_LOG_FORMAT`` or ``json``)."""
    record: dict[str, Any] = {"event": "state_change", "component": component, "entity": entity, "id": id,
                              "old": old, "new": new}
    for name, value in fields.items():
        if is_secret_field(name) or name in record:
            continue
        record[name] = value
    if not fmt:
        from lilypad.settings import get_settings

        fmt = get_settings().log_format
    fmt = (fmt or "json").lower()
    if fmt == "kv":
        return " ".join(f"{k}={_kv(v)}" for k, v in record.items() if v is not None or k in ("old", "new"))
    return json.dumps(record, default=str, sort_keys=False)


def log_state_change(component: str, entity: str, id: Any, old: Any, new: Any, *,
                     logger: logging.Logger | None = None, level: int = logging.INFO, **fields: Any) -> str:
    """Log one line for ``entity`` ``id`` of ``component`` moving from ``old``
    to ``new`` (``old`` ``None``: first seen) on ``logger`` (default
    ``lilypad.<component>``); returns the line."""
    line = format_state_change(component, entity, id, old, new, **fields)
    (logger or logging.getLogger(f"lilypad.{component}")).log(level, line)
    return line


def format_event(event: str, **fields: Any) -> str:
    """The line :func:`log_event` writes: ``{"event": event, **fields}`` as JSON
    with sorted keys, secret-named fields left out."""
    record = {name: value for name, value in fields.items() if not is_secret_field(name)}
    return json.dumps({"event": event, **record}, default=str, sort_keys=True)


def log_event(logger: logging.Logger, event: str, **fields: Any) -> str:
    """Log one structured (JSON) line for ``event`` on ``logger`` at ``INFO``; returns the line."""
    line = format_event(event, **fields)
    logger.info(line)
    return line
