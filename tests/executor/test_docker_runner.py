"""The Docker executor against the real engine (no mocks of Docker).

The sandbox is checked from *inside* containers: a BusyBox script probes the
network, the root file system, /tmp, capabilities, no_new_privs, cgroup
limits and /inputs, and prints ``key=value`` lines that the tests assert on.
Without a reachable engine every test here fails, telling you to run
``make setup`` (which installs and starts dockerd and builds the base images).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

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
from lilypad.executor.docker_runner import (
    JOB_LABEL,
    TIMEOUT_EXIT_CODE,
    ExecutorLimits,
    RunResult,
    cleanup_stale_containers,
    docker_client,
    effective_timeout,
    ensure_image,
    gpu_request_count,
    module_image_tag,
    required_gpus,
    run_module,
)
from lilypad.executor.gpu import GPUInfo, detect_gpus
from lilypad.modules.spec import ModuleSpec, parse_spec
from lilypad.results.cid import directory_cid

BUSYBOX = "lilypad/busybox:1"
SESSION = f"test-{uuid.uuid4().hex[:8]}-"  # job ids of this test session (concurrent runs use others)
FAKE_GPU = GPUInfo(index=0, uuid="GPU-00000000-0000-0000-0000-000000000000", name="Injected GPU",
                   vram_mb=16384, driver_version="550.54.15", cuda_version="12.4")


@pytest.fixture(scope="session")
def client() -> docker.DockerClient:
    try:
        engine = docker_client()
    except DockerUnavailableError as exc:
        pytest.fail(f"{exc}", pytrace=False)
    try:
        engine.images.get(BUSYBOX)
    except docker.errors.ImageNotFound:
        pytest.fail(f"the base image {BUSYBOX} is missing: run `make setup`", pytrace=False)
    return engine


def spec_for(script: str, *, image: str = BUSYBOX, network: str = "None", timeout: float | None = 30,
             resources: dict[str, str] | None = None, machine: dict[str, Any] | None = None,
             **docker_fields: Any) -> ModuleSpec:
    """A test-only spec running ``sh -c SCRIPT`` in BusyBox."""
    body: dict[str, Any] = {
        "Engine": "Docker",
        "Docker": {"Image": image, "Entrypoint": ["sh", "-c", script], **docker_fields},
        "Network": {"Type": network},
        "Outputs": [{"Name": "outputs", "Path": "/outputs"}],
        "Resources": resources or {"CPU": "0.5", "Memory": "96mb"},
    }
    if timeout is not None:
        body["Timeout"] = timeout
    return parse_spec({"machine": machine or {"cpu": 500, "ram": 96}, "job": {"APIVersion": "V1beta1", "Spec": body}})


def new_job_id() -> str:
    return SESSION + uuid.uuid4().hex


def job_containers(client: docker.DockerClient, job_id: str) -> list[Any]:
    return client.containers.list(all=True, filters={"label": f"{JOB_LABEL}={job_id}"})


def run(spec: ModuleSpec, work_dir: Path, client: docker.DockerClient, **kwargs: Any) -> tuple[RunResult, str]:
    job_id = kwargs.pop("job_id", new_job_id())
    result = run_module(spec, module_dir=kwargs.pop("module_dir", None), work_dir=work_dir, client=client,
                        job_id=job_id, **kwargs)
    assert job_containers(client, job_id) == []
    return result, job_id


def keyvalues(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


# --------------------------------------------------------------------------
# The sandbox, seen from inside
# --------------------------------------------------------------------------

PROBE = r"""
echo "uid=$(id -u)"
sed -n 's/^\(CapEff\|CapPrm\|CapBnd\|NoNewPrivs\):[[:space:]]*/\1=/p' /proc/self/status
echo "net=$(ls /sys/class/net | tr '\n' ' ')"
echo "route=$(ip route 2>/dev/null | grep -c default)"
if wget -q -T 3 -O /dev/null http://1.1.1.1/ 2>/dev/null; then echo wget=ok; else echo wget=fail; fi
if nc -w 3 1.1.1.1 80 </dev/null 2>/dev/null; then echo nc=ok; else echo nc=fail; fi
if nslookup deb.debian.org >/dev/null 2>&1; then echo dns=ok; else echo dns=fail; fi
if touch /rootfs-probe 2>/dev/null; then echo root_write=ok; else echo root_write=fail; fi
if touch /bin/probe 2>/dev/null; then echo bin_write=ok; else echo bin_write=fail; fi
if echo x > /tmp/probe && [ "$(cat /tmp/probe)" = x ]; then echo tmp_write=ok; else echo tmp_write=fail; fi
echo "tmp_kib=$(df -k /tmp | awk 'NR == 2 { print $2 }')"
if mknod /tmp/null c 1 3 2>/dev/null; then echo mknod=ok; else echo mknod=fail; fi
if chown 1:1 /tmp/probe 2>/dev/null; then echo chown=ok; else echo chown=fail; fi
echo "memory=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
echo "swap=$(cat /sys/fs/cgroup/memory.swap.max 2>/dev/null \
    || cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || echo none)"
echo "pids=$(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max)"
if [ -f /sys/fs/cgroup/cpu.max ]; then echo "cpu=$(cat /sys/fs/cgroup/cpu.max)"
else echo "cpu=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"; fi
echo "inputs=$(cat /inputs/hello.txt 2>/dev/null)"
if touch /inputs/new 2>/dev/null; then echo inputs_write=ok; else echo inputs_write=fail; fi
if echo out > /outputs/probe.txt; then echo outputs_write=ok; else echo outputs_write=fail; fi
echo "hostname=$(hostname)"
echo "env=$LILYPAD_PROBE"
"""


def test_sandbox_from_inside(client: docker.DockerClient, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "hello.txt").write_text("hi from inputs")
    spec = spec_for(PROBE, EnvironmentVariables=["LILYPAD_PROBE=set"])
    limits = ExecutorLimits(pids_limit=64, tmpfs_bytes=8 * 1024 * 1024)
    result, _ = run(spec, tmp_path / "work", client, inputs_dir=inputs, limits=limits)
    seen = keyvalues((result.result_dir / "stdout").read_text())
    assert result.exit_code == 0, (result.result_dir / "stderr").read_text()
    # no network at all: only the loopback interface, no route, no DNS
    assert seen["net"].split() == ["lo"]
    assert seen["route"] == "0"
    assert (seen["wget"], seen["nc"], seen["dns"]) == ("fail", "fail", "fail")
    # no capabilities, no privilege gain
    assert int(seen["CapEff"], 16) == 0
    assert int(seen["CapPrm"], 16) == 0
    assert int(seen["CapBnd"], 16) == 0
    assert seen["NoNewPrivs"] == "1"
    assert (seen["mknod"], seen["chown"]) == ("fail", "fail")
    # read-only root file system, size-limited writable /tmp
    assert (seen["root_write"], seen["bin_write"]) == ("fail", "fail")
    assert seen["tmp_write"] == "ok"
    assert int(seen["tmp_kib"]) == 8 * 1024
    # cgroup limits from Spec.Resources (Memory "96mb" = 96e6 bytes, rounded to pages; CPU "0.5")
    assert 96_000_000 - 4096 < int(seen["memory"]) <= 96_000_000
    assert seen["swap"] in ("0", seen["memory"])  # v2 swap.max 0, or v1 memsw == memory: no swap
    assert seen["pids"] == "64"
    quota, period = seen["cpu"].split()
    assert int(quota) / int(period) == 0.5
    # /inputs readable but read-only; /outputs writable and collected
    assert seen["inputs"] == "hi from inputs"
    assert seen["inputs_write"] == "fail"
    assert not (inputs / "new").exists()
    assert seen["outputs_write"] == "ok"
    assert (result.result_dir / "outputs" / "probe.txt").read_text() == "out\n"
    # deterministic hostname and the spec's environment
    assert seen["hostname"] == "lilypad"
    assert seen["env"] == "set"


def test_full_network_gets_a_network_namespace_with_eth0(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = spec_for('echo "net=$(ls /sys/class/net | tr \'\\n\' \' \')"; echo "route=$(ip route | grep -c default)"',
                    network="Full")
    result, _ = run(spec, tmp_path / "work", client)
    seen = keyvalues((result.result_dir / "stdout").read_text())
    assert "eth0" in seen["net"].split()
    assert seen["route"] == "1"


def test_non_root_user_option(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = spec_for('id -u; id -g; echo made > /outputs/by-nobody.txt')
    result, _ = run(spec, tmp_path / "work", client, limits=ExecutorLimits(user="65534:65534"))
    assert (result.result_dir / "stdout").read_text() == "65534\n65534\n"
    made = result.result_dir / "outputs" / "by-nobody.txt"
    assert made.read_text() == "made\n"
    assert made.stat().st_uid == 65534
    assert (result.result_dir / "outputs").stat().st_mode & 0o777 == 0o755


# --------------------------------------------------------------------------
# Result directory
# --------------------------------------------------------------------------


def test_result_layout_exit_code_and_separate_streams(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = spec_for("echo a; echo b >&2; echo c; echo d >&2; echo file > /outputs/f.txt; exit 3")
    result, _ = run(spec, tmp_path / "work", client)
    root = result.result_dir
    assert root == tmp_path / "work"
    assert sorted(path.name for path in root.iterdir()) == ["exitCode", "outputs", "stderr", "stdout"]
    assert (root / "stdout").read_bytes() == b"a\nc\n"
    assert (root / "stderr").read_bytes() == b"b\nd\n"
    assert (root / "exitCode").read_bytes() == b"3"  # Bacalhau: fmt.Sprint(code), no newline
    assert result.exit_code == 3
    assert result.timed_out is False
    assert result.image == BUSYBOX
    assert result.cid == directory_cid(root)
    assert 0 < result.duration_s < 20


def test_same_deterministic_job_same_cid(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = spec_for("echo hello; mkdir -p /outputs/sub; printf 'x%.0s' $(seq 1000) > /outputs/sub/x.txt")
    first, _ = run(spec, tmp_path / "one", client)
    second, _ = run(spec, tmp_path / "two", client)
    assert first.cid == second.cid
    assert (first.result_dir / "outputs" / "sub" / "x.txt").read_text() == "x" * 1000


def test_random_job_different_cid(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = spec_for("head -c 16 /dev/urandom > /outputs/r.bin")
    first, _ = run(spec, tmp_path / "one", client)
    second, _ = run(spec, tmp_path / "two", client)
    assert first.cid != second.cid


def test_entrypoint_parameters_workdir_and_image_cmd(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = spec_for('echo "$0 $1 $(pwd) $GREETING"', Parameters=["p0", "p1"], WorkingDirectory="/tmp",
                    EnvironmentVariables=["GREETING=hi=there"])
    result, _ = run(spec, tmp_path / "one", client)
    assert (result.result_dir / "stdout").read_text() == "p0 p1 /tmp hi=there\n"
    # No Entrypoint: the image's own; Parameters replace its CMD.
    bare = parse_spec({"job": {"Spec": {"Docker": {"Image": BUSYBOX, "Parameters": ["echo", "from", "cmd"]}}}})
    result, _ = run(bare, tmp_path / "two", client)
    assert (result.result_dir / "stdout").read_text() == "from cmd\n"


def test_an_environment_entry_without_equals_is_empty_never_the_providers(
        client: docker.DockerClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `docker run -e NAME` would copy the caller's NAME into the container; a job gets NAME= instead.
    monkeypatch.setenv("LILYPAD_PROVIDER_SECRET", "provider-value")
    spec = spec_for("env", EnvironmentVariables=["LILYPAD_PROVIDER_SECRET", "PLAIN=1", "EQ=a=b"])
    result, _ = run(spec, tmp_path / "work", client)
    stdout = (result.result_dir / "stdout").read_text()
    env = keyvalues(stdout)
    assert env["LILYPAD_PROVIDER_SECRET"] == "" and env["PLAIN"] == "1" and env["EQ"] == "a=b"
    assert "provider-value" not in stdout


def test_a_spec_that_loads_but_cannot_run_is_refused_before_anything_starts(
        client: docker.DockerClient, tmp_path: Path) -> None:
    no_image = parse_spec({"job": {"Spec": {"Docker": {"Entrypoint": ["true"]}}}})
    with pytest.raises(SpecError, match="no container image") as caught:
        run_module(no_image, module_dir=None, work_dir=tmp_path / "a", client=client)
    assert caught.value.path == "job.Spec.Docker.Image"
    relative = parse_spec({"job": {"Spec": {"Docker": {"Image": BUSYBOX}, "Outputs": [{"Name": "o", "Path": "o"}]}}})
    with pytest.raises(SpecError, match="absolute path"):
        run_module(relative, module_dir=None, work_dir=tmp_path / "b", client=client)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_work_dir_must_be_empty_and_inputs_must_exist(client: docker.DockerClient, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "old").write_text("x")
    with pytest.raises(WorkDirError, match="must be empty"):
        run_module(spec_for("true"), module_dir=None, work_dir=busy, client=client)
    assert sorted(path.name for path in busy.iterdir()) == ["old"]
    with pytest.raises(WorkDirError, match="inputs directory does not exist"):
        run_module(spec_for("true"), module_dir=None, work_dir=tmp_path / "w", inputs_dir=tmp_path / "nope",
                   client=client)
    needs = parse_spec({"job": {"Spec": {"Docker": {"Image": BUSYBOX}}}, "inputFiles": {"required": ["data.csv"]}})
    with pytest.raises(WorkDirError, match="data.csv"):
        run_module(needs, module_dir=None, work_dir=tmp_path / "w", inputs_dir=tmp_path, client=client)
    assert not (tmp_path / "w").exists()


def test_extra_declared_output_is_collected_under_outputs(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = parse_spec({"job": {"Spec": {
        "Docker": {"Image": BUSYBOX, "Entrypoint": ["sh", "-c", "echo r > /results/r.txt; echo o > /outputs/o.txt"]},
        "Outputs": [{"Name": "outputs", "Path": "/outputs"}, {"Name": "results", "Path": "/results"}],
    }}})
    result, _ = run(spec, tmp_path / "work", client)
    assert (result.result_dir / "outputs" / "o.txt").read_text() == "o\n"
    assert (result.result_dir / "outputs" / "results" / "r.txt").read_text() == "r\n"
    bad = parse_spec({"job": {"Spec": {"Docker": {"Image": BUSYBOX},
                                       "Outputs": [{"Name": "../escape", "Path": "/results"}]}}})
    with pytest.raises(SpecError, match=r"Outputs\[0\]\.Name"):
        run_module(bad, module_dir=None, work_dir=tmp_path / "bad", client=client)


# --------------------------------------------------------------------------
# Timeouts, caps, OOM
# --------------------------------------------------------------------------


def test_timeout_kills_and_removes_the_container(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = spec_for("echo started; sleep 60; echo never", timeout=1)
    started = time.monotonic()
    result, job_id = run(spec, tmp_path / "work", client)
    assert time.monotonic() - started < 10
    assert result.timed_out is True
    assert result.exit_code == TIMEOUT_EXIT_CODE
    assert (result.result_dir / "exitCode").read_text() == "124"
    assert (result.result_dir / "stdout").read_text() == "started\n"
    assert job_containers(client, job_id) == []


def test_provider_max_timeout_caps_the_spec(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = spec_for("sleep 60", timeout=600)
    assert effective_timeout(spec, ExecutorLimits(max_timeout=1)) == 1
    result, _ = run(spec, tmp_path / "work", client, limits=ExecutorLimits(max_timeout=1))
    assert result.timed_out and result.exit_code == TIMEOUT_EXIT_CODE


def test_effective_timeout_rules() -> None:
    limits = ExecutorLimits(max_timeout=100, default_timeout=50)
    assert effective_timeout(spec_for("true", timeout=None), limits) == 50
    assert effective_timeout(spec_for("true", timeout=0), limits) == 50
    assert effective_timeout(spec_for("true", timeout=7), limits) == 7
    assert effective_timeout(spec_for("true", timeout=1000), limits) == 100
    both = parse_spec({"job": {"Spec": {"Docker": {"Image": BUSYBOX}, "Timeout": 30}}, "executionTimeoutSeconds": 20})
    assert effective_timeout(both, limits) == 20


def test_output_cap_discards_the_result(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = spec_for("head -c 300000 /dev/zero > /outputs/big.bin")
    job_id = new_job_id()
    with pytest.raises(OutputTooLargeError) as caught:
        run_module(spec, module_dir=None, work_dir=tmp_path / "work", client=client, job_id=job_id,
                   limits=ExecutorLimits(max_output_bytes=200_000))
    assert caught.value.what == "bytes" and caught.value.limit == 200_000
    assert not (tmp_path / "work").exists()  # created by run_module: removed with the partial result
    assert job_containers(client, job_id) == []
    # A work dir that existed before is left, but empty.
    given = tmp_path / "given"
    given.mkdir()
    with pytest.raises(OutputTooLargeError):
        run_module(spec, module_dir=None, work_dir=given, client=client,
                   limits=ExecutorLimits(max_output_bytes=200_000))
    assert list(given.iterdir()) == []


def test_output_cap_counts_stdout_and_file_count(client: docker.DockerClient, tmp_path: Path) -> None:
    noisy = spec_for("head -c 150000 /dev/zero | tr '\\0' x")
    with pytest.raises(OutputTooLargeError):
        run_module(noisy, module_dir=None, work_dir=tmp_path / "a", client=client,
                   limits=ExecutorLimits(max_output_bytes=100_000))
    many = spec_for("for i in $(seq 50); do : > /outputs/f$i; done")
    with pytest.raises(OutputTooLargeError) as caught:
        run_module(many, module_dir=None, work_dir=tmp_path / "b", client=client,
                   limits=ExecutorLimits(max_output_files=20))
    assert caught.value.what == "files"


def test_output_cap_stops_a_running_job_early(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = spec_for("head -c 2000000 /dev/zero > /outputs/big.bin; sleep 60", timeout=60)
    job_id = new_job_id()
    started = time.monotonic()
    with pytest.raises(OutputTooLargeError):
        run_module(spec, module_dir=None, work_dir=tmp_path / "work", client=client, job_id=job_id,
                   limits=ExecutorLimits(max_output_bytes=1_000_000, poll_interval=0.2))
    assert time.monotonic() - started < 15
    assert job_containers(client, job_id) == []


def test_stdout_and_stderr_capture_is_capped(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = spec_for("head -c 50000 /dev/zero | tr '\\0' o; head -c 30000 /dev/zero | tr '\\0' e >&2;"
                    " echo done > /outputs/d")
    result, _ = run(spec, tmp_path / "work", client, limits=ExecutorLimits(max_log_bytes=10_000))
    assert (result.result_dir / "stdout").read_bytes() == b"o" * 10_000
    assert (result.result_dir / "stderr").read_bytes() == b"e" * 10_000
    assert result.stdout_truncated and result.stderr_truncated
    assert result.exit_code == 0
    assert (result.result_dir / "outputs" / "d").read_text() == "done\n"


def test_memory_limit_oom_kill(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = spec_for("x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived", resources={"Memory": "32mb"})
    result, _ = run(spec, tmp_path / "work", client)
    assert result.exit_code != 0
    assert "survived" not in (result.result_dir / "stdout").read_text()
    assert result.oom_killed is True


# --------------------------------------------------------------------------
# Cleanup on every path
# --------------------------------------------------------------------------


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_exception_mid_run_removes_container_and_result(client: docker.DockerClient, tmp_path: Path,
                                                        error: type[BaseException]) -> None:
    seen: list[str] = []

    def interrupt(container: Any) -> None:
        container.reload()
        seen.append(container.status)
        raise error("injected mid-run")

    job_id = new_job_id()
    with pytest.raises(error, match="injected mid-run"):
        run_module(spec_for("sleep 60"), module_dir=None, work_dir=tmp_path / "work", client=client,
                   job_id=job_id, on_started=interrupt)
    assert seen == ["running"]
    assert job_containers(client, job_id) == []
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_a_container_stopped_from_outside_is_no_result(client: docker.DockerClient, tmp_path: Path, how: str) -> None:
    """The engine stopping (SIGTERM, then SIGKILL) or someone killing the container is not the
    module's exit: the run fails (so a provider retries it) instead of yielding exit code 137/143."""
    timers: list[threading.Timer] = []

    def from_outside(container: Any) -> None:
        act = container.kill if how == "kill" else (lambda: container.stop(timeout=1))
        timers.append(threading.Timer(1.0, act))
        timers[-1].start()

    job_id = new_job_id()
    with pytest.raises(ContainerError, match="stopped from outside"):
        run_module(spec_for("sleep 60", timeout=60), module_dir=None, work_dir=tmp_path / "work", client=client,
                   job_id=job_id, on_started=from_outside)
    timers[0].join()
    assert job_containers(client, job_id) == []


def test_a_module_may_still_fail_with_its_own_exit_code(client: docker.DockerClient, tmp_path: Path) -> None:
    result, _ = run(spec_for("echo failing; exit 3"), tmp_path / "work", client)
    assert result.exit_code == 3 and not result.timed_out


def test_real_sigint_while_waiting_removes_container_and_result(client: docker.DockerClient,
                                                               tmp_path: Path) -> None:
    """A real SIGINT (Ctrl-C) delivered to the main thread while run_module waits.

    Python's own handler (KeyboardInterrupt) is installed for the test: test
    runners such as ``ape test`` replace it with one that ends the session.
    """
    job_id = new_job_id()
    timer = threading.Timer(1.0, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_module(spec_for("sleep 60", timeout=60), module_dir=None, work_dir=tmp_path / "work",
                       client=client, job_id=job_id)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    # ended by the interrupt, not by the container's own 60 s sleep (a bound from the job, not a speed target)
    assert time.monotonic() - started < 60
    assert job_containers(client, job_id) == []
    assert not (tmp_path / "work").exists()


def test_output_after_a_long_silence_is_kept(client: docker.DockerClient, tmp_path: Path) -> None:
    """The attach stream must outlive the client's request timeout (here 1 s)."""
    impatient = docker.from_env(timeout=1)  # the same engine as `client`, which checked it answers
    spec = spec_for("echo before; sleep 2.5; echo after >&2; echo after")
    result, _ = run(spec, tmp_path / "work", impatient)
    assert (result.result_dir / "stdout").read_text() == "before\nafter\n"
    assert (result.result_dir / "stderr").read_text() == "after\n"


def test_missing_entrypoint_is_a_container_error_and_removed(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = parse_spec({"job": {"Spec": {"Docker": {"Image": BUSYBOX, "Entrypoint": ["/no/such/binary"]}}}})
    job_id = new_job_id()
    with pytest.raises(ContainerError, match="no/such/binary"):
        run_module(spec, module_dir=None, work_dir=tmp_path / "work", client=client, job_id=job_id)
    assert job_containers(client, job_id) == []
    assert not (tmp_path / "work").exists()


def test_cleanup_stale_containers_removes_a_jobs_leftovers(client: docker.DockerClient) -> None:
    job_id = f"stale-{uuid.uuid4().hex}"
    leftover = client.containers.create(BUSYBOX, ["sleep", "60"], labels={JOB_LABEL: job_id}, network_mode="none")
    leftover.start()
    try:
        assert cleanup_stale_containers(client, job_id=job_id) == [leftover.id]
        assert job_containers(client, job_id) == []
        assert cleanup_stale_containers(client, job_id=job_id) == []
    finally:
        for container in job_containers(client, job_id):
            container.remove(force=True)


def test_cleanup_under_a_data_dir_removes_only_that_services_containers(
        client: docker.DockerClient, tmp_path: Path) -> None:
    """A service restarted after SIGKILL removes the containers whose work dirs are
    in its own data dir (created or running), and leaves another service's alone."""
    label = {JOB_LABEL: f"stale-{uuid.uuid4().hex}"}
    mine, theirs = tmp_path / "provider" / "runs" / "job-1", tmp_path / "mediator" / "runs" / "job-2"
    for d in (mine, theirs):
        d.mkdir(parents=True)
    created = client.containers.create(BUSYBOX, ["sleep", "60"], labels=label, network_mode="none",
                                       volumes={str(mine): {"bind": "/outputs", "mode": "rw"}})
    running = client.containers.create(BUSYBOX, ["sleep", "60"], labels=label, network_mode="none",
                                       volumes={str(mine): {"bind": "/outputs", "mode": "rw"}})
    running.start()
    other = client.containers.create(BUSYBOX, ["sleep", "60"], labels=label, network_mode="none",
                                     volumes={str(theirs): {"bind": "/outputs", "mode": "rw"}})
    try:
        removed = cleanup_stale_containers(client, under=tmp_path / "provider")
        assert sorted(removed) == sorted([created.id, running.id])
        assert [c.id for c in job_containers(client, label[JOB_LABEL])] == [other.id]
        assert cleanup_stale_containers(client, under=tmp_path / "provider") == []
    finally:
        for container in job_containers(client, label[JOB_LABEL]):
            container.remove(force=True)


# --------------------------------------------------------------------------
# GPUs
# --------------------------------------------------------------------------


def test_gpu_job_refused_before_anything_starts(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = spec_for("nvidia-smi", machine={"gpu": 1}, resources={"GPU": "1"})
    assert required_gpus(spec) == 1
    job_id = new_job_id()
    with pytest.raises(GPUUnavailableError, match="no NVIDIA GPU") as caught:
        run_module(spec, module_dir=None, work_dir=tmp_path / "work", gpus=[], client=client, job_id=job_id)
    assert (caught.value.required, caught.value.available) == (1, 0)
    assert not (tmp_path / "work").exists()
    assert job_containers(client, job_id) == []
    two = spec_for("true", resources={"GPU": "2"})
    with pytest.raises(GPUUnavailableError, match="fewer GPUs"):
        run_module(two, module_dir=None, work_dir=tmp_path / "work", gpus=[FAKE_GPU], client=client)
    big = spec_for("true", machine={"gpu": 1, "gpus": [{"vram": 40000}]})
    with pytest.raises(GPUUnavailableError, match="40000 MB of VRAM"):
        run_module(big, module_dir=None, work_dir=tmp_path / "work", gpus=[FAKE_GPU], client=client)


def test_gpu_all_needs_a_gpu_and_asks_the_engine_for_every_one(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = spec_for("nvidia-smi -L", resources={"GPU": "all"})
    assert (required_gpus(spec), gpu_request_count(spec)) == (1, -1)  # docker run --gpus all
    assert gpu_request_count(spec_for("true", resources={"GPU": "2"})) == 2
    assert gpu_request_count(spec_for("true")) == 0
    with pytest.raises(GPUUnavailableError, match="no NVIDIA GPU"):
        run_module(spec, module_dir=None, work_dir=tmp_path / "work", gpus=[], client=client)
    assert not (tmp_path / "work").exists()


def test_fault_injection_fake_gpu_list_reaches_the_engine_as_a_device_request(
        client: docker.DockerClient, tmp_path: Path) -> None:
    """With an injected GPU list the runner asks Docker for a GPU device; an engine
    without the NVIDIA runtime refuses that at start (proving the request is sent)."""
    if detect_gpus() or any(runtime == "nvidia" for runtime in client.info().get("Runtimes", {})):
        pytest.skip("this machine can give GPUs to containers; the real GPU path is tested with the gpu-probe module")
    spec = spec_for("true", machine={"gpu": 1})
    job_id = new_job_id()
    with pytest.raises(ContainerError, match="(?i)device driver|gpu"):
        run_module(spec, module_dir=None, work_dir=tmp_path / "work", gpus=[FAKE_GPU], client=client, job_id=job_id)
    assert job_containers(client, job_id) == []


# --------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------


def _module(directory: Path, script: str, base: str = BUSYBOX) -> Path:
    directory.mkdir(parents=True)
    (directory / "Dockerfile").write_text(f"FROM {base}\nCOPY run.sh /run.sh\nENTRYPOINT [\"sh\", \"/run.sh\"]\n")
    (directory / "run.sh").write_text(script)
    return directory


def test_missing_image_without_dockerfile_explains_no_registry(client: docker.DockerClient, tmp_path: Path) -> None:
    spec = parse_spec({"job": {"Spec": {"Docker": {"Image": "ghcr.io/example/nowhere:1.0"}}}})
    with pytest.raises(ImageNotAvailableError, match="no image registry is reachable") as caught:
        run_module(spec, module_dir=tmp_path, work_dir=tmp_path / "work", client=client)
    assert caught.value.image == "ghcr.io/example/nowhere:1.0"
    assert not (tmp_path / "work").exists()


def test_pinned_image_is_built_from_the_dockerfile_once(client: docker.DockerClient, tmp_path: Path) -> None:
    nonce = uuid.uuid4().hex  # a fresh build context, so this really builds
    module = _module(tmp_path / "Pinned Module", f"echo built {nonce}\n")
    tag = module_image_tag(module)
    assert tag.startswith("lilypad-module/pinned-module:")
    assert module_image_tag(module) == tag
    image = "example/pinned@sha256:" + "ab" * 32
    spec = parse_spec({"job": {"Spec": {"Docker": {"Image": image}}}})
    try:
        started = time.monotonic()
        result, _ = run(spec, tmp_path / "one", client, module_dir=module)
        first_s = time.monotonic() - started
        assert result.image == tag
        assert (result.result_dir / "stdout").read_text() == f"built {nonce}\n"
        built_id = client.images.get(tag).id
        started = time.monotonic()
        assert ensure_image(image, module, client) == tag  # cached by content hash: no rebuild
        assert time.monotonic() - started < first_s
        assert client.images.get(tag).id == built_id
        (module / "run.sh").write_text(f"echo changed {nonce}\n")
        assert module_image_tag(module) != tag
        checkout = tmp_path / "cowsay-1f2e3d4c" / ("ab12" * 10)  # a module cache checkout dir
        checkout.parent.mkdir()
        module.rename(checkout)
        assert module_image_tag(checkout).startswith("lilypad-module/cowsay-1f2e3d4c:")
    finally:
        client.images.remove(tag, force=True)


def test_local_spec_image_wins_over_dockerfile(client: docker.DockerClient, tmp_path: Path) -> None:
    module = _module(tmp_path / "mod", "echo from dockerfile\n")
    result, _ = run(spec_for("echo from spec image"), tmp_path / "work", client, module_dir=module)
    assert result.image == BUSYBOX
    assert (result.result_dir / "stdout").read_text() == "from spec image\n"


def test_failing_build_raises_image_build_error(client: docker.DockerClient, tmp_path: Path) -> None:
    module = tmp_path / "broken"
    module.mkdir()
    (module / "Dockerfile").write_text(f"FROM {BUSYBOX}\nRUN echo failing-step && exit 7\n")
    spec = parse_spec({"job": {"Spec": {"Docker": {"Image": "lilypad-module/broken:v1"}}}})
    with pytest.raises(ImageBuildError) as caught:
        run_module(spec, module_dir=module, work_dir=tmp_path / "work", client=client)
    assert "failing-step" in caught.value.log
    assert caught.value.tag == module_image_tag(module)


def test_engine_unreachable_says_run_make_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(DockerUnavailableError, match="make setup"):
        docker_client(timeout=5)
    with pytest.raises(DockerUnavailableError, match="make setup"):
        run_module(spec_for("true"), module_dir=None, work_dir=tmp_path / "work")
    assert not (tmp_path / "work").exists()
    assert os.environ["DOCKER_HOST"].endswith("no-docker.sock")


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_output_bytes"):
        ExecutorLimits(max_output_bytes=0)
    with pytest.raises(ValueError, match="max_cpu_millis"):
        ExecutorLimits(max_cpu_millis=-1)


@pytest.fixture(autouse=True)
def _no_leftover_containers(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each engine test, no container of this session may remain."""
    yield
    if "client" not in request.fixturenames:
        return
    engine = request.getfixturevalue("client")
    # sparse: no per-container inspect, which fails when another process's container goes meanwhile
    leftovers = [c for c in engine.containers.list(all=True, sparse=True, filters={"label": JOB_LABEL})
                 if (c.attrs.get("Labels") or {}).get(JOB_LABEL, "").startswith(SESSION)]
    for container in leftovers:
        container.remove(force=True)
    assert [c.id for c in leftovers] == []
