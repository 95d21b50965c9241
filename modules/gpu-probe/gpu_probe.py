#!/usr/bin/env python3
"""Print the NVIDIA GPUs visible in this container (lilypad's ``gpu-probe`` module).

Asks ``nvidia-smi`` when the NVIDIA container runtime mounted it, else NVML
directly through ``ctypes`` (``libnvidia-ml.so.1``, also mounted by the
runtime; no pynvml needed). Prints one line per GPU, writes
``/outputs/gpus.json`` and exits 0; exits 1, saying why on stderr, when no
GPU is visible.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import sys
from pathlib import Path


def from_nvidia_smi() -> list[dict[str, object]] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total,driver_version,uuid", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=60, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"gpu-probe: nvidia-smi failed: {exc}", file=sys.stderr)
        return None
    if done.returncode != 0:
        print(f"gpu-probe: nvidia-smi exited {done.returncode}: {done.stderr.strip()}", file=sys.stderr)
        return None
    gpus = []
    for line in done.stdout.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) == 5:
            index, name, memory, driver, uuid = fields
            gpus.append({"index": int(index), "name": name, "vram_mib": int(float(memory)),
                         "driver": driver, "uuid": uuid, "source": "nvidia-smi"})
    return gpus


class _Memory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


def from_nvml() -> list[dict[str, object]] | None:
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError as exc:
        print(f"gpu-probe: NVML library not found: {exc}", file=sys.stderr)
        return None
    if nvml.nvmlInit_v2() != 0:
        print("gpu-probe: nvmlInit failed (no driver?)", file=sys.stderr)
        return None
    try:
        buffer = ctypes.create_string_buffer(96)
        driver = nvml.nvmlSystemGetDriverVersion(buffer, 96) == 0 and buffer.value.decode() or ""
        count = ctypes.c_uint(0)
        if nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
            return None
        gpus = []
        for index in range(count.value):
            handle = ctypes.c_void_p()
            memory = _Memory()
            if nvml.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) != 0:
                continue
            name = nvml.nvmlDeviceGetName(handle, buffer, 96) == 0 and buffer.value.decode() or "?"
            uuid = nvml.nvmlDeviceGetUUID(handle, buffer, 96) == 0 and buffer.value.decode() or ""
            vram = memory.total // (1 << 20) if nvml.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(memory)) == 0 else 0
            gpus.append({"index": index, "name": name, "vram_mib": vram, "driver": driver,
                         "uuid": uuid, "source": "nvml"})
        return gpus
    finally:
        nvml.nvmlShutdown()


def main(outputs: Path = Path("/outputs")) -> int:
    gpus = from_nvidia_smi()
    if not gpus:
        gpus = from_nvml()
    if not gpus:
        print("gpu-probe: no NVIDIA GPU is visible in this container "
              "(run it on a GPU provider with the NVIDIA container toolkit)", file=sys.stderr)
        return 1
    for gpu in gpus:
        print(f"GPU {gpu['index']}: {gpu['name']} ({gpu['vram_mib']} MiB, driver {gpu['driver']})")
    if outputs.is_dir():
        (outputs / "gpus.json").write_text(json.dumps(gpus, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
