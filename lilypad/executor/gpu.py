"""What this machine can offer: CPUs, RAM, free disk and NVIDIA GPUs.

GPUs are found through NVML (the ``pynvml`` bindings of ``libnvidia-ml``).
:func:`detect_gpus` returns ``[]`` whenever NVML is unusable - the bindings
are missing, the shared library is not installed, there is no driver, or
``nvmlInit`` fails - so a machine without GPUs degrades to CPU-only offers
instead of failing. Per-device query errors drop that device (logged).

Units: VRAM and RAM in MiB (2**20 bytes, as ``nvidia-smi`` prints them), which
is what lilypad's ``machine.ram`` / ``vram`` "MB" fields are compared against;
CPU in milli-cores.

CPU milli-cores are the CPUs this process may run on (``sched_getaffinity``),
lowered by a CFS quota of its cgroup or any ancestor (cgroup v2 ``cpu.max``,
v1 ``cpu.cfs_quota_us``/``cpu.cfs_period_us``). RAM is ``MemTotal`` lowered by
a cgroup memory limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "GPUInfo",
    "HardwareInfo",
    "MIB",
    "detect_cpu_millis",
    "detect_gpus",
    "detect_hardware",
    "detect_ram_mb",
]

log = logging.getLogger(__name__)

MIB = 1 << 20
"""Bytes in the "MB" lilypad uses for RAM and VRAM (a mebibyte, as nvidia-smi)."""

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_PROC_CGROUP = Path("/proc/self/cgroup")
_MEMINFO = Path("/proc/meminfo")
_UNLIMITED_BYTES = 1 << 60  # cgroup v1 writes ~2**63 rounded to pages for "no limit"


@dataclass(frozen=True)
class GPUInfo:
    """One NVIDIA GPU as NVML reports it."""

    index: int
    uuid: str
    name: str
    vram_mb: int  # total memory, MiB
    driver_version: str
    cuda_version: str  # the driver's CUDA API version, "12.4"; "" when unknown
    vendor: str = "NVIDIA"


@dataclass(frozen=True)
class HardwareInfo:
    """What this machine can offer to jobs."""

    cpu_millis: int
    ram_mb: int
    disk_free_mb: int
    gpus: tuple[GPUInfo, ...] = field(default_factory=tuple)

    @property
    def gpu_count(self) -> int:
        """How many GPUs NVML found."""
        return len(self.gpus)

    @property
    def max_vram_mb(self) -> int:
        """The largest GPU memory (MiB), 0 without GPUs."""
        return max((gpu.vram_mb for gpu in self.gpus), default=0)


# --------------------------------------------------------------------------
# GPUs (NVML)
# --------------------------------------------------------------------------


def _text(value: Any) -> str:
    """NVML strings: ``str`` in nvidia-ml-py >= 11.515, ``bytes`` before."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").rstrip("\x00")
    return str(value)


def _cuda_version(value: Any) -> str:
    """NVML's CUDA driver version integer (``12040``) as ``"12.4"``."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return ""
    if number <= 0:
        return ""
    return f"{number // 1000}.{(number % 1000) // 10}"


def _load_pynvml() -> Any | None:
    try:
        with warnings.catch_warnings():
            # pynvml 13 is a shim over nvidia-ml-py that warns on import.
            warnings.simplefilter("ignore", FutureWarning)
            import pynvml
    except Exception as exc:  # ImportError, or a broken install
        log.debug("NVML bindings unavailable: %s", exc)
        return None
    return pynvml


def detect_gpus(*, nvml: Any | None = None) -> list[GPUInfo]:
    """The NVIDIA GPUs NVML sees, in NVML index order; ``[]`` when NVML is unusable.

    ``nvml`` is the NVML binding module to use (default: ``pynvml``); tests
    pass a stand-in to exercise the "GPU present" path on machines without one.
    Never raises because NVML is missing, has no driver or fails to initialise.
    """
    module = nvml if nvml is not None else _load_pynvml()
    if module is None:
        return []
    nvml_error: type[BaseException] = getattr(module, "NVMLError", Exception)
    try:
        module.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, OSError, ...
        log.debug("NVML unavailable: %s", exc)
        return []
    try:
        try:
            driver = _text(module.nvmlSystemGetDriverVersion())
        except nvml_error:
            driver = ""
        try:
            cuda = _cuda_version(module.nvmlSystemGetCudaDriverVersion())
        except (nvml_error, AttributeError):
            cuda = ""
        try:
            count = int(module.nvmlDeviceGetCount())
        except nvml_error as exc:
            log.warning("NVML initialised but cannot count devices: %s", exc)
            return []
        gpus = []
        for index in range(count):
            try:
                handle = module.nvmlDeviceGetHandleByIndex(index)
                gpus.append(GPUInfo(
                    index=index,
                    uuid=_text(module.nvmlDeviceGetUUID(handle)),
                    name=_text(module.nvmlDeviceGetName(handle)),
                    vram_mb=int(module.nvmlDeviceGetMemoryInfo(handle).total) // MIB,
                    driver_version=driver,
                    cuda_version=cuda,
                ))
            except nvml_error as exc:
                log.warning("skipping GPU %d: NVML error %s", index, exc)
        return gpus
    finally:
        try:
            module.nvmlShutdown()
        except Exception as exc:  # shutting down must never hide the result
            log.debug("nvmlShutdown failed: %s", exc)


# --------------------------------------------------------------------------
# cgroups, CPU, RAM, disk
# --------------------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_dirs(controller: str | None, cgroup_root: Path, proc_cgroup: Path) -> list[Path]:
    """Directories holding this process's cgroup (leaf first, then ancestors).

    ``controller`` is a v1 controller name (``cpu``, ``memory``); ``None``
    means the v2 unified hierarchy. Where the recorded path is not visible
    under the mount (a namespaced mount shows its own root), the mount root
    stands in.
    """
    text = _read(proc_cgroup) or ""
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if controller is None:
            if hierarchy != "0" or controllers:
                continue
            base = cgroup_root
            if not (base / "cgroup.controllers").exists():
                base = cgroup_root / "unified"
        else:
            if controller not in controllers.split(","):
                continue
            mounts = [cgroup_root / name for name in (controllers, controller, "cpu,cpuacct")
                      if (cgroup_root / name).is_dir()]
            if not mounts:
                return []
            base = mounts[0]
        if not base.is_dir():
            return []
        leaf = base / path.lstrip("/")
        if not leaf.is_dir():
            return [base]
        dirs = [leaf]
        while dirs[-1] != base and base in dirs[-1].parents:
            dirs.append(dirs[-1].parent)
        return dirs
    return []


def _cpu_quota_millis(cgroup_root: Path, proc_cgroup: Path) -> int | None:
    """The tightest CFS quota on this process's cgroup path, in milli-cores."""
    best: int | None = None
    for directory in _cgroup_dirs(None, cgroup_root, proc_cgroup):  # v2
        parts = (_read(directory / "cpu.max") or "").split()
        if len(parts) == 2 and parts[0] != "max" and parts[0].isdigit() and parts[1].isdigit():
            millis = math.ceil(int(parts[0]) * 1000 / max(int(parts[1]), 1))
            best = millis if best is None else min(best, millis)
    for directory in _cgroup_dirs("cpu", cgroup_root, proc_cgroup):  # v1
        quota = _read(directory / "cpu.cfs_quota_us")
        period = _read(directory / "cpu.cfs_period_us")
        if quota and period and quota.lstrip("-").isdigit() and period.isdigit() and int(quota) > 0:
            millis = math.ceil(int(quota) * 1000 / max(int(period), 1))
            best = millis if best is None else min(best, millis)
    return best


def detect_cpu_millis(*, cgroup_root: Path = _CGROUP_ROOT, proc_cgroup: Path = _PROC_CGROUP) -> int:
    """CPU milli-cores this process may use: its CPU affinity, lowered by a cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    millis = cpus * 1000
    quota = _cpu_quota_millis(cgroup_root, proc_cgroup)
    return max(1, min(millis, quota)) if quota else millis


def _total_ram_bytes(meminfo: Path) -> int:
    for line in (_read(meminfo) or "").splitlines():
        if line.startswith("MemTotal:"):
            value, _, unit = line.split(":", 1)[1].strip().partition(" ")
            return int(value) * (1024 if unit.strip().lower() == "kb" else 1)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def detect_ram_mb(*, cgroup_root: Path = _CGROUP_ROOT, proc_cgroup: Path = _PROC_CGROUP,
                  meminfo: Path = _MEMINFO) -> int:
    """RAM in MiB: ``MemTotal`` lowered by a cgroup memory limit on this process's path."""
    total = _total_ram_bytes(meminfo)
    limits = []
    for directory in _cgroup_dirs(None, cgroup_root, proc_cgroup):
        value = _read(directory / "memory.max")
        if value and value.isdigit():
            limits.append(int(value))
    for directory in _cgroup_dirs("memory", cgroup_root, proc_cgroup):
        value = _read(directory / "memory.limit_in_bytes")
        if value and value.isdigit() and int(value) < _UNLIMITED_BYTES:
            limits.append(int(value))
    return min([total, *limits]) // MIB


def detect_hardware(disk_path: str | os.PathLike[str] = ".", *,
                    gpus: list[GPUInfo] | None = None) -> HardwareInfo:
    """CPU milli-cores, RAM (MiB), free disk at ``disk_path`` (MiB) and GPUs.

    ``gpus`` skips NVML detection when given (e.g. already detected).
    """
    return HardwareInfo(
        cpu_millis=detect_cpu_millis(),
        ram_mb=detect_ram_mb(),
        disk_free_mb=shutil.disk_usage(os.fspath(disk_path)).free // MIB,
        gpus=tuple(detect_gpus() if gpus is None else gpus),
    )
