"""Untrusted code: a real hostile module (tests/security/modules/hostile, resolved
as a local module directory like any user's) run through the real executor and
Docker engine. Each attack is stopped by the sandbox, the container is gone
afterwards, the host is untouched and the executor keeps serving (a benign job
right after every attack succeeds)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from lilypad.exceptions import DockerUnavailableError, OutputTooLargeError
from lilypad.executor.docker_runner import JOB_LABEL, TIMEOUT_EXIT_CODE, ExecutorLimits, RunResult, docker_client, run_module
from lilypad.modules.resolve import ModuleResolver
from security_support import count

HOSTILE = Path(__file__).parent / "modules" / "hostile"
MIB = 1 << 20
LIMITS = ExecutorLimits(max_timeout=6, max_output_bytes=8 * MIB, max_log_bytes=1 * MIB, pids_limit=64,
                        default_memory_bytes=64 * MIB, tmpfs_bytes=4 * MIB, poll_interval=0.2)
SESSION = f"sec-{uuid.uuid4().hex[:8]}-"


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    try:
        return docker_client()
    except DockerUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def resolver(tmp_path_factory: pytest.TempPathFactory) -> ModuleResolver:
    return ModuleResolver(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def attack(engine: docker.DockerClient, resolver: ModuleResolver, tmp_path: Path) -> Iterator[Any]:
    job_ids: list[str] = []

    def run(name: str, *, work: str = "work") -> RunResult:
        resolved = resolver.resolve(str(HOSTILE))
        spec = resolved.render({"Attack": name})
        job_ids.append(SESSION + uuid.uuid4().hex)
        count("sandbox_attacks")
        return run_module(spec, module_dir=resolved.path, work_dir=tmp_path / work, limits=LIMITS, client=engine,
                          job_id=job_ids[-1], gpus=[])

    yield run
    for job_id in job_ids:
        assert engine.containers.list(all=True, filters={"label": f"{JOB_LABEL}={job_id}"}) == [], "container left"
    # The executor still serves: a benign job right after the attack.
    healthy = run("network", work="after")
    assert healthy.exit_code == 0 and "wget=fail" in (healthy.result_dir / "outputs" / "report").read_text()


def report(result: RunResult) -> dict[str, str]:
    text = (result.result_dir / "outputs" / "report").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_no_network_from_inside(attack: Any) -> None:
    seen = report(attack("network"))
    assert (seen["wget"], seen["nc"], seen["dns"], seen["docker_sock"]) == ("fail", "fail", "fail", "absent")
    assert seen["ifaces"].split() == ["lo"]


def test_no_write_outside_outputs(attack: Any, tmp_path: Path) -> None:
    seen = report(attack("escape"))
    assert {k: v for k, v in seen.items() if k.startswith("write:")} == {
        "write:/escape": "fail", "write:/etc/escape": "fail", "write:/usr/bin/escape": "fail",
        "write:/inputs/escape": "fail", "write:/outputs/../escape": "fail",
        "write:/proc/sys/kernel/hostname": "fail"}
    assert (seen["mount"], seen["chroot"]) == ("fail", "fail")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "work" / "escape").exists()


def test_a_fork_bomb_hits_the_pids_limit_and_the_timeout(attack: Any) -> None:
    started = time.monotonic()
    result = attack("forkbomb")
    assert time.monotonic() - started < LIMITS.max_timeout + 30
    stderr = (result.result_dir / "stderr").read_text(errors="replace")
    # The pids limit made forks fail (the shell says so), or the timeout ended it.
    assert result.timed_out or result.exit_code != 0 or "fork" in stderr.lower(), (result, stderr[-500:])


def test_unbounded_memory_is_oom_killed(attack: Any) -> None:
    result = attack("memory")
    assert result.oom_killed or result.exit_code == 137 or result.timed_out, result


def test_filling_the_disk_is_stopped_and_the_result_discarded(attack: Any, tmp_path: Path) -> None:
    with pytest.raises(OutputTooLargeError):
        attack("disk")
    assert not (tmp_path / "work").exists(), "the partial result is deleted"


def test_filling_tmp_stops_at_the_tmpfs_size(attack: Any) -> None:
    seen = report(attack("tmpfs"))
    assert int(seen["tmp_kib"]) <= LIMITS.tmpfs_bytes // 1024


def test_running_forever_is_killed_at_the_timeout(attack: Any) -> None:
    started = time.monotonic()
    result = attack("forever")
    assert result.timed_out and result.exit_code == TIMEOUT_EXIT_CODE
    assert time.monotonic() - started < LIMITS.max_timeout + 20


def test_printing_gigabytes_is_capped(attack: Any) -> None:
    try:
        result = attack("loud")
    except OutputTooLargeError:
        return  # stopped by the output cap: also a clean end
    assert result.stdout_truncated and result.stderr_truncated
    for name in ("stdout", "stderr"):
        assert (result.result_dir / name).stat().st_size <= LIMITS.max_log_bytes
