"""Run a module as a Bacalhau job: the ``--executor bacalhau`` back end of a resource provider.

:class:`BacalhauExecutor` has the Docker executor's interface
(:func:`lilypad.executor.docker_runner.run_module`: same arguments, a
:class:`~lilypad.executor.RunResult`, the same result layout and CID), so the
provider daemon only picks one. One run:

1. the image: :func:`~lilypad.executor.docker_runner.ensure_image` in the
   local Docker engine (built from the module's ``Dockerfile`` if needed),
   tagged ``<registry>/<name>:<tag>`` and pushed to the registry the compute
   nodes pull from (127.0.0.1 for a local cluster); the job names the image by
   its digest, ``<registry>/<name>@sha256:...`` - Bacalhau runs only images
   with a registry digest;
2. the job: :func:`~lilypad.executor.bacalhau.jobspec.bacalhau_job`, named
   after the lilypad job id (the deal id). If a job of that name exists
   already (a provider restarted after submitting), it is followed instead of
   submitting another; ``on_submitted(bacalhau_job_id)`` lets the provider
   persist the id;
3. wait for a terminal state (``Completed``, ``Failed``, ``Stopped``), polling
   every ``poll_interval``; the provider-side deadline is the execution
   timeout plus ``queue_timeout`` (time to be placed);
4. the result: the completed execution's published tarball (local publisher
   URL), unpacked safely (no links, no paths outside, size capped by
   ``ExecutorLimits.max_output_bytes``), laid out as lilypad's result
   (:func:`~lilypad.executor.bacalhau.jobspec.arrange_result`), and its CID
   (:func:`lilypad.results.cid.directory_cid`).

A job that hits its execution timeout ends ``Failed`` on Bacalhau with no
published result: the run returns an empty ``stdout``/``stderr``/``outputs``
with ``exitCode`` 124 and ``timed_out`` (the Docker executor keeps what the
container wrote before it was killed; Bacalhau does not publish it). Any
other failed or stopped job raises :class:`~lilypad.exceptions.BacalhauJobError`
(the provider retries the run, then gives the deal up, as for Docker errors).

Differences from the Docker executor's sandbox (Bacalhau's Docker executor
sets them, not lilypad): no read-only root file system, no ``cap_drop``, no
``pids_limit``; network, CPU, memory, GPU and time limits are enforced.
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lilypad.exceptions import (
    BacalhauJobError,
    BacalhauUnavailableError,
    ContainerError,
    ResultArchiveError,
    WorkDirError,
)
from lilypad.executor.bacalhau.api import TERMINAL_JOB_STATES, BacalhauClient, Execution, NodeCapacity
from lilypad.executor.bacalhau.jobspec import arrange_result, bacalhau_job, job_name
from lilypad.executor.docker_runner import (
    TIMEOUT_EXIT_CODE,
    ExecutorLimits,
    RunResult,
    check_inputs,
    effective_timeout,
    ensure_image,
    output_usage,
)
from lilypad.modules.spec import ModuleSpec, check_runnable
from lilypad.results.cid import directory_cid

__all__ = ["BacalhauExecutor", "BacalhauRun", "Capacity", "push_image", "registry_reference"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Capacity:
    """What a cluster offers: the sum over its CONNECTED compute nodes (milli-cores, MB, GPUs)."""

    nodes: int
    cpu_millis: int
    ram_mb: int
    disk_mb: int
    gpu: int
    max_node_cpu_millis: int
    max_node_memory: int

    @classmethod
    def of(cls, nodes: list[NodeCapacity]) -> Capacity:
        millis = [int(n.cpu * 1000) for n in nodes]
        return cls(nodes=len(nodes), cpu_millis=sum(millis), ram_mb=sum(n.memory for n in nodes) // (1 << 20),
                   disk_mb=sum(n.disk for n in nodes) // (1 << 20), gpu=sum(n.gpu for n in nodes),
                   max_node_cpu_millis=max(millis, default=0),
                   max_node_memory=max((n.memory for n in nodes), default=0))


@dataclass(frozen=True)
class BacalhauRun:
    """What a finished Bacalhau job was: its id and the execution that produced the result."""

    job_id: str
    state: str
    executions: tuple[Execution, ...]
    result_execution: Execution | None


def registry_reference(registry: str, image: str) -> str:
    """``<registry>/<repository>:<tag>`` for a local image reference (any registry or digest dropped)."""
    name = image.split("@", 1)[0]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        name = rest
    repository, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
    return f"{registry}/{repository}:{tag or 'latest'}"


def push_image(client: Any, image: str, registry: str) -> str:
    """Tag ``image`` (in the local engine) into ``registry``, push it, and return its digest reference."""
    import docker.errors

    target = registry_reference(registry, image)
    repository, _, tag = target.rpartition(":")
    try:
        client.images.get(image).tag(repository, tag)
        digest = ""
        for line in client.api.push(repository, tag=tag, stream=True, decode=True):
            if line.get("error"):
                raise ContainerError(image, f"pushing to {registry} failed: {line['error']}")
            digest = (line.get("aux") or {}).get("Digest") or digest
    except docker.errors.APIError as exc:
        raise ContainerError(image, f"pushing to {registry} failed: {exc.explanation or exc}") from None
    if not digest:
        raise ContainerError(image, f"pushing to {registry} returned no digest")
    return f"{repository}@{digest}"


def _safe_extract(archive: Path, dest: Path, max_bytes: int) -> None:
    """Unpack a result tarball: regular files and directories only, inside ``dest``, at most ``max_bytes``."""
    total = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = []
            for member in tar:
                if not (member.isfile() or member.isdir()):
                    raise ResultArchiveError(f"{archive}: {member.name!r} is not a file or directory")
                total += member.size
                if total > max_bytes:
                    raise ResultArchiveError(f"{archive}: more than {max_bytes} bytes")
                members.append(member)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ResultArchiveError(f"{archive}: {exc}") from None


@dataclass
class BacalhauExecutor:
    """Runs modules on the Bacalhau cluster whose orchestrator API is ``api_url``.

    ``registry`` is where images are pushed (``127.0.0.1:PORT``), reachable by
    the compute nodes' Docker engines. See the module docstring.
    """

    api_url: str
    registry: str
    limits: ExecutorLimits = field(default_factory=ExecutorLimits)
    poll_interval: float = 0.5
    queue_timeout: float = 300.0
    docker_client: Any = None
    #: Give inputs as Bacalhau ``local`` sources (read-only; the compute nodes must see this
    #: machine's paths and allow them), not inline (see :mod:`~lilypad.executor.bacalhau.jobspec`).
    local_inputs: bool = False
    #: The last :class:`BacalhauRun` of each lilypad job id run here (where it ran, for logs and tests).
    runs: dict[str, BacalhauRun] = field(default_factory=dict)

    def client(self) -> BacalhauClient:
        return BacalhauClient(self.api_url)

    def capacity(self) -> Capacity:
        """The cluster's capacity now (CONNECTED compute nodes only)."""
        with self.client() as client:
            return Capacity.of(client.connected_compute_nodes())

    def _docker(self) -> Any:
        if self.docker_client is None:
            from lilypad.executor.docker_runner import docker_client

            self.docker_client = docker_client()
        return self.docker_client

    def find_job(self, job_id: str) -> str | None:
        """The newest Bacalhau job submitted for lilypad job ``job_id`` (``None``: none)."""
        name = job_name(job_id)
        with self.client() as client:
            for job in client.jobs():  # newest first; a name is one job (its versions share the id)
                if job.get("Name") == name:
                    return str(job["ID"])
        return None

    def _state(self, bacalhau_job_id: str) -> str | None:
        """The job's state (``None``: the cluster does not know it)."""
        try:
            with self.client() as client:
                return client.job_state(bacalhau_job_id)[0]
        except BacalhauUnavailableError as exc:
            if "HTTP 404" in exc.reason:
                return None
            raise

    def submit(self, spec: ModuleSpec, *, module_dir: Path | None, job_id: str,
               inputs_dir: Path | None = None, bacalhau_job_id: str | None = None) -> str:
        """Push the image and submit the job; the Bacalhau job id.

        A job submitted before for ``job_id`` - ``bacalhau_job_id`` (persisted by the
        caller) if the cluster knows it, else the job named after ``job_id`` - is
        followed while it is pending, running or completed (a restarted provider does
        not run it twice). One that ended ``Failed`` or ``Stopped`` is run again as
        a new version of the same job (Bacalhau's forced update: same id, the old
        executions stay in its history).
        """
        existing = bacalhau_job_id if bacalhau_job_id and self._state(bacalhau_job_id) is not None else None
        existing = existing or self.find_job(job_id)
        state = self._state(existing) if existing else None
        if existing and state not in ("Failed", "Stopped"):
            log.info("lilypad job %s is Bacalhau job %s already (%s): following it", job_id, existing, state)
            return existing
        image = push_image(self._docker(), ensure_image(spec.docker.image, module_dir, self._docker()), self.registry)
        capacity = self.capacity()
        job = bacalhau_job(spec, image=image, job_id=job_id, limits=self.limits, inputs_dir=inputs_dir,
                           max_cpu_millis=capacity.max_node_cpu_millis or None,
                           max_memory_bytes=capacity.max_node_memory or None, local_inputs=self.local_inputs)
        with self.client() as client:
            return client.put_job(job, force=existing is not None)

    def wait(self, bacalhau_job_id: str, timeout: float) -> BacalhauRun:
        """Poll until the job is terminal (BacalhauJobError after ``timeout`` seconds, the job stopped)."""
        started = time.monotonic()
        deadline = started + timeout
        with self.client() as client:
            while True:
                state, message = client.job_state(bacalhau_job_id)
                if state in TERMINAL_JOB_STATES:
                    version = int(client.get_job(bacalhau_job_id).get("Version") or 0)
                    executions = tuple(e for e in client.executions(bacalhau_job_id)
                                       if not version or e.job_version == version)
                    if not executions and time.monotonic() < started + 15:
                        time.sleep(self.poll_interval)  # a re-run version not yet scheduled: its old state shows
                        continue
                    done = [e for e in executions if e.state == "Completed" and e.result_url]
                    return BacalhauRun(bacalhau_job_id, state, executions, done[0] if done else None)
                if time.monotonic() > deadline:
                    client.stop_job(bacalhau_job_id, "lilypad: no result in time")
                    raise BacalhauJobError(bacalhau_job_id, f"not finished after {timeout:.0f}s (state {state}: "
                                                            f"{message}); stopped it")
                time.sleep(self.poll_interval)

    def run_module(self, spec: ModuleSpec, *, module_dir: Path | None, work_dir: Path,
                   inputs_dir: Path | None = None, job_id: str | None = None,
                   on_submitted: Callable[[str], None] | None = None,
                   bacalhau_job_id: str | None = None) -> RunResult:
        """Run ``spec`` on the cluster and leave its result in ``work_dir`` (absent or empty),
        as :func:`lilypad.executor.docker_runner.run_module` does. ``job_id`` names the
        Bacalhau job (a deal id: a second call for it follows the first job, as does a
        call with the ``bacalhau_job_id`` that ``on_submitted`` was given)."""
        check_runnable(spec)
        work_dir = Path(work_dir)
        inputs_dir = Path(inputs_dir).resolve() if inputs_dir is not None else None
        check_inputs(spec, inputs_dir)
        if work_dir.exists() and (not work_dir.is_dir() or any(work_dir.iterdir())):
            raise WorkDirError(str(work_dir), "the work directory must be absent or empty")
        job_id = job_id or uuid.uuid4().hex
        started = time.monotonic()
        bacalhau_id = self.submit(spec, module_dir=module_dir, job_id=job_id, inputs_dir=inputs_dir,
                                  bacalhau_job_id=bacalhau_job_id)
        if on_submitted is not None:
            on_submitted(bacalhau_id)
        run = self.wait(bacalhau_id, effective_timeout(spec, self.limits) + self.queue_timeout)
        self.runs[job_id] = run
        return self.collect(run, spec, work_dir, started)

    def collect(self, run: BacalhauRun, spec: ModuleSpec, work_dir: Path, started: float) -> RunResult:
        """Download and lay out a terminal job's result (see the module docstring)."""
        image = spec.docker.image
        if run.result_execution is None:
            errors = "; ".join(f"{e.node_id}: {e.state} {e.error}".strip() for e in run.executions) or "no execution"
            if run.state == "Failed" and ("timed out" in errors.lower() or "timeout" in errors.lower()):
                work_dir.mkdir(parents=True, exist_ok=True)
                for name in ("stdout", "stderr"):
                    (work_dir / name).write_bytes(b"")
                (work_dir / "outputs").mkdir(exist_ok=True)
                (work_dir / "exitCode").write_text(str(TIMEOUT_EXIT_CODE))
                return RunResult(result_dir=work_dir, cid=directory_cid(work_dir), exit_code=TIMEOUT_EXIT_CODE,
                                 timed_out=True, duration_s=time.monotonic() - started, image=image)
            raise BacalhauJobError(run.job_id, f"ended {run.state} with no result: {errors}")
        execution = run.result_execution
        assert execution.result_url is not None
        work_dir.mkdir(parents=True, exist_ok=True)
        try:
            with tempfile.TemporaryDirectory(prefix="lilypad-bacalhau-", dir=work_dir.parent) as tmp:
                archive = Path(tmp) / "result.tar.gz"
                with self.client() as client:
                    client.download(execution.result_url, archive, max_bytes=self.limits.max_output_bytes + (1 << 20))
                _safe_extract(archive, work_dir, self.limits.max_output_bytes + 2 * self.limits.max_log_bytes)
            arrange_result(work_dir, spec)
            exit_code = int((work_dir / "exitCode").read_text().strip() or "-1")
            output_usage(work_dir / "outputs", self.limits,
                          extra_bytes=(work_dir / "stdout").stat().st_size + (work_dir / "stderr").stat().st_size)
            cid = directory_cid(work_dir)
        except BaseException:
            shutil.rmtree(work_dir, ignore_errors=True)
            raise
        log.info("Bacalhau job %s ran on node %s (execution %s), exit code %s", run.job_id, execution.node_id,
                 execution.execution_id, exit_code)
        return RunResult(result_dir=work_dir, cid=cid, exit_code=exit_code, timed_out=False,
                         duration_s=time.monotonic() - started, image=image)
