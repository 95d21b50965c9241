"""A real Bacalhau cluster for tests: orchestrator + two compute nodes + registry, on loopback.

``bacalhau_cluster`` (session) is shared by the tests that only submit jobs;
a test that kills a node starts its own with :func:`start_cluster`. Tests are
skipped only when the ``bacalhau`` binary (``make bacalhau``) or Debian's
``docker-registry`` (``make setup``) is missing on this machine.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lilypad.exceptions import GoToolMissingError
from lilypad.executor.bacalhau.cluster import LocalCluster
from lilypad.toolchain import find_go_tool

__all__ = ["bacalhau_cluster", "require_bacalhau", "start_cluster"]


def require_bacalhau() -> None:
    try:
        find_go_tool("bacalhau")
    except GoToolMissingError as exc:
        pytest.skip(f"this machine has no bacalhau binary ({exc}); `make bacalhau` builds it")
    if shutil.which("docker-registry") is None:
        pytest.skip("this machine has no docker-registry (Debian package); `make setup` installs it")


def start_cluster(root: Path, **options: object) -> LocalCluster:
    require_bacalhau()
    return LocalCluster(Path(root), **options).start()  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def bacalhau_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    # compute nodes may mount inputs from the tests' temporary directories (local inputs)
    base = tmp_path_factory.getbasetemp().resolve()
    cluster = start_cluster(tmp_path_factory.mktemp("bacalhau"), allowed_local_paths=(f"{base}/**",))
    try:
        yield cluster
    finally:
        cluster.stop()
