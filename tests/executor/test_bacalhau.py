"""The Bacalhau executor against a real cluster: ``bacalhau serve`` v1.9.3 processes on loopback.

An orchestrator and two compute nodes (separate processes, each with its own data
directory and ports) and a registry on 127.0.0.1 (tests/bacalhau_support.py). Nothing
is mocked; faults are injected by killing real processes.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import docker
import pytest

from bacalhau_support import bacalhau_cluster, start_cluster  # type: ignore[import-not-found]  # noqa: F401
from lilypad.exceptions import BacalhauJobError, BacalhauUnavailableError
from lilypad.executor.bacalhau.api import BacalhauClient
from lilypad.executor.bacalhau.jobspec import bacalhau_job, job_name
from lilypad.executor.bacalhau.runner import BacalhauExecutor
from lilypad.executor.docker_runner import ExecutorLimits, run_module
from lilypad.modules.spec import ModuleSpec
from lilypad.results.cid import directory_cid

IMAGE = "lilypad/busybox:1"


def make_spec(command: str, *, network: str = "None", timeout: int = 60, cpu: str = "100m",
              memory: str = "64Mi") -> ModuleSpec:
    return ModuleSpec.model_validate({"job": {"APIVersion": "V1beta1", "Spec": {
        "Engine": "Docker",
        "Docker": {"Image": IMAGE, "Entrypoint": ["sh", "-c"], "Parameters": [command],
                   "EnvironmentVariables": ["GREETING=hello from env"]},
        "Network": {"Type": network}, "Resources": {"CPU": cpu, "Memory": memory}, "Timeout": timeout}}})


def executor(cluster, **options) -> BacalhauExecutor:
    return BacalhauExecutor(cluster.api_url, cluster.registry_host, poll_interval=0.2, **options)


def job_id() -> str:
    return "0x" + uuid.uuid4().hex


def test_api_client_reads_the_live_cluster(bacalhau_cluster):
    with BacalhauClient(bacalhau_cluster.api_url) as client:
        assert client.alive()
        assert client.version() == "v1.9.3"
        nodes = client.connected_compute_nodes()
    assert sorted(n.node_id for n in nodes) == ["lilypad-c1", "lilypad-c2"]
    assert all(n.cpu == 1.0 and n.memory == 1 << 30 and n.disk == 5 << 30 for n in nodes)
    capacity = executor(bacalhau_cluster).capacity()
    assert (capacity.nodes, capacity.cpu_millis, capacity.ram_mb, capacity.disk_mb) == (2, 2000, 2048, 10240)
    with BacalhauClient("http://127.0.0.1:1") as dead:
        assert not dead.alive()
        with pytest.raises(BacalhauUnavailableError, match="127.0.0.1:1"):
            dead.nodes()


def test_result_layout_and_cid_equal_the_docker_executors(bacalhau_cluster, tmp_path):
    """The same job on the local Docker engine and through Bacalhau: byte-identical results
    (stdout and stderr apart, exitCode, outputs/, /inputs read-only), so the same CID."""
    inputs = tmp_path / "inputs"
    (inputs / "sub").mkdir(parents=True)
    (inputs / "a.txt").write_text("from the inputs\n")
    (inputs / "sub" / "b.txt").write_text("nested\n")
    spec = make_spec('echo "$GREETING"; echo to-stderr >&2; cat /inputs/a.txt /inputs/sub/b.txt; '
                     'mkdir -p /outputs/d; echo 42 > /outputs/d/answer; '
                     'touch /inputs/x 2>/dev/null && echo inputs-writable; exit 3')
    local = run_module(spec, module_dir=None, work_dir=tmp_path / "docker", inputs_dir=inputs)
    remote = executor(bacalhau_cluster, local_inputs=True).run_module(spec, module_dir=None,
                                                                      work_dir=tmp_path / "bacalhau",
                                                   inputs_dir=inputs, job_id=job_id())
    assert remote.exit_code == local.exit_code == 3
    assert (tmp_path / "bacalhau" / "stdout").read_text() == "hello from env\nfrom the inputs\nnested\n"
    assert (tmp_path / "bacalhau" / "stderr").read_text() == "to-stderr\n"
    assert (tmp_path / "bacalhau" / "exitCode").read_text() == "3"
    assert (tmp_path / "bacalhau" / "outputs" / "d" / "answer").read_text() == "42\n"
    assert remote.cid == local.cid == directory_cid(tmp_path / "bacalhau")


def test_inline_inputs_reach_any_node_and_never_change_the_providers_files(bacalhau_cluster, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "a.txt").write_text("inline\n")
    before = directory_cid(inputs)
    spec = make_spec("cat /inputs/a.txt; echo changed > /inputs/a.txt 2>/dev/null; ls /inputs")
    executor(bacalhau_cluster).run_module(spec, module_dir=None, work_dir=tmp_path / "w", inputs_dir=inputs,
                                          job_id=job_id())
    assert (tmp_path / "w" / "stdout").read_text() == "inline\na.txt\n"
    assert directory_cid(inputs) == before


def test_jobs_of_one_provider_land_on_different_compute_nodes(bacalhau_cluster, tmp_path):
    """Each node has 1 CPU; a second 1-CPU job submitted while the first runs (and the
    orchestrator knows it: nodes report their resources every second) goes to the other node."""
    ex = executor(bacalhau_cluster)
    ids = [job_id(), job_id()]
    spec = make_spec("sleep 3; hostname", cpu="1")
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            ex.run_module(spec, module_dir=None, work_dir=tmp_path / f"w{index}", job_id=ids[index])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    threads[0].start()
    busy = bacalhau_cluster.wait_busy()  # the scheduler sees the first node taken (resource updates: 1 s)
    threads[1].start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    nodes = [ex.runs[i].result_execution.node_id for i in ids]
    assert nodes[0] == busy
    assert sorted(nodes) == ["lilypad-c1", "lilypad-c2"], nodes


@pytest.fixture
def host_listener() -> tuple[int, list[bytes]]:
    """A TCP server on every host address; what it receives is recorded."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))
    server.listen(5)
    server.settimeout(0.5)
    received: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            with connection:
                received.append(connection.recv(100))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join(2)
    server.close()


def test_network_is_off_unless_the_module_allows_it(bacalhau_cluster, tmp_path, host_listener):
    """A probe that can fail both ways: connect to a TCP port on the host's Docker bridge address."""
    port, received = host_listener
    gateway = docker.from_env().networks.get("bridge").attrs["IPAM"]["Config"][0]["Gateway"]
    probe = f"echo probe | nc -w 3 {gateway} {port} && echo CONNECTED || echo FAILED"
    ex = executor(bacalhau_cluster)
    ex.run_module(make_spec(probe), module_dir=None, work_dir=tmp_path / "none", job_id=job_id())
    assert (tmp_path / "none" / "stdout").read_text() == "FAILED\n"
    assert "Network is unreachable" in (tmp_path / "none" / "stderr").read_text()
    assert received == []
    ex.run_module(make_spec(probe, network="Full"), module_dir=None, work_dir=tmp_path / "full", job_id=job_id())
    assert (tmp_path / "full" / "stdout").read_text() == "CONNECTED\n"
    assert received == [b"probe\n"]


def test_cpu_memory_limits_reach_the_container_and_the_timeout_gives_124(bacalhau_cluster, tmp_path):
    ex = executor(bacalhau_cluster)
    engine = docker.from_env()
    seen: dict = {}

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not seen:
            for container in engine.containers.list():
                if container.attrs["Config"]["Image"].startswith(bacalhau_cluster.registry_host + "/"):
                    seen.update(container.attrs["HostConfig"])
                    return
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = ex.run_module(make_spec("sleep 4; echo done", cpu="250m", memory="96Mi"), module_dir=None,
                           work_dir=tmp_path / "limits", job_id=job_id())
    watcher.join()
    assert result.exit_code == 0
    assert seen["Memory"] == 96 << 20
    assert seen["NanoCpus"] == 250_000_000
    assert seen["NetworkMode"] == "none"
    started = time.monotonic()
    timed = ex.run_module(make_spec("echo before; sleep 60", timeout=3), module_dir=None,
                          work_dir=tmp_path / "timeout", job_id=job_id())
    assert timed.timed_out and timed.exit_code == 124
    assert (tmp_path / "timeout" / "exitCode").read_text() == "124"
    assert time.monotonic() - started < 50


def test_a_job_submitted_before_a_restart_is_followed_not_resubmitted(bacalhau_cluster, tmp_path):
    """A provider that dies after submitting: a fresh executor (a restarted provider) with the
    same deal id follows the running Bacalhau job; the cluster holds one job, run once."""
    deal = job_id()
    spec = make_spec("sleep 3; echo once")
    submitted: list[str] = []
    first = executor(bacalhau_cluster)
    thread = threading.Thread(target=lambda: first.run_module(
        spec, module_dir=None, work_dir=tmp_path / "first", job_id=deal, on_submitted=submitted.append))
    thread.start()
    deadline = time.monotonic() + 30
    while not submitted and time.monotonic() < deadline:
        time.sleep(0.1)
    assert submitted
    restarted = executor(bacalhau_cluster)  # knows nothing but the deal id
    result = restarted.run_module(spec, module_dir=None, work_dir=tmp_path / "again", job_id=deal,
                                  on_submitted=submitted.append)
    thread.join(60)
    assert submitted[1] == submitted[0]
    assert (tmp_path / "again" / "stdout").read_text() == "once\n"
    with BacalhauClient(bacalhau_cluster.api_url) as client:
        jobs = client.find_jobs(job_name(deal))
        assert [j["ID"] for j in jobs] == [submitted[0]]
        assert len(client.executions(submitted[0])) == 1
    # the id kept in the provider's state is followed too, and a completed job is never re-run
    again = executor(bacalhau_cluster).run_module(spec, module_dir=None, work_dir=tmp_path / "third", job_id=deal,
                                                  bacalhau_job_id=submitted[0])
    assert again.cid == result.cid


def test_job_spec_translation_is_the_docker_executors_sandbox():
    spec = make_spec("true", cpu="250m", memory="96Mi", timeout=30)
    job = bacalhau_job(spec, image="127.0.0.1:5000/x@sha256:" + "a" * 64, job_id="0xAB",
                       limits=ExecutorLimits(max_timeout=20))
    task = job["Tasks"][0]
    assert job["Name"] == "lilypad-ab"
    assert task["Network"] == {"Type": "None"}
    assert task["Resources"] == {"CPU": "250m", "Memory": str(96 << 20)}
    assert task["Timeouts"] == {"ExecutionTimeout": 20}
    assert task["ResultPaths"] == [{"Name": "outputs", "Path": "/outputs"}]
    assert task["Engine"]["Params"]["EnvironmentVariables"] == ["GREETING=hello from env"]
    assert "InputSources" not in task


def test_a_compute_node_killed_mid_job_is_retried_on_the_other_node(tmp_path):
    """Kill the compute node running a job (SIGKILL, as a crash): the orchestrator sees it
    disconnect and places the job again on the surviving node; the run returns that
    node's result, and the cluster holds one job (no resubmission by lilypad)."""
    cluster = start_cluster(tmp_path / "cluster", disconnect_timeout="5s")
    try:
        ex = executor(cluster)
        deal = job_id()
        spec = make_spec("sleep 6; echo survived", cpu="1")
        submitted: list[str] = []
        outcome: list[object] = []

        def run() -> None:
            try:
                outcome.append(ex.run_module(spec, module_dir=None, work_dir=tmp_path / "w1", job_id=deal,
                                             on_submitted=submitted.append))
            except BaseException as exc:  # asserted below
                outcome.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        victim = None
        deadline = time.monotonic() + 60
        with BacalhauClient(cluster.api_url) as client:
            while victim is None and time.monotonic() < deadline:
                running = client.executions(submitted[0]) if submitted else []
                running = [e for e in running if e.state in ("BidAccepted", "Running")]
                if running:
                    victim = running[0].node_id
                time.sleep(0.2)
            assert victim is not None
            next(n for n in cluster.nodes if n.name == victim).process.kill()
            thread.join(180)
            executions = client.executions(submitted[0])
            jobs = client.find_jobs(job_name(deal))
        assert len(outcome) == 1
        result = outcome[0]
        assert not isinstance(result, BaseException), result
        assert result.exit_code == 0
        assert (tmp_path / "w1" / "stdout").read_text() == "survived\n"
        assert ex.runs[deal].result_execution.node_id != victim
        assert {e.node_id for e in executions} == {"lilypad-c1", "lilypad-c2"}
        assert [e.state for e in executions if e.node_id == victim] != ["Completed"]
        assert [j["ID"] for j in jobs] == submitted
    finally:
        cluster.stop()


def test_a_failed_job_is_run_again_as_a_new_version_of_the_same_job(bacalhau_cluster, tmp_path):
    """A job stopped on the cluster fails the run (BacalhauJobError: the provider counts a
    failed run); the provider's next attempt for the deal re-runs the same Bacalhau job
    (a new version of it), not a second job."""
    ex = executor(bacalhau_cluster)
    deal = job_id()
    submitted: list[str] = []

    def stop_when_submitted() -> None:
        deadline = time.monotonic() + 30
        while not submitted and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        with BacalhauClient(bacalhau_cluster.api_url) as client:
            client.stop_job(submitted[0], "test: stop it")

    stopper = threading.Thread(target=stop_when_submitted)
    stopper.start()
    with pytest.raises(BacalhauJobError, match="Stopped"):
        ex.run_module(make_spec("sleep 30"), module_dir=None, work_dir=tmp_path / "stopped", job_id=deal,
                      on_submitted=submitted.append)
    stopper.join()
    assert not (tmp_path / "stopped").exists() or not any((tmp_path / "stopped").iterdir())
    again = ex.run_module(make_spec("echo fine"), module_dir=None, work_dir=tmp_path / "again", job_id=deal,
                          bacalhau_job_id=submitted[0], on_submitted=submitted.append)
    assert again.exit_code == 0 and (tmp_path / "again" / "stdout").read_text() == "fine\n"
    assert submitted == [submitted[0], submitted[0]]
    with BacalhauClient(bacalhau_cluster.api_url) as client:
        assert len(client.find_jobs(job_name(deal))) == 1
        assert int(client.get_job(submitted[0])["Version"]) == 2
