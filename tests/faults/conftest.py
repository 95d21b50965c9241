"""Soak-only fault tests (marked ``soak``: a kill campaign of several minutes, a Docker engine
restart that disrupts every other user of the engine) run only when asked for with ``-m soak``
(``make soak``); any other run deselects them, so ``ape test tests`` never restarts dockerd."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "soak" in (config.getoption("markexpr", "") or ""):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("soak") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
