"""The deployments file: atomic writes, clear errors."""

from __future__ import annotations

import pytest

from lilypad.exceptions import DeploymentNotFoundError
from lilypad.protocol.deployments import Deployment, load_deployment, save_deployment


def test_round_trip(tmp_path):
    d = Deployment(ecosystem="ethereum", network="local", chain_id=31337, deployer="0x" + "1" * 40,
                   block_number=7, contracts={"token": "0x" + "2" * 40})
    path = save_deployment(d, tmp_path)
    assert path.name == "ethereum-local.json"
    assert load_deployment("ethereum", "local", tmp_path) == d
    assert [p.name for p in tmp_path.iterdir()] == ["ethereum-local.json"]  # no temp files left


def test_missing_file_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(DeploymentNotFoundError) as err:
        load_deployment("arbitrum", "sepolia", tmp_path)
    assert "arbitrum-sepolia.json" in str(err.value)
    assert "ape run deploy" in str(err.value)
