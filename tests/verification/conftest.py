"""Fixtures of the verification tests: result directories written by hand, the
Docker engine, and verifier modules built from a script (real images, real containers)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from lilypad.exceptions import DockerUnavailableError
from lilypad.executor.docker_runner import docker_client

ResultMaker = Callable[..., Path]
VerifierMaker = Callable[[str], Path]


@pytest.fixture
def make_result(tmp_path: Path) -> ResultMaker:
    """``make_result(name, outputs={rel: bytes}, stdout=b"", exit_code=b"0")``: a result directory."""

    def make(name: str, *, outputs: dict[str, bytes] | None = None, stdout: bytes = b"ok\n",
             stderr: bytes = b"", exit_code: bytes = b"0") -> Path:
        root = tmp_path / name
        (root / "outputs").mkdir(parents=True)
        (root / "stdout").write_bytes(stdout)
        (root / "stderr").write_bytes(stderr)
        (root / "exitCode").write_bytes(exit_code)
        for rel, data in (outputs or {}).items():
            path = root / "outputs" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return root

    return make


@pytest.fixture(scope="session")
def client() -> docker.DockerClient:
    try:
        return docker_client()
    except DockerUnavailableError as exc:
        pytest.fail(f"{exc}", pytrace=False)


@pytest.fixture
def make_verifier(tmp_path: Path) -> VerifierMaker:
    """``make_verifier(script)``: a module directory whose ``verifier/`` runs ``script`` (busybox sh)."""
    count = [0]

    def make(script: str) -> Path:
        count[0] += 1
        module = tmp_path / f"module{count[0]}"
        context = module / "verifier"
        context.mkdir(parents=True)
        (context / "Dockerfile").write_text(
            "FROM lilypad/busybox:1\nCOPY verify.sh /verify.sh\nENTRYPOINT [\"/bin/sh\", \"/verify.sh\"]\n")
        (context / "verify.sh").write_text(script)
        return module

    return make
