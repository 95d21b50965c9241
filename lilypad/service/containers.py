"""Cleaning up after a killed service: the job containers it left running."""

from __future__ import annotations

import logging
from pathlib import Path

from lilypad.observability.logs import log_event

__all__ = ["remove_leftover_containers"]


def remove_leftover_containers(data_dir: Path, logger: logging.Logger) -> list[str]:
    """Remove the job containers a killed run of this service left behind (those
    whose work dirs are in ``<data_dir>/runs``; created or running); their ids.
    Deals they belonged to are resumed from the store and run again. A Docker
    engine that cannot be reached is logged, not fatal: jobs retry later."""
    from lilypad.executor import cleanup_stale_containers
    from lilypad.settings import get_settings

    runs_dir = get_settings(data_dir=data_dir).runs_dir
    try:
        removed = cleanup_stale_containers(under=runs_dir)
    except Exception as exc:
        log_event(logger, "leftover_containers_not_checked", error=f"{type(exc).__name__}: {exc}")
        return []
    if removed:
        log_event(logger, "leftover_containers_removed", count=len(removed), ids=[i[:12] for i in removed])
    return removed
