"""``lilypad doctor --bacalhau-api URL --bacalhau-registry HOST:PORT`` against a real Bacalhau
cluster (tests/bacalhau_support.py), each check broken for real: the registry stopped, the
compute nodes killed, an API port with nothing behind it."""

from __future__ import annotations

import time

from bacalhau_support import start_cluster  # type: ignore[import-not-found]
from lilypad.devnet.processes import dev_private_key, free_port
from lilypad.executor.bacalhau.api import BacalhauClient

from test_doctor import FUNDED, doctor, line  # type: ignore[import-not-found]


def test_bacalhau_checks_pass_on_a_healthy_cluster_and_fail_for_each_fault(devchain, tmp_path):
    cluster = start_cluster(tmp_path / "cluster", disconnect_timeout="3s")
    try:
        args = ("--rpc", devchain.rpc_url, "--bacalhau-api", cluster.api_url,
                "--bacalhau-registry", cluster.registry_host)
        out = doctor(*args, deployments=devchain.deployments, key=dev_private_key(FUNDED))
        assert out.returncode == 0, out.stdout + out.stderr
        assert line(out.stdout, "bacalhau") == f"[ok  ] bacalhau: orchestrator v1.9.3 answers at {cluster.api_url}"
        nodes = line(out.stdout, "bacalhau-nodes")
        assert nodes.startswith("[ok  ] bacalhau-nodes: 2 connected compute node(s)") and "2 CPU, 2048 MiB" in nodes
        assert line(out.stdout, "bacalhau-registry").startswith("[ok  ]")

        cluster.registry.stop()
        out = doctor(*args, deployments=devchain.deployments, key=dev_private_key(FUNDED))
        assert out.returncode == 1
        assert "docker-registry" in line(out.stdout, "bacalhau-registry")
        assert line(out.stdout, "bacalhau-registry").startswith("[FAIL]")

        for node in cluster.nodes:
            node.process.kill()
        deadline = time.monotonic() + 60
        with BacalhauClient(cluster.api_url) as client:
            while client.connected_compute_nodes() and time.monotonic() < deadline:
                time.sleep(0.5)
        out = doctor(*args, deployments=devchain.deployments)
        assert line(out.stdout, "bacalhau-nodes").startswith("[FAIL] bacalhau-nodes: no connected compute node")
    finally:
        cluster.stop()
    dead = f"http://127.0.0.1:{free_port()}"
    out = doctor("--rpc", devchain.rpc_url, "--bacalhau-api", dead, deployments=devchain.deployments)
    assert out.returncode == 1
    assert line(out.stdout, "bacalhau").startswith(f"[FAIL] bacalhau: the Bacalhau API at {dead} does not answer")
    assert "lilypad devnet up --executor bacalhau" in line(out.stdout, "bacalhau")
