"""`ape run deploy` as an operator runs it: a real anvil, a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _deploy(port: int, deployments: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, APE_FOUNDRY_HOST=f"http://127.0.0.1:{port}", LILYPAD_DEPLOYMENTS_DIR=str(deployments))
    env.pop("WEB3_PRIVATE_KEY", None)
    return subprocess.run(
        ["ape", "run", "deploy", "--network", "ethereum:local:foundry", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_deploy_writes_file_is_idempotent_and_replaces_a_stale_record(anvil, tmp_path):
    chain = anvil()
    port = chain.port
    first = _deploy(port, tmp_path)
    assert first.returncode == 0, first.stderr + first.stdout
    assert "Deployed and verified" in first.stdout
    record = json.loads((tmp_path / "ethereum-local.json").read_text())
    assert record["chain_id"] == 31337
    assert set(record["contracts"]) == {"token", "storage", "payments", "mediation", "mediator_registry", "controller",
                                       "job_creator"}
    assert "bridges" not in record  # relaying smart-contract jobs needs no role

    again = _deploy(port, tmp_path)
    assert again.returncode == 0, again.stderr + again.stdout
    assert "already deployed" in again.stdout
    assert json.loads((tmp_path / "ethereum-local.json").read_text()) == record

    # A new chain on the same port: the record points at nothing, so deploy afresh.
    chain.stop()
    anvil(port=port)
    fresh = _deploy(port, tmp_path)
    assert fresh.returncode == 0, fresh.stderr + fresh.stdout
    assert "not usable" in fresh.stdout and "Deployed and verified" in fresh.stdout


def test_bad_private_key_is_a_clear_error_and_never_echoed(anvil, tmp_path):
    port = anvil().port
    env = dict(os.environ, APE_FOUNDRY_HOST=f"http://127.0.0.1:{port}", LILYPAD_DEPLOYMENTS_DIR=str(tmp_path),
               WEB3_PRIVATE_KEY="0xnot-a-key-but-secret-looking")
    out = subprocess.run(["ape", "run", "deploy", "--network", "ethereum:local:foundry"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "WEB3_PRIVATE_KEY is not a valid private key" in out.stdout + out.stderr
    assert "secret-looking" not in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert not (tmp_path / "ethereum-local.json").exists()
