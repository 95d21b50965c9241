"""The Bacalhau executor: run lilypad jobs on a Bacalhau cluster (``--executor bacalhau``).

* :mod:`~lilypad.executor.bacalhau.api` - :class:`BacalhauClient`, a typed
  client of Bacalhau's v1 HTTP API (nodes, jobs, executions, results);
* :mod:`~lilypad.executor.bacalhau.jobspec` - pure translation of a module
  spec into a Bacalhau Job and of its result back into lilypad's layout;
* :mod:`~lilypad.executor.bacalhau.runner` - :class:`BacalhauExecutor`, the
  Docker executor's interface on a cluster (capacity, submit or resume, wait,
  download, CID);
* :mod:`~lilypad.executor.bacalhau.cluster` - :class:`LocalCluster`, an
  orchestrator and compute nodes as separate ``bacalhau serve`` processes on
  loopback, plus the image registry they pull from.

Names are imported on first use (``import lilypad.executor.bacalhau`` loads
neither httpx nor the Docker SDK).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["BacalhauClient", "BacalhauExecutor", "Capacity", "LocalCluster", "bacalhau_job"]

_HOMES = {"BacalhauClient": "api", "BacalhauExecutor": "runner", "Capacity": "runner",
          "LocalCluster": "cluster", "bacalhau_job": "jobspec"}

if TYPE_CHECKING:
    from lilypad.executor.bacalhau.api import BacalhauClient
    from lilypad.executor.bacalhau.cluster import LocalCluster
    from lilypad.executor.bacalhau.jobspec import bacalhau_job
    from lilypad.executor.bacalhau.runner import BacalhauExecutor, Capacity


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
