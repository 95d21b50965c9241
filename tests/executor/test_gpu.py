"""GPU and hardware detection (lilypad.executor.gpu).

The "no NVML" path is the real one on machines without an NVIDIA driver (the
development and CI machines). The "GPU present" path is exercised by
*injecting* a stand-in NVML module (``FakeNVML``): those tests are named
``test_injected_nvml_*`` and only prove that NVML's answers are parsed right;
the real GPU path is proved by ``test_real_gpus_when_nvml_finds_them`` on a
machine that has one.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from lilypad.executor.gpu import (
    MIB,
    GPUInfo,
    HardwareInfo,
    detect_cpu_millis,
    detect_gpus,
    detect_hardware,
    detect_ram_mb,
)


def _real_nvml_works() -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            import pynvml
        pynvml.nvmlInit()
    except Exception:
        return False
    pynvml.nvmlShutdown()
    return True


REAL_NVML = _real_nvml_works()

# The NVML calls detect_gpus makes; the fake below implements exactly these.
NVML_API = (
    "NVMLError",
    "nvmlInit",
    "nvmlShutdown",
    "nvmlSystemGetDriverVersion",
    "nvmlSystemGetCudaDriverVersion",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetMemoryInfo",
)


class FakeNVML:
    """A stand-in for the ``pynvml`` module: fault/feature injection for the GPU-present path."""

    class NVMLError(Exception):
        pass

    class _Memory:
        def __init__(self, total: int) -> None:
            self.total = total
            self.free = total
            self.used = 0

    def __init__(self, devices: list[dict[str, Any]], *, driver: Any = "550.54.15", cuda: int = 12040,
                 init_error: bool = False, broken: tuple[int, ...] = ()) -> None:
        self.devices = devices
        self.driver = driver
        self.cuda = cuda
        self.init_error = init_error
        self.broken = broken
        self.calls: list[str] = []

    def nvmlInit(self) -> None:
        self.calls.append("init")
        if self.init_error:
            raise self.NVMLError("Driver Not Loaded")

    def nvmlShutdown(self) -> None:
        self.calls.append("shutdown")

    def nvmlSystemGetDriverVersion(self) -> Any:
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self.cuda

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if index in self.broken:
            raise self.NVMLError("GPU is lost")
        return index

    def nvmlDeviceGetName(self, handle: int) -> Any:
        return self.devices[handle]["name"]

    def nvmlDeviceGetUUID(self, handle: int) -> Any:
        return self.devices[handle]["uuid"]

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> FakeNVML._Memory:
        return self._Memory(self.devices[handle]["total"])


H100 = {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-11111111-2222-3333-4444-555555555555",
        "total": 85_520_809_984}
A10 = {"name": b"NVIDIA A10G", "uuid": b"GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "total": 24_146_608_128}


# --------------------------------------------------------------------------
# No NVML (real here)
# --------------------------------------------------------------------------


@pytest.mark.skipif(REAL_NVML, reason="covers a machine without an NVIDIA driver, and this one has one (its GPU "
                                       "path is tested by the tests that need a GPU)")
def test_no_nvml_gives_no_gpus_and_does_not_raise() -> None:
    assert detect_gpus() == []
    hardware = detect_hardware()
    assert hardware.gpus == ()
    assert hardware.gpu_count == 0
    assert hardware.max_vram_mb == 0


def test_fault_injection_pynvml_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    assert detect_gpus() == []


def test_fake_nvml_matches_the_real_bindings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import pynvml
    missing = [name for name in NVML_API if not hasattr(pynvml, name)]
    assert missing == []
    assert [name for name in NVML_API if not hasattr(FakeNVML, name)] == []


# --------------------------------------------------------------------------
# GPU present (injected NVML)
# --------------------------------------------------------------------------


def test_injected_nvml_gpu_present_is_parsed() -> None:
    nvml = FakeNVML([H100, A10], driver=b"550.54.15", cuda=12040)
    gpus = detect_gpus(nvml=nvml)
    assert gpus == [
        GPUInfo(index=0, uuid=H100["uuid"], name="NVIDIA H100 80GB HBM3", vram_mb=81559,
                driver_version="550.54.15", cuda_version="12.4"),
        GPUInfo(index=1, uuid="GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", name="NVIDIA A10G", vram_mb=23028,
                driver_version="550.54.15", cuda_version="12.4"),
    ]
    assert all(gpu.vendor == "NVIDIA" for gpu in gpus)
    assert nvml.calls == ["init", "shutdown"]
    hardware = detect_hardware(gpus=gpus)
    assert hardware.gpu_count == 2
    assert hardware.max_vram_mb == 81559


@pytest.mark.parametrize(("cuda", "text"), [(12040, "12.4"), (11080, "11.8"), (12000, "12.0"), (0, "")])
def test_injected_nvml_cuda_version_text(cuda: int, text: str) -> None:
    assert detect_gpus(nvml=FakeNVML([H100], cuda=cuda))[0].cuda_version == text


def test_injected_nvml_init_failure_gives_no_gpus() -> None:
    nvml = FakeNVML([H100], init_error=True)
    assert detect_gpus(nvml=nvml) == []
    assert nvml.calls == ["init"]  # nothing to shut down


def test_injected_nvml_broken_device_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    nvml = FakeNVML([H100, A10], broken=(0,))
    gpus = detect_gpus(nvml=nvml)
    assert [gpu.index for gpu in gpus] == [1]
    assert "skipping GPU 0" in caplog.text
    assert nvml.calls[-1] == "shutdown"


def test_injected_nvml_zero_devices() -> None:
    assert detect_gpus(nvml=FakeNVML([])) == []


@pytest.mark.skipif(not REAL_NVML, reason="needs a GPU: NVML finds none on this machine")
def test_real_gpus_when_nvml_finds_them() -> None:
    gpus = detect_gpus()
    assert gpus, "NVML initialises but detect_gpus found nothing"
    assert all(gpu.name and gpu.uuid.startswith(("GPU-", "MIG-")) and gpu.vram_mb > 0 for gpu in gpus)
    assert [gpu.index for gpu in gpus] == list(range(len(gpus)))


# --------------------------------------------------------------------------
# CPU, RAM, disk
# --------------------------------------------------------------------------


def test_detect_hardware_on_this_machine(tmp_path: Path) -> None:
    hardware = detect_hardware(tmp_path)
    assert isinstance(hardware, HardwareInfo)
    assert 0 < hardware.cpu_millis <= len(os.sched_getaffinity(0)) * 1000
    meminfo_kib = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                           if line.startswith("MemTotal:")).split()[1])
    assert 0 < hardware.ram_mb <= meminfo_kib * 1024 // MIB
    free = shutil.disk_usage(tmp_path).free // MIB
    assert abs(hardware.disk_free_mb - free) <= 256  # other processes write meanwhile


def _fake_cgroupfs(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_cgroup_v2_cpu_quota_takes_the_tightest_ancestor(tmp_path: Path) -> None:
    fs = _fake_cgroupfs(tmp_path / "cg", {
        "cgroup.controllers": "cpu memory pids",
        "cpu.max": "max 100000",
        "jobs/cpu.max": "50000 100000",  # the parent: half a CPU
        "jobs/me/cpu.max": "max 100000",
    })
    proc = _fake_cgroupfs(tmp_path, {"proc-cgroup": "0::/jobs/me\n"}) / "proc-cgroup"
    assert detect_cpu_millis(cgroup_root=fs, proc_cgroup=proc) == 500


def test_cgroup_v2_fractional_quota_rounds_up(tmp_path: Path) -> None:
    fs = _fake_cgroupfs(tmp_path / "cg", {"cgroup.controllers": "cpu", "cpu.max": "15001 100000"})
    proc = _fake_cgroupfs(tmp_path, {"proc-cgroup": "0::/\n"}) / "proc-cgroup"
    assert detect_cpu_millis(cgroup_root=fs, proc_cgroup=proc) == 151


def test_cgroup_v1_cpu_quota(tmp_path: Path) -> None:
    fs = _fake_cgroupfs(tmp_path / "cg", {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "25000",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
        "cpu,cpuacct/cpu.cfs_quota_us": "-1",
        "cpu,cpuacct/cpu.cfs_period_us": "100000",
    })
    lines = "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n"
    proc = _fake_cgroupfs(tmp_path, {"proc-cgroup": lines}) / "proc-cgroup"
    assert detect_cpu_millis(cgroup_root=fs, proc_cgroup=proc) == 250


def test_no_cgroup_quota_means_all_cpus(tmp_path: Path) -> None:
    proc = _fake_cgroupfs(tmp_path, {"proc-cgroup": "0::/\n"}) / "proc-cgroup"
    assert detect_cpu_millis(cgroup_root=tmp_path / "missing", proc_cgroup=proc) == len(os.sched_getaffinity(0)) * 1000


def test_cgroup_memory_limits(tmp_path: Path) -> None:
    meminfo = _fake_cgroupfs(tmp_path, {"meminfo": "MemTotal:       16384000 kB\nMemFree: 1 kB\n"}) / "meminfo"
    v2 = _fake_cgroupfs(tmp_path / "v2", {"cgroup.controllers": "memory", "memory.max": "max",
                                          "job/memory.max": str(2048 * MIB)})
    proc_v2 = _fake_cgroupfs(tmp_path, {"proc-v2": "0::/job\n"}) / "proc-v2"
    assert detect_ram_mb(cgroup_root=v2, proc_cgroup=proc_v2, meminfo=meminfo) == 2048
    v1 = _fake_cgroupfs(tmp_path / "v1", {"memory/memory.limit_in_bytes": "9223372036854771712"})
    proc_v1 = _fake_cgroupfs(tmp_path, {"proc-v1": "4:memory:/\n"}) / "proc-v1"
    assert detect_ram_mb(cgroup_root=v1, proc_cgroup=proc_v1, meminfo=meminfo) == 16384000 * 1024 // MIB
