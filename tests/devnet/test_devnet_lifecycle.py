"""``lilypad devnet up/status/logs/down`` on real processes: a job runs against it, a
killed provider is restarted, down stops exactly what it started, up resumes the chain."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

from lilypad.devnet.control import down, pid_alive, running_supervisor
from lilypad.devnet.network import lilypad_exe
from lilypad.devnet.state import DevnetState

COMPONENTS = {"anvil", "solver", "provider-1", "mediator", "bridge", "kubo-provider-1", "kubo-mediator",
              "kubo-client"}


def devnet(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([lilypad_exe(), "devnet", *args, "--data-dir", str(root)], capture_output=True, text=True,
                          timeout=timeout)


def status_json(root: Path) -> tuple[int, dict]:
    out = devnet(root, "status", "--json", timeout=60)
    return out.returncode, json.loads(out.stdout)


def run_cowsay(root: Path, client: Path, message: str) -> str:
    env = {**os.environ, **DevnetState.load(root).client_env(), "LILYPAD_DATA_DIR": str(client)}
    assert env["LILYPAD_IPFS_API"] == DevnetState.load(root).ipfs["kubo-client"]["api"]
    out = subprocess.run([lilypad_exe(), "run", "cowsay:v0.0.1", "-i", f"Message={message}", "--data-dir",
                          str(client)], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr + devnet(root, "logs", "-n", "30").stdout
    assert "fetched from ipfs" in out.stderr, out.stderr  # the provider's node -> the client's node
    return "\n".join(p.read_text() for p in (client / "downloaded-files").glob("*/stdout"))


def recorded_pids(root: Path) -> dict[str, int]:
    state = DevnetState.load(root)
    pids = {c.name: c.pid for c in state.components if c.pid}
    pids["supervisor"] = state.supervisor_pid
    return pids


def test_up_status_job_restart_down_resume(tmp_path):
    root = tmp_path / "devnet"
    up = devnet(root, "up", "--providers", "1", "--slots", "2")
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert "devnet up in" in up.stdout and "lilypad run cowsay" in up.stdout

        # status: every component healthy, with its pid, port and address
        code, status = status_json(root)
        assert code == 0, status
        assert {c["name"] for c in status["components"]} == COMPONENTS
        assert all(c["health"] == "healthy" and c["pid"] and c["port"] for c in status["components"]), status
        assert all(c["address"] for c in status["components"] if c["name"] != "anvil" and c["kind"] != "kubo")
        contracts = status["contracts"]
        assert set(contracts) >= {"token", "controller", "payments", "job_creator"}
        table = devnet(root, "status")
        assert table.returncode == 0 and "provider-1" in table.stdout and "healthy" in table.stdout

        # a real CLI job against it
        assert "first moo" in run_cowsay(root, tmp_path / "client1", "first moo")

        # logs: the solver's, and following picks up new lines
        logs = devnet(root, "logs", "solver", "-n", "5")
        assert logs.returncode == 0 and len(logs.stdout.splitlines()) == 5 and "/api/v1/" in logs.stdout
        follower = subprocess.Popen([lilypad_exe(), "devnet", "logs", "solver", "-f", "-n", "0", "--data-dir",
                                     str(root)], stdout=subprocess.PIPE, text=True)
        try:
            ready, _, _ = select.select([follower.stdout], [], [], 20)
            assert ready and "HTTP" in follower.stdout.readline()  # the provider polls the solver constantly
        finally:
            follower.terminate()
            follower.wait(10)
        unknown = devnet(root, "logs", "nope")
        assert unknown.returncode != 0 and "choose from" in unknown.stderr and "Traceback" not in unknown.stderr

        # a crashed provider is restarted, and counted
        old = recorded_pids(root)["provider-1"]
        os.kill(old, signal.SIGKILL)
        deadline = time.monotonic() + 90
        while True:
            code, status = status_json(root)
            prov = next(c for c in status["components"] if c["name"] == "provider-1")
            if code == 0 and prov["restarts"] == 1 and prov["pid"] != old:
                break
            assert time.monotonic() < deadline, status
            time.sleep(1)
        assert prov["health"] == "healthy" and prov["last_exit"] == -9

        # down stops every recorded process, and nothing else
        bystander = subprocess.Popen(["sleep", "1000"])
        try:
            pids = recorded_pids(root)
            assert len(pids) == len(COMPONENTS) + 1
            down = devnet(root, "down", timeout=120)
            assert down.returncode == 0, down.stderr
            assert [n for n, p in pids.items() if pid_alive(p)] == []
            assert bystander.poll() is None
        finally:
            bystander.kill()
            bystander.wait()
        code, status = status_json(root)
        assert code != 0 and status["status"] == "stopped"

        # up again resumes the same chain: same contracts, and jobs still run
        again = devnet(root, "up")
        assert again.returncode == 0, again.stderr + again.stdout
        code, status = status_json(root)
        assert code == 0 and status["contracts"] == contracts
        assert "second moo" in run_cowsay(root, tmp_path / "client2", "second moo")

        # up while it runs refuses clearly
        twice = devnet(root, "up", timeout=60)
        assert twice.returncode != 0 and "already running" in twice.stderr and "Traceback" not in twice.stderr
    finally:
        if devnet(root, "down", timeout=120).returncode != 0 and running_supervisor(DevnetState.load(root), root):
            down(root)  # never leave a network behind, even when the CLI is broken

    # a chain that lost its contracts cannot be resumed: a clear refusal naming the way out
    (root / "anvil-state.json").unlink()
    broken = devnet(root, "up")
    assert broken.returncode != 0 and "cannot resume" in broken.stderr and "--purge" in broken.stderr
    assert "Traceback" not in broken.stderr
    purge = devnet(root, "down", "--purge", timeout=120)
    assert purge.returncode == 0, purge.stderr
    assert not root.exists()


def test_down_and_up_refuse_directories_that_are_not_devnets(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    down = devnet(tmp_path, "down", "--purge", timeout=60)
    assert down.returncode != 0 and "no devnet" in down.stderr
    up = devnet(tmp_path, "up", timeout=60)
    assert up.returncode != 0 and "not a devnet directory" in up.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    status = devnet(tmp_path / "nothing", "status", timeout=60)
    assert status.returncode != 0 and "no devnet" in status.stderr
