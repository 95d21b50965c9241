"""Run a module's container in a sandbox and collect its result directory.

:func:`run_module` takes a rendered :class:`~lilypad.modules.spec.ModuleSpec`
and leaves, in ``work_dir``, exactly the layout Lilypad users know::

    work_dir/stdout     the container's standard output (capped, see ExecutorLimits)
    work_dir/stderr     its standard error, kept apart (no timestamps, no interleaving)
    work_dir/exitCode   the exit code as text, no newline (Bacalhau's fmt.Sprint(code))
    work_dir/outputs/   bind-mounted read-write at /outputs

and returns a :class:`RunResult` with the directory's UnixFS CID (the data id).

Images: no registry is reachable, so the spec's image must be in the local
engine, or the module directory must hold a ``Dockerfile``, built once and
tagged ``lilypad-module/<dir name>:<hash of the directory's files>`` (also
for a digest-pinned ``name@sha256:...`` the engine lacks).

The sandbox (every container, whatever the module asks):

* ``network_mode="none"`` (only ``lo``) unless ``Network.Type`` is ``Full`` or
  ``HTTP``; those get the default bridge. ``HTTP`` is *not* restricted to its
  ``Domains`` (there is no filtering proxy), so treat it as ``Full``;
* ``cap_drop=["ALL"]``, ``security_opt=["no-new-privileges"]``, private IPC,
  hostname ``lilypad`` (not the random container id, for determinism);
* a read-only root file system; ``/tmp`` is a size-limited tmpfs, ``/outputs``
  the only writable host path and ``/inputs`` (when given) read-only;
* ``pids_limit``, a memory limit without swap (``memswap_limit = mem_limit``)
  and ``nano_cpus``, from ``Spec.Resources`` (else ``machine``, else the
  defaults of :class:`ExecutorLimits`), capped by the limits and the engine;
* log driver ``none``: output is read live via ``attach`` (made before the
  start) and written capped; nothing unbounded lands on the engine's disk;
* a hard timeout, ``min(Spec.Timeout, executionTimeoutSeconds)`` (else
  ``default_timeout``) capped by ``max_timeout``: the container is killed and
  ``exitCode`` says 124, as GNU ``timeout`` does;
* GPUs only when the spec asks for them (``Resources.GPU: "all"``: every GPU
  of this machine, as ``docker run --gpus all``); refused with
  :class:`~lilypad.exceptions.GPUUnavailableError` *before* anything starts
  when this machine has none or too few;
* the environment is exactly the spec's ``EnvironmentVariables``, each passed
  as ``KEY=VALUE`` (an entry without ``=`` is ``KEY=``): nothing of the
  provider's own environment reaches the container.

Before anything runs, :func:`~lilypad.modules.spec.check_runnable` refuses a
spec the original would load but could not run (no image, a relative output
path, ...) with a :class:`~lilypad.exceptions.SpecError` naming the field.

:func:`run_sandboxed` runs another image (a module's verifier container,
:mod:`lilypad.verification.verifier`) in the same sandbox, with no network and
only read-only mounts.

Containers carry the label ``lilypad.job=<job id>`` and are removed in a
``finally`` on every path (success, failure, timeout, exceptions, Ctrl-C);
:func:`cleanup_stale_containers` removes any a killed process left. When
:func:`run_module` raises, it deletes the partial result.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import docker
import docker.errors
import requests
from docker.models.containers import Container
from docker.types import DeviceRequest, LogConfig, Mount

from lilypad.exceptions import (
    ContainerError,
    DockerUnavailableError,
    GPUUnavailableError,
    ImageBuildError,
    ImageNotAvailableError,
    OutputTooLargeError,
    SpecError,
    WorkDirError,
)
from lilypad.executor.gpu import MIB, GPUInfo, detect_gpus
from lilypad.modules.spec import ModuleSpec, check_runnable
from lilypad.results.cid import directory_cid

__all__ = [
    "IMAGE_REPOSITORY", "INPUTS_PATH", "JOB_LABEL", "OUTPUTS_PATH", "TIMEOUT_EXIT_CODE",
    "ExecutorLimits", "RunResult",
    "check_inputs", "cleanup_stale_containers", "cpu_limit_millis", "declared_outputs", "docker_client",
    "effective_timeout", "ensure_image", "gpu_request_count", "memory_limit_bytes", "module_image_tag", "output_usage",
    "required_gpus", "run_module", "run_sandboxed",
]

log = logging.getLogger(__name__)

JOB_LABEL = "lilypad.job"
"""Label on every job container; its value is the job id."""
IMAGE_REPOSITORY = "lilypad-module"
"""Repository of images built from modules' Dockerfiles."""
OUTPUTS_PATH = "/outputs"
INPUTS_PATH = "/inputs"
TIMEOUT_EXIT_CODE = 124
#: Exit codes of a container whose PID 1 died of SIGKILL (137) or SIGTERM (143) sent from outside.
_KILLED_FROM_OUTSIDE = frozenset({128 + 9, 128 + 15})
"""``exitCode`` of a job killed at its timeout (GNU ``timeout``'s code)."""

_RESULT_NAMES = ("stdout", "stderr", "exitCode", "outputs")
_MIN_MEMORY = 16 * MIB
_MIN_CPU_MILLIS = 10
_BUILD_TIMEOUT_S = 1800
_REMOVE_TIMEOUT_S = 30
_CAPTURE_JOIN_S = 30.0
_TAG_NAME_RE = re.compile(r"[^a-z0-9._-]+")
_COMMIT_RE = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_ENGINE_INFO: dict[str, tuple[int, int]] = {}


@dataclass(frozen=True)
class ExecutorLimits:
    """Caps and defaults a provider applies to every job (times in seconds)."""

    max_timeout: float = 3600.0
    default_timeout: float = 900.0  # the original's execution timeout
    max_output_bytes: int = 1 << 30  # outputs/ + stdout + stderr
    max_output_files: int = 100_000  # entries under outputs/
    max_log_bytes: int = 16 * MIB  # each of stdout and stderr; the rest is dropped
    default_memory_bytes: int = 1024 * MIB
    max_memory_bytes: int | None = None  # None: the engine's total memory
    default_cpu_millis: int = 1000
    max_cpu_millis: int | None = None  # None: the engine's CPUs
    pids_limit: int = 512
    tmpfs_bytes: int = 64 * MIB  # /tmp (counted in the memory limit)
    user: str | None = None  # e.g. "65534:65534"; None: the image's USER
    poll_interval: float = 0.5  # how often the timeout and output size are checked

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if name != "user" and value is not None and value <= 0:
                raise ValueError(f"ExecutorLimits.{name} must be positive, got {value!r}")


@dataclass(frozen=True)
class RunResult:
    """A finished job: its result directory and what happened."""

    result_dir: Path
    cid: str  # directory_cid(result_dir)
    exit_code: int
    timed_out: bool
    duration_s: float  # from container start to exit
    image: str  # the image that ran (a built module's content tag)
    oom_killed: bool = False
    stdout_truncated: bool = False
    stderr_truncated: bool = False


# --------------------------------------------------------------------------
# Engine, images
# --------------------------------------------------------------------------


def docker_client(timeout: int = 120) -> docker.DockerClient:
    """A client for the local engine (``DOCKER_HOST`` etc.), checked with a ping.

    Raises :class:`~lilypad.exceptions.DockerUnavailableError` (which says to
    run ``make setup``) when the engine does not answer.
    """
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise DockerUnavailableError(str(exc)) from None
    return client


def _engine_caps(client: docker.DockerClient) -> tuple[int, int]:
    """The engine's CPU count and total memory (bytes), cached per engine."""
    key = str(client.api.base_url)
    if key not in _ENGINE_INFO:
        info = client.info()
        _ENGINE_INFO[key] = (int(info.get("NCPU") or 1), int(info.get("MemTotal") or 0))
    return _ENGINE_INFO[key]


def _image_exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as exc:  # e.g. an invalid reference
        log.debug("image %s: %s", ref, exc)
        return False
    return True


def _hash_tree(directory: Path, relative: str, digest: Any) -> None:
    with os.scandir(directory) as iterator:
        entries = sorted(iterator, key=lambda entry: entry.name)
    for entry in entries:
        name = f"{relative}{entry.name}"
        if entry.is_symlink():
            digest.update(b"L\0" + os.fsencode(name) + b"\0" + os.fsencode(os.readlink(entry.path)) + b"\0")
        elif entry.is_dir(follow_symlinks=False):
            if entry.name != ".git" or relative:
                digest.update(b"D\0" + os.fsencode(name) + b"\0")
                _hash_tree(Path(entry.path), name + "/", digest)
        elif entry.is_file(follow_symlinks=False):
            executable = entry.stat(follow_symlinks=False).st_mode & 0o111
            digest.update(b"F\0" + os.fsencode(name) + b"\0" + (b"x" if executable else b"-"))
            file_digest = hashlib.sha256()
            with open(entry.path, "rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    file_digest.update(block)
            digest.update(file_digest.digest())


def module_image_tag(module_dir: Path) -> str:
    """``lilypad-module/<dir name>:<content hash>`` for a module directory.

    The hash covers every file's path, executable bit and bytes, and symlinks
    (a top-level ``.git`` is skipped), so the tag changes exactly when the
    build context does. A directory named by a commit hash (a module cache
    checkout, ``<repo key>/<commit>``) is named after its parent.
    """
    module_dir = Path(module_dir).resolve()
    digest = hashlib.sha256(b"lilypad-module-context-v1\0")
    _hash_tree(module_dir, "", digest)
    label = module_dir.parent.name if _COMMIT_RE.fullmatch(module_dir.name) else module_dir.name
    name = _TAG_NAME_RE.sub("-", label.lower()).strip("._-")[:64] or "module"
    return f"{IMAGE_REPOSITORY}/{name}:{digest.hexdigest()[:24]}"


def _build(client: docker.DockerClient, module_dir: Path, tag: str) -> None:
    started = time.monotonic()
    try:
        client.images.build(path=str(module_dir), tag=tag, rm=True, forcerm=True, pull=False,
                            labels={"org.lilypad.module-context": tag.rpartition(":")[2]}, timeout=_BUILD_TIMEOUT_S)
    except docker.errors.BuildError as exc:
        lines = "".join(str(item.get("stream") or item.get("error") or "") for item in exc.build_log)
        reason = str(exc.msg)
        if any(word in reason.lower() for word in ("pull access", "registry", "dial tcp", "lookup ", "manifest")):
            reason += (" (no image registry is reachable: FROM must name an image in the local engine, "
                       "such as lilypad/busybox:1 or lilypad/python:3-bookworm)")
        raise ImageBuildError(tag, str(module_dir), reason, lines[-2000:].strip()) from None
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        raise ImageBuildError(tag, str(module_dir), str(exc)) from None
    log.info("built %s from %s in %.1fs", tag, module_dir, time.monotonic() - started)


def ensure_image(image: str, module_dir: Path | None, client: docker.DockerClient) -> str:
    """The image reference to run for a spec image, building it when needed.

    ``image`` itself when the engine has it; else the content-tagged build of
    ``module_dir/Dockerfile`` (reused when already built); else
    :class:`~lilypad.exceptions.ImageNotAvailableError`.
    """
    if _image_exists(client, image):
        return image
    if module_dir is not None and (Path(module_dir) / "Dockerfile").is_file():
        tag = module_image_tag(Path(module_dir))
        if not _image_exists(client, tag):
            _build(client, Path(module_dir), tag)
        return tag
    where = f"{module_dir} has no Dockerfile" if module_dir is not None else "no module directory was given"
    pinned = " (a digest-pinned image is only found if it was pulled or loaded before)" if "@sha256:" in image else ""
    raise ImageNotAvailableError(image, f"the local Docker engine does not have it{pinned} and {where} to build it "
                                        "from; no image registry is reachable from here, so `docker pull` cannot "
                                        "fetch it (`docker load` it, or give the module a Dockerfile FROM a local "
                                        "base image)")


# --------------------------------------------------------------------------
# Spec -> container settings
# --------------------------------------------------------------------------


def required_gpus(spec: ModuleSpec) -> int:
    """How many GPUs a module needs at least: ``machine.gpu``, ``Resources.GPU``
    (``"all"`` counts as 1) or listed ``machine.gpus``."""
    asked = spec.job.spec.resources.gpu_count
    return max(spec.machine.gpu, 1 if asked == "all" else asked or 0, len(spec.machine.gpus))


def gpu_request_count(spec: ModuleSpec) -> int:
    """The count of the container's GPU ``DeviceRequest``: -1 (every GPU of this
    machine, ``docker run --gpus all``) for ``Resources.GPU: "all"``, else
    :func:`required_gpus` (0: no request)."""
    return -1 if spec.job.spec.resources.gpu_count == "all" else required_gpus(spec)


def effective_timeout(spec: ModuleSpec, limits: ExecutorLimits) -> float:
    """``min(Spec.Timeout, executionTimeoutSeconds)`` (0/absent: unset; none: the
    default), capped by ``limits.max_timeout``."""
    asked = [t for t in (spec.job.spec.timeout, spec.execution_timeout_seconds) if t]
    return float(min(min(asked) if asked else limits.default_timeout, limits.max_timeout))


def _check_gpus(spec: ModuleSpec, need: int, gpus: list[GPUInfo]) -> None:
    if not gpus:
        raise GPUUnavailableError(need, 0, "no NVIDIA GPU was detected on this machine (NVML is unavailable "
                                           "or reports none); the job must run on a GPU provider")
    if len(gpus) < need:
        raise GPUUnavailableError(need, len(gpus), "this machine has fewer GPUs than the module asks for")
    largest = max(gpu.vram_mb for gpu in gpus)
    if spec.machine.max_vram > largest:
        raise GPUUnavailableError(need, len(gpus), f"the module needs {spec.machine.max_vram} MB of VRAM; "
                                                   f"the largest GPU here has {largest} MB")


def memory_limit_bytes(spec: ModuleSpec, limits: ExecutorLimits, engine_memory: int) -> int:
    asked = spec.job.spec.resources.memory_bytes or spec.machine.ram * MIB or limits.default_memory_bytes
    cap = limits.max_memory_bytes or engine_memory or asked
    return max(_MIN_MEMORY, min(asked, cap))


def cpu_limit_millis(spec: ModuleSpec, limits: ExecutorLimits, engine_cpus: int) -> int:
    asked = spec.job.spec.resources.cpu_millis or spec.machine.cpu or limits.default_cpu_millis
    cap = min(limits.max_cpu_millis or engine_cpus * 1000, engine_cpus * 1000)
    return max(_MIN_CPU_MILLIS, min(asked, cap))


def _plain_name(name: str) -> bool:
    return name not in ("", ".", "..") and not name.startswith(".") and not any(c in name for c in "/\\\0")


def declared_outputs(spec: ModuleSpec, *, reserved: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Each declared output ``{Name, Path}`` other than ``/outputs`` itself (or a path under
    it), as ``(Name, container path)``, checked in order: no system path or ``/inputs`` as
    the path; the name ``outputs`` or a plain file name, and none of ``reserved`` (an
    executor's own result names). Both executors take their outputs from here."""
    found = []
    for index, output in enumerate(spec.job.spec.outputs):
        target = output.path.rstrip("/") or "/"
        if target == OUTPUTS_PATH or target.startswith(OUTPUTS_PATH + "/"):
            continue
        where = f"job.Spec.Outputs[{index}]"
        if target in ("/", "/tmp", "/proc", "/sys", "/dev", INPUTS_PATH) or target.startswith(INPUTS_PATH + "/"):
            raise SpecError(f"{where}.Path", f"{output.path!r} cannot be an output directory")
        if (output.name != "outputs" and not _plain_name(output.name)) or output.name in reserved:
            raise SpecError(f"{where}.Name", f"{output.name!r} must be a plain file name to hold that output")
        found.append((output.name, target))
    return found


def _output_dirs(spec: ModuleSpec, work_dir: Path) -> list[tuple[str, Path]]:
    """(container path, host dir) pairs: ``/outputs`` -> ``outputs/``, and any other
    declared output ``{Name, Path}`` -> ``outputs/<Name>`` (``Name`` "outputs": ``outputs/``)."""
    pairs = [(OUTPUTS_PATH, work_dir / "outputs")]
    for name, target in declared_outputs(spec):
        pairs.append((target, work_dir / "outputs" / ("" if name == "outputs" else name)))
    unique = dict(pairs)  # the last mapping of a repeated path wins, as in Docker
    return list(unique.items())


def _sandbox_kwargs(image: str, mounts: list[Mount], limits: ExecutorLimits, memory: int, cpu_millis: int,
                    network_mode: str, job_id: str) -> dict[str, Any]:
    """The container settings every sandboxed container gets (see the module docstring)."""
    return {
        "image": image,
        "user": limits.user,
        "hostname": "lilypad",
        "labels": {JOB_LABEL: job_id},
        "network_mode": network_mode,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "ipc_mode": "private",
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={limits.tmpfs_bytes},mode=1777"},
        "mounts": mounts,
        "pids_limit": limits.pids_limit,
        "mem_limit": memory,
        "memswap_limit": memory,
        "nano_cpus": cpu_millis * 1_000_000,
        "log_config": LogConfig(type="none"),
        "stdin_open": False,
        "tty": False,
    }


def _container_kwargs(spec: ModuleSpec, image: str, outputs: list[tuple[str, Path]], inputs_dir: Path | None,
                      limits: ExecutorLimits, gpu_count: int, engine: tuple[int, int], job_id: str) -> dict[str, Any]:
    docker_spec = spec.docker
    mounts = [Mount(target, str(host), type="bind", read_only=False) for target, host in outputs]
    if inputs_dir is not None:
        mounts.append(Mount(INPUTS_PATH, str(inputs_dir), type="bind", read_only=True))
    network = "bridge" if spec.job.spec.network.type in ("Full", "HTTP") else "none"
    kwargs = _sandbox_kwargs(image, mounts, limits, memory_limit_bytes(spec, limits, engine[1]),
                             cpu_limit_millis(spec, limits, engine[0]), network, job_id)
    kwargs.update({
        "entrypoint": list(docker_spec.entrypoint) or None,
        "command": list(docker_spec.parameters) or None,
        "environment": [f"{key}={value}" for key, value in docker_spec.environment.items()],
        "working_dir": docker_spec.working_directory or None,
    })
    if gpu_count:
        kwargs["device_requests"] = [DeviceRequest(count=gpu_request_count(spec), capabilities=[["gpu"]])]
    return kwargs


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------


class _Capture:
    """Reads a container's stdout and stderr (attached before start) into two capped files."""

    def __init__(self, container: Container, work_dir: Path, cap: int) -> None:
        self.cap = cap
        self.written = {"stdout": 0, "stderr": 0}
        self.truncated = {"stdout": False, "stderr": False}
        self.error: BaseException | None = None
        self._files: dict[str, BinaryIO] = {  # closed in close()
            name: open(work_dir / name, "wb") for name in self.written  # noqa: SIM115
        }
        try:
            self._stream = container.attach(stdout=True, stderr=True, stream=True, logs=False, demux=True)
        except BaseException:
            self.close_files()
            raise
        self._thread = threading.Thread(target=self._pump, name=f"lilypad-capture-{container.short_id}", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            for out, err in self._stream:
                self._write("stdout", out)
                self._write("stderr", err)
        except Exception as exc:  # reported by finish()
            self.error = exc

    def _write(self, name: str, data: bytes | None) -> None:
        if not data:
            return
        room = self.cap - self.written[name]
        if len(data) > room:
            self.truncated[name] = True
            data = data[:max(room, 0)]
        if data:
            self._files[name].write(data)
            self.written[name] += len(data)

    def finish(self, timeout: float) -> bool:
        """Wait for the streams to end (closing them after ``timeout``); True if they ended."""
        self._thread.join(timeout)
        ended = not self._thread.is_alive()
        if not ended:
            self._stream.close()
            self._thread.join(5.0)
        self.close_files()
        return ended

    def close_files(self) -> None:
        for stream in self._files.values():
            stream.close()


def output_usage(outputs_dir: Path, limits: ExecutorLimits, extra_bytes: int = 0) -> int:
    """Bytes under ``outputs_dir`` (plus ``extra_bytes``); raises OutputTooLargeError
    as soon as a cap is passed. Symlinks are not followed (they count their own size)."""
    total, files, pending = extra_bytes, 0, [str(outputs_dir)]
    if total > limits.max_output_bytes:
        raise OutputTooLargeError("bytes", total, limits.max_output_bytes)
    while pending:
        try:
            iterator = os.scandir(pending.pop())
        except OSError:
            continue  # removed meanwhile, or unreadable: the CID step reports it
        with iterator:
            for entry in iterator:
                files += 1
                if files > limits.max_output_files:
                    raise OutputTooLargeError("files", files, limits.max_output_files)
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(info.st_mode):
                    pending.append(entry.path)
                else:
                    total += info.st_size
                if total > limits.max_output_bytes:
                    raise OutputTooLargeError("bytes", total, limits.max_output_bytes)
    return total


def _wait(container: Container, timeout: float, limits: ExecutorLimits, outputs_dir: Path) -> tuple[int, bool]:
    """Wait for exit or kill at ``timeout``; check the output size meanwhile. (exit code, timed out)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            try:
                container.kill()
            except docker.errors.APIError as exc:  # it exited just now
                log.debug("kill %s: %s", container.short_id, exc)
            container.wait(timeout=_REMOVE_TIMEOUT_S)
            return TIMEOUT_EXIT_CODE, True
        try:
            status = container.wait(timeout=max(0.05, min(remaining, limits.poll_interval)))
        except requests.exceptions.RequestException:  # still running (the read timed out)
            output_usage(outputs_dir, limits)
            continue
        return int(status.get("StatusCode", -1)), False


def cleanup_stale_containers(client: docker.DockerClient | None = None, *, job_id: str | None = None,
                             containers: list[Container] | None = None, under: Path | None = None) -> list[str]:
    """Force-remove job containers left behind (all of them, or one job's); their ids.

    Run it when a provider starts: a process killed with SIGKILL cannot run its
    ``finally`` blocks. ``containers`` removes exactly those instead. ``under``
    keeps to the containers with a bind mount below that directory (a
    service's data directory: its job work dirs are there), so a service
    cleaning up after itself leaves alone the jobs of others sharing the engine.
    """
    client = client or docker_client()
    selector = JOB_LABEL if job_id is None else f"{JOB_LABEL}={job_id}"
    if containers is not None:
        ids = [str(c.id) for c in containers]
    else:
        # One low-level list call: the high-level list inspects each container and
        # fails if another user's container goes away in between.
        root = str(Path(under).resolve()) + os.sep if under is not None else None
        ids = [c["Id"] for c in client.api.containers(all=True, filters={"label": selector})
               if root is None or any(str(m.get("Source", "")).startswith(root) for m in c.get("Mounts") or [])]
    removed = []
    for container_id in ids:
        try:
            client.api.remove_container(container_id, force=True, v=True)
            removed.append(container_id)
        except docker.errors.APIError as exc:
            if exc.status_code not in (404, 409):  # gone already, or being removed
                raise
    return removed


def _remove_containers(client: docker.DockerClient, container: Container | None, job_id: str) -> None:
    """Force-remove the job's container (or, if create was interrupted, any with its label)."""
    try:
        cleanup_stale_containers(client, job_id=job_id, containers=[container] if container else None)
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        log.error("could not remove the container of job %s (cleanup_stale_containers will): %s", job_id, exc)


def _retry_delete(function: Callable[..., Any], failed: str, _exc: Any) -> None:
    """shutil.rmtree's onerror: make the parent writable (a container may have made it 0555), retry."""
    try:
        os.chmod(os.path.dirname(failed), 0o700)
        function(failed)
    except OSError as exc:
        log.warning("could not delete %s: %s", failed, exc)


def _discard(work_dir: Path, created: bool) -> None:
    """Delete a partial result: what run_module wrote, and ``work_dir`` if it made it."""
    for name in _RESULT_NAMES:
        path = work_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, onerror=_retry_delete)
        elif path.exists() or path.is_symlink():
            path.unlink()
    if created:
        try:
            work_dir.rmdir()
        except OSError as exc:
            log.warning("could not delete %s: %s", work_dir, exc)


def _prepare_work_dir(work_dir: Path) -> bool:
    """Create ``work_dir`` (or accept an empty one) and ``outputs/``; whether it was created."""
    created = not work_dir.exists()
    if created:
        work_dir.mkdir(parents=True)
    elif not work_dir.is_dir():
        raise WorkDirError(str(work_dir), "the work directory is not a directory")
    elif any(work_dir.iterdir()):
        raise WorkDirError(str(work_dir), "the work directory must be empty (it will hold exactly "
                                          "stdout, stderr, exitCode and outputs/)")
    (work_dir / "outputs").mkdir()
    return created


def check_inputs(spec: ModuleSpec, inputs_dir: Path | None) -> None:
    if inputs_dir is not None and not inputs_dir.is_dir():
        raise WorkDirError(str(inputs_dir), "the inputs directory does not exist or is not a directory")
    required = spec.input_files.required
    missing = [name for name in required if inputs_dir is None or not (inputs_dir / name).is_file()]
    if missing:
        raise WorkDirError(str(inputs_dir or INPUTS_PATH), f"required input files are missing: {missing}")


def run_module(
    spec: ModuleSpec,
    *,
    module_dir: Path | None,
    work_dir: Path,
    inputs_dir: Path | None = None,
    limits: ExecutorLimits = ExecutorLimits(),
    gpus: list[GPUInfo] | None = None,
    client: docker.DockerClient | None = None,
    job_id: str | None = None,
    on_started: Callable[[Container], None] | None = None,
) -> RunResult:
    """Run ``spec``'s container in the sandbox and write its result to ``work_dir``.

    ``module_dir`` holds the module's files (its ``Dockerfile`` builds the
    image when the engine lacks the spec's image). ``work_dir`` must be absent
    or empty. ``inputs_dir`` is mounted read-only at ``/inputs``. ``gpus`` are
    this machine's GPUs (``None``: detect with NVML). ``job_id`` labels the
    container (default: a random id). ``on_started`` is called with the
    running container (a test hook: whatever it raises aborts the run, and
    the container is still removed).

    A non-zero exit or a timeout is a result, not an error. Raises
    GPUUnavailableError, DockerUnavailableError, ImageNotAvailableError,
    ImageBuildError, ContainerError, OutputTooLargeError, WorkDirError or
    SpecError; on any exception the partial result is deleted.
    """
    check_runnable(spec)
    gpu_count = required_gpus(spec)
    if gpu_count:
        _check_gpus(spec, gpu_count, detect_gpus() if gpus is None else list(gpus))
    work_dir = Path(work_dir)
    inputs_dir = Path(inputs_dir).resolve() if inputs_dir is not None else None
    check_inputs(spec, inputs_dir)
    outputs = _output_dirs(spec, work_dir.resolve())
    client = client or docker_client()
    image = ensure_image(spec.docker.image, module_dir, client)
    engine = _engine_caps(client)
    job_id = job_id or uuid.uuid4().hex
    kwargs = _container_kwargs(spec, image, outputs, inputs_dir, limits, gpu_count, engine, job_id)
    created = _prepare_work_dir(work_dir)
    try:
        for _, host in outputs:
            host.mkdir(parents=True, exist_ok=True)
        return _run(client, kwargs, work_dir, effective_timeout(spec, limits), limits, job_id, on_started)
    except BaseException:
        _discard(work_dir, created)
        raise


def run_sandboxed(
    image: str,
    *,
    work_dir: Path,
    read_only_mounts: Mapping[str, Path],
    timeout: float,
    limits: ExecutorLimits = ExecutorLimits(),
    client: docker.DockerClient | None = None,
    job_id: str | None = None,
) -> RunResult:
    """Run ``image``'s own entrypoint in the job sandbox, with no network (a module's verifier).

    Every setting of :func:`run_module`'s sandbox applies, with the defaults of
    ``limits`` for memory and CPU (capped by the engine) and
    ``min(timeout, limits.max_timeout)`` as the timeout; the only mounts are
    ``read_only_mounts`` (container path -> host directory), read-only.
    ``work_dir`` (absent or empty) receives ``stdout`` and ``stderr`` (each
    capped at ``limits.max_log_bytes``), ``exitCode`` and an empty
    ``outputs/`` (not mounted). Raises ContainerError, DockerUnavailableError
    or WorkDirError; a non-zero exit or a timeout is a result.
    """
    work_dir = Path(work_dir)
    for target, host in read_only_mounts.items():
        if not target.startswith("/") or not Path(host).is_dir():
            raise WorkDirError(str(host), f"a read-only mount needs an absolute container path and a host "
                                          f"directory (got {target!r})")
    client = client or docker_client()
    engine = _engine_caps(client)
    memory = max(_MIN_MEMORY, min(limits.default_memory_bytes, limits.max_memory_bytes or engine[1]
                                  or limits.default_memory_bytes))
    cpu = max(_MIN_CPU_MILLIS, min(limits.default_cpu_millis, limits.max_cpu_millis or engine[0] * 1000,
                                   engine[0] * 1000))
    mounts = [Mount(target, str(Path(host).resolve()), type="bind", read_only=True)
              for target, host in read_only_mounts.items()]
    job_id = job_id or uuid.uuid4().hex
    kwargs = _sandbox_kwargs(image, mounts, limits, memory, cpu, "none", job_id)
    created = _prepare_work_dir(work_dir)
    try:
        return _run(client, kwargs, work_dir, float(min(timeout, limits.max_timeout)), limits, job_id, None)
    except BaseException:
        _discard(work_dir, created)
        raise


def _run(client: docker.DockerClient, kwargs: Mapping[str, Any], work_dir: Path, timeout: float,
         limits: ExecutorLimits, job_id: str, on_started: Callable[[Container], None] | None) -> RunResult:
    image = kwargs["image"]
    outputs_dir = work_dir / "outputs"
    user = kwargs["user"] or (client.images.get(image).attrs.get("Config") or {}).get("User") or ""
    if user.split(":")[0] not in ("", "0", "root"):
        outputs_dir.chmod(0o777)  # a non-root container user must be able to write its outputs
    container: Container | None = None
    capture: _Capture | None = None
    started = time.monotonic()
    try:
        try:
            container = client.containers.create(**kwargs)
            capture = _Capture(container, work_dir, limits.max_log_bytes)
            started = time.monotonic()
            container.start()
        except docker.errors.APIError as exc:
            reason = str(exc.explanation or exc)
            if "device driver" in reason and "gpu" in reason:
                reason += " (this Docker engine has no NVIDIA container toolkit, so it cannot give GPUs to containers)"
            raise ContainerError(image, reason) from None
        if on_started is not None:
            on_started(container)
        exit_code, timed_out = _wait(container, timeout, limits, outputs_dir)
        duration = time.monotonic() - started
        container.reload()
        oom_killed = bool(container.attrs.get("State", {}).get("OOMKilled")) and not timed_out
        if not timed_out and not oom_killed and exit_code in _KILLED_FROM_OUTSIDE:
            # PID 1 of a container cannot be sent SIGKILL/SIGTERM from inside it (init is shielded), so
            # this run was stopped from outside: the Docker engine shutting down or restarting, or
            # someone's `docker kill`. That is no result of the module: fail the run so it is retried.
            raise ContainerError(image, f"the container was stopped from outside (exit code {exit_code}: "
                                        "the Docker engine stopped or restarted, or someone killed it); "
                                        "not a result of the module")
    finally:
        _remove_containers(client, container, job_id)
        if capture is not None:
            ended = capture.finish(_CAPTURE_JOIN_S)
            if not ended:
                log.warning("the output streams of job %s did not end; closed them", job_id)
    if capture.error is not None:
        raise ContainerError(image, f"reading the container's output failed: {capture.error}")
    outputs_dir.chmod(0o755)
    (work_dir / "exitCode").write_text(str(exit_code))
    logs_size = capture.written["stdout"] + capture.written["stderr"]
    output_usage(outputs_dir, limits, extra_bytes=logs_size)
    return RunResult(result_dir=work_dir, cid=directory_cid(work_dir), exit_code=exit_code, timed_out=timed_out,
                     duration_s=duration, image=image, oom_killed=oom_killed,
                     stdout_truncated=capture.truncated["stdout"], stderr_truncated=capture.truncated["stderr"])
