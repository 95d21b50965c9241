"""`ape run deploy` as an operator runs it: a real anvil, a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def anvil_on():
    """Start anvil on a port; returns a starter so a test can restart a fresh chain."""
    procs: list[subprocess.Popen] = []
    anvil = shutil.which("anvil")
    assert anvil, "anvil is installed by `make setup` (node_modules/@foundry-rs/anvil-linux-amd64/bin)"

    def start(port: int) -> subprocess.Popen:
        proc = subprocess.Popen([anvil, "--port", str(port), "--silent"], stdout=subprocess.DEVNULL)
        procs.append(proc)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return proc
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("anvil did not start")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def _deploy(port: int, deployments: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, APE_FOUNDRY_HOST=f"http://127.0.0.1:{port}", LILYPAD_DEPLOYMENTS_DIR=str(deployments))
    env.pop("WEB3_PRIVATE_KEY", None)
    return subprocess.run(
        ["ape", "run", "deploy", "--network", "ethereum:local:foundry", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_deploy_writes_file_is_idempotent_and_replaces_a_stale_record(anvil_on, tmp_path):
    port = _free_port()
    chain = anvil_on(port)
    first = _deploy(port, tmp_path)
    assert first.returncode == 0, first.stderr + first.stdout
    assert "Deployed and verified" in first.stdout
    record = json.loads((tmp_path / "ethereum-local.json").read_text())
    assert record["chain_id"] == 31337
    assert set(record["contracts"]) == {"token", "storage", "payments", "mediation", "controller", "job_creator"}
    assert record["bridges"], "local deploys grant BRIDGE_ROLE to a test account"

    again = _deploy(port, tmp_path)
    assert again.returncode == 0, again.stderr + again.stdout
    assert "already deployed" in again.stdout
    assert json.loads((tmp_path / "ethereum-local.json").read_text()) == record

    # A new chain on the same port: the record points at nothing, so deploy afresh.
    chain.terminate()
    chain.wait(10)
    anvil_on(port)
    fresh = _deploy(port, tmp_path)
    assert fresh.returncode == 0, fresh.stderr + fresh.stdout
    assert "not usable" in fresh.stdout and "Deployed and verified" in fresh.stdout


def test_bad_private_key_is_a_clear_error_and_never_echoed(anvil_on, tmp_path):
    port = _free_port()
    anvil_on(port)
    env = dict(os.environ, APE_FOUNDRY_HOST=f"http://127.0.0.1:{port}", LILYPAD_DEPLOYMENTS_DIR=str(tmp_path),
               WEB3_PRIVATE_KEY="0xnot-a-key-but-secret-looking")
    out = subprocess.run(["ape", "run", "deploy", "--network", "ethereum:local:foundry"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "WEB3_PRIVATE_KEY is not a valid private key" in out.stdout + out.stderr
    assert "secret-looking" not in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert not (tmp_path / "ethereum-local.json").exists()
