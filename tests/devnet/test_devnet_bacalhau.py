"""``lilypad devnet up --executor bacalhau``: the devnet with its provider behind a local
Bacalhau cluster (an orchestrator and two compute nodes, separate processes on loopback)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bacalhau_support import require_bacalhau  # type: ignore[import-not-found]
from lilypad.devnet.network import lilypad_exe
from lilypad.devnet.state import DevnetState
from lilypad.executor.bacalhau.api import BacalhauClient


def devnet(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([lilypad_exe(), "devnet", *args, "--data-dir", str(root)], capture_output=True, text=True,
                          timeout=timeout)


def processes_under(root: Path) -> list[str]:
    """Command lines of running processes that name a path under ``root``."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(root) in cmdline and "bacalhau" in cmdline:
                found.append(cmdline)
    return found


def test_devnet_up_with_bacalhau_runs_a_job_on_the_cluster_and_down_stops_it(tmp_path):
    require_bacalhau()
    root = tmp_path / "devnet"
    up = devnet(root, "up", "--executor", "bacalhau", "--slots", "1")
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        state = DevnetState.load(root)
        assert state.executor == "bacalhau" and state.bacalhau_api.startswith("http://127.0.0.1:")
        assert "bacalhau" in up.stdout and state.bacalhau_api in up.stdout
        with BacalhauClient(state.bacalhau_api) as client:
            assert sorted(n.node_id for n in client.connected_compute_nodes()) == ["lilypad-c1", "lilypad-c2"]
        assert len(processes_under(root / "bacalhau")) == 4  # orchestrator, two compute nodes, registry
        client_dir = tmp_path / "client"
        env = {**os.environ, **state.client_env(), "LILYPAD_DATA_DIR": str(client_dir)}
        out = subprocess.run([lilypad_exe(), "run", "cowsay:v0.0.1", "-i", "Message=devnet on bacalhau",
                              "--data-dir", str(client_dir)], env=env, capture_output=True, text=True, timeout=240)
        assert out.returncode == 0, out.stdout + out.stderr + devnet(root, "logs", "-n", "30").stdout
        assert "devnet on bacalhau" in "".join(p.read_text() for p in client_dir.glob("downloaded-files/*/stdout"))
        with BacalhauClient(state.bacalhau_api) as client:
            jobs = [j for j in client.jobs() if j["Name"].startswith("lilypad-")]
            assert len(jobs) == 1
            assert [e.state for e in client.executions(jobs[0]["ID"])] == ["Completed"]
    finally:
        down = devnet(root, "down", timeout=120)
    assert down.returncode == 0, down.stderr + down.stdout
    assert processes_under(root / "bacalhau") == []
