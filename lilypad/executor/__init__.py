"""The executor: run a module's container in a sandbox and describe this machine.

* :mod:`lilypad.executor.docker_runner` - :func:`run_module` (images, sandbox,
  timeout, output caps, the ``stdout``/``stderr``/``exitCode``/``outputs/``
  result directory and its CID) and :func:`cleanup_stale_containers`;
* :mod:`lilypad.executor.gpu` - :func:`detect_gpus` (NVML, ``[]`` without it)
  and :func:`detect_hardware` (CPU milli-cores, RAM, disk, GPUs).
* :mod:`lilypad.executor.bacalhau` - the same runs as Bacalhau jobs on a cluster
  (``lilypad resource-provider --executor bacalhau``).

The names below are imported on first use, so ``import lilypad.executor``
stays cheap (the Docker SDK is only loaded when a runner name is touched).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "ExecutorLimits",
    "GPUInfo",
    "HardwareInfo",
    "RunResult",
    "cleanup_stale_containers",
    "detect_gpus",
    "detect_hardware",
    "docker_client",
    "ensure_image",
    "run_module",
    "run_sandboxed",
]

_HOMES = {
    "ExecutorLimits": "docker_runner",
    "RunResult": "docker_runner",
    "cleanup_stale_containers": "docker_runner",
    "docker_client": "docker_runner",
    "ensure_image": "docker_runner",
    "run_module": "docker_runner",
    "run_sandboxed": "docker_runner",
    "GPUInfo": "gpu",
    "HardwareInfo": "gpu",
    "detect_gpus": "gpu",
    "detect_hardware": "gpu",
}

if TYPE_CHECKING:
    from lilypad.executor.docker_runner import (
        ExecutorLimits,
        RunResult,
        cleanup_stale_containers,
        docker_client,
        ensure_image,
        run_module,
        run_sandboxed,
    )
    from lilypad.executor.gpu import GPUInfo, HardwareInfo, detect_gpus, detect_hardware


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
