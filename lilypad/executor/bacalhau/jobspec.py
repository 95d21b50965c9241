"""Pure translation of a lilypad module run into a Bacalhau v1 Job, and of its result back.

:func:`bacalhau_job` maps a rendered :class:`~lilypad.modules.spec.ModuleSpec`
onto a ``batch`` Job with one task, the way the Docker executor
(:mod:`lilypad.executor.docker_runner`) runs it:

* ``Engine``: ``docker`` with the image (a registry digest reference, see
  :mod:`lilypad.executor.bacalhau.runner`), ``Entrypoint``, ``Parameters``,
  ``EnvironmentVariables`` (exactly the spec's, ``KEY=VALUE``) and ``WorkingDirectory``;
* ``Network``: ``None`` unless the spec says ``Full`` or ``HTTP``; both become
  ``Full``, as in the Docker executor (no domain filtering is promised);
* ``Resources``: CPU (milli-cores), Memory (bytes) and GPU from
  ``Spec.Resources``, else ``machine``, else :class:`~lilypad.executor.ExecutorLimits`'
  defaults, capped by its maxima - the same numbers the Docker executor uses;
* ``Timeouts.ExecutionTimeout``: :func:`~lilypad.executor.docker_runner.effective_timeout`
  (whole seconds, at least 1);
* ``ResultPaths``: ``/outputs`` as ``outputs``, and each other declared output
  ``{Name, Path}``; :func:`arrange_result` moves those under ``outputs/<Name>``
  afterwards, as the Docker executor mounts them;
* ``InputSources``: the verified inputs directory at ``/inputs``, either as a
  ``local`` source, mounted **read-only** (``local_inputs``, or inputs larger
  than ``inline_limit``: the same path must exist on the compute node - a
  cluster on this machine, or a shared file system - and be allowed by the
  nodes' ``Compute.AllowListedLocalPaths``), or inline (a gzipped tar in an
  RFC 2397 ``data:`` URL, Bacalhau's ``inline`` source: it travels in the job,
  so any compute node can run it, but Bacalhau mounts its unpacked copy
  *writable*: a job can change its own copy, never the provider's files);
* ``Publisher``: ``local`` (the result tarball is fetched from the node's URL);
* ``Name``: :func:`job_name` of the deal, so a provider restarted after
  submitting finds the job again instead of submitting it twice.
"""

from __future__ import annotations

import base64
import io
import shutil
import tarfile
from pathlib import Path
from typing import Any

from lilypad.exceptions import ResultLayoutError
from lilypad.executor.docker_runner import (
    INPUTS_PATH,
    OUTPUTS_PATH,
    ExecutorLimits,
    cpu_limit_millis,
    declared_outputs,
    effective_timeout,
    gpu_request_count,
    memory_limit_bytes,
)
from lilypad.modules.spec import ModuleSpec

__all__ = [
    "DEFAULT_INLINE_LIMIT", "JOB_NAME_PREFIX", "RESULT_NAMES",
    "arrange_result", "bacalhau_job", "inputs_source", "job_name", "result_paths",
]

JOB_NAME_PREFIX = "lilypad-"
RESULT_NAMES = ("stdout", "stderr", "exitCode", "outputs")
"""What a result directory holds, exactly (Bacalhau's layout is lilypad's)."""
DEFAULT_INLINE_LIMIT = 512 * 1024
"""Largest compressed inputs sent inline in the job (it travels over NATS, 1 MiB per message)."""


def job_name(job_id: str) -> str:
    """The Bacalhau job name of a lilypad job (a deal id ``0x...`` or any id)."""
    return JOB_NAME_PREFIX + job_id.lower().removeprefix("0x")


def result_paths(spec: ModuleSpec) -> list[dict[str, str]]:
    """``ResultPaths``: ``outputs`` -> ``/outputs`` and each other declared output (validated
    as the Docker executor does, and none named like a file of the result itself)."""
    paths = {"outputs": OUTPUTS_PATH}
    for name, target in declared_outputs(spec, reserved=RESULT_NAMES[:3]):
        paths[name] = target
    return [{"Name": name, "Path": path} for name, path in paths.items()]


def _tar_gz(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory).as_posix()
            if path.is_symlink():
                continue  # lilypad's input checks refuse links; never follow one
            archive.add(path, arcname=relative, recursive=False)
    return buffer.getvalue()


def inputs_source(inputs_dir: Path, inline_limit: int = DEFAULT_INLINE_LIMIT, *,
                  local: bool = False) -> dict[str, Any]:
    """The ``InputSources`` entry giving ``inputs_dir`` to the job at ``/inputs`` (see the module docstring):
    ``local`` (or too large to inline) - the ``local`` source, mounted read-only; else inline."""
    data = b"" if local else _tar_gz(inputs_dir)
    if not local and len(data) <= inline_limit:
        url = "data:application/gzip;base64," + base64.b64encode(data).decode("ascii")
        source: dict[str, Any] = {"Type": "inline", "Params": {"URL": url}}
    else:
        source = {"Type": "local", "Params": {"SourcePath": str(Path(inputs_dir).resolve()), "ReadWrite": False}}
    return {"Alias": "inputs", "Target": INPUTS_PATH, "Source": source}


def bacalhau_job(spec: ModuleSpec, *, image: str, job_id: str, limits: ExecutorLimits | None = None,
                 inputs_dir: Path | None = None, max_cpu_millis: int | None = None,
                 max_memory_bytes: int | None = None, inline_limit: int = DEFAULT_INLINE_LIMIT,
                 local_inputs: bool = False) -> dict[str, Any]:
    """The Bacalhau Job (the object under ``{"Job": ...}``) that runs ``spec`` with ``image``.

    ``max_cpu_millis``/``max_memory_bytes`` are the largest compute node's
    capacity (a job asking for more than any node has would never be placed).
    """
    limits = limits or ExecutorLimits()
    docker = spec.docker
    cpus = (max_cpu_millis + 999) // 1000 if max_cpu_millis else 1 << 20
    cpu = cpu_limit_millis(spec, limits, cpus)
    if max_cpu_millis:
        cpu = min(cpu, max_cpu_millis)
    memory = memory_limit_bytes(spec, limits, max_memory_bytes or 0)
    resources: dict[str, str] = {"CPU": f"{cpu}m", "Memory": str(memory)}
    gpus = gpu_request_count(spec)
    if gpus:
        resources["GPU"] = str(max(gpus, 1))
    params: dict[str, Any] = {"Image": image, "Entrypoint": list(docker.entrypoint),
                              "Parameters": list(docker.parameters),
                              "EnvironmentVariables": [f"{k}={v}" for k, v in docker.environment.items()]}
    if docker.working_directory:
        params["WorkingDirectory"] = docker.working_directory
    network = "Full" if spec.job.spec.network.type in ("Full", "HTTP") else "None"
    task: dict[str, Any] = {
        "Name": "main",
        "Engine": {"Type": "docker", "Params": params},
        "Publisher": {"Type": "local"},
        "ResultPaths": result_paths(spec),
        "Network": {"Type": network},
        "Resources": resources,
        "Timeouts": {"ExecutionTimeout": max(1, int(effective_timeout(spec, limits)))},
    }
    if inputs_dir is not None:
        task["InputSources"] = [inputs_source(Path(inputs_dir), inline_limit, local=local_inputs)]
    return {"Name": job_name(job_id), "Type": "batch", "Count": 1, "Namespace": "default",
            "Labels": {"lilypad": "job"}, "Tasks": [task]}


def arrange_result(result_dir: Path, spec: ModuleSpec) -> None:
    """Give an unpacked Bacalhau result lilypad's layout: each extra result path ``<Name>/``
    moves to ``outputs/<Name>/``; then exactly ``stdout``, ``stderr``, ``exitCode`` and
    ``outputs/`` must be there (:class:`~lilypad.exceptions.ResultLayoutError` otherwise)."""
    outputs = result_dir / "outputs"
    outputs.mkdir(exist_ok=True)
    for entry in result_paths(spec)[1:]:
        moved = result_dir / entry["Name"]
        if moved.exists():
            target = outputs / entry["Name"]
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            moved.rename(target)
    for name in ("stdout", "stderr"):
        (result_dir / name).touch(exist_ok=True)
    found = sorted(p.name for p in result_dir.iterdir())
    if found != sorted(RESULT_NAMES) or not (result_dir / "exitCode").is_file():
        raise ResultLayoutError(str(result_dir), f"a Bacalhau result must hold exactly {sorted(RESULT_NAMES)}, "
                                                 f"found {found}")
