"""connected(): network choice + deployments file -> LilypadContracts, from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lilypad.chain.connect import connected, provider_from_choice
from lilypad.exceptions import ChainConnectionError, DeploymentMismatchError, DeploymentNotFoundError
from lilypad.protocol.deal import AgreementState
from lilypad.protocol.deployments import save_deployment

#: What the tests are connected to (ape test's own anvil): connected() reuses it.
CHOICE = "ethereum:local:foundry"


@pytest.fixture
def anvil_url(chain):
    return chain.provider.http_uri


@pytest.fixture
def deployments_dir(tmp_path, deployment):
    directory = tmp_path / "deployments"
    save_deployment(deployment, directory)
    assert (directory / "ethereum-local.json").is_file()
    return directory


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working directory that is not the repository (and holds no ape project)."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_connected_from_another_directory(deployments_dir, deployment, elsewhere, networks, job_creator):
    before = networks.provider
    with connected(CHOICE, deployments_dir) as contracts:
        assert Path.cwd() == elsewhere
        assert contracts.addresses == deployment.contracts
        assert contracts.controller.getPaymentsAddress() == deployment.contracts["payments"]
        assert contracts.balance_of(job_creator) > 0
        assert contracts.required_deposit() == 4 * 10**18
    assert networks.provider is before and before.is_connected  # reused and left as it was


def test_connected_in_a_fresh_process_outside_the_repository(
    anvil_url, deployments_dir, deployment, make_deal, contracts, job_creator, tmp_path
):
    deal = make_deal()
    contracts.ensure_allowance(job_creator, deal.job_creator_deposit)
    contracts.agree(deal, job_creator)
    cwd = tmp_path / "service"
    cwd.mkdir()
    script = textwrap.dedent(
        f"""
        import json, os, sys
        import ape
        from lilypad.chain.connect import connected
        with connected({CHOICE!r}, {str(deployments_dir)!r}) as c:
            print(json.dumps({{
                "cwd": os.getcwd(),
                "ape_project": str(ape.project.path),
                "addresses": c.addresses,
                "state": c.state({"0x" + deal.deal_id.hex()!r}).name,
                "balance": c.balance_of({job_creator.address!r}),
                "py_evm_imported": "eth" in sys.modules,
            }}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APE_", "PYTEST"))}
    env["APE_FOUNDRY_HOST"] = anvil_url  # attach to the running anvil, as a devnet service does
    done = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["cwd"] == str(cwd) and out["ape_project"] == str(cwd)  # ape's own project is the cwd's
    assert out["addresses"] == deployment.contracts
    assert out["state"] == AgreementState.DEAL_NEGOTIATING.name
    assert out["balance"] == contracts.balance_of(job_creator)
    assert out["py_evm_imported"] is False  # provider_from_choice skipped ape-test's in-memory chain


@pytest.mark.parametrize("choice", [
    "ethereum:local:foundry", "arbitrum:local:foundry", "arbitrum:sepolia:node", "arbitrum:mainnet:node",
    "ethereum:sepolia:node", "ethereum:local:node", "ethereum:mainnet-fork:foundry", "ethereum:local:test",
])
def test_provider_from_choice_is_the_provider_ape_would_give(networks, choice):
    settings = {"host": "http://127.0.0.1:1"} if choice.endswith("foundry") else {}
    ours = provider_from_choice(choice, dict(settings))
    apes = networks.get_provider_from_choice(choice, provider_settings=dict(settings))
    assert (type(ours), ours.name, ours.network_choice, ours.provider_settings) == (
        type(apes), apes.name, apes.network_choice, apes.provider_settings)
    assert not ours.is_connected


def test_missing_deployments_file(tmp_path):
    with pytest.raises(DeploymentNotFoundError, match="ethereum-local.json"):
        with connected(CHOICE, tmp_path / "nothing-here"):
            pass


def test_unknown_network(tmp_path):
    with pytest.raises(ChainConnectionError, match="not a usable network choice"):
        with connected("ethereum:no-such-network:node", tmp_path):
            pass


def test_wrong_chain_id(deployment, tmp_path):
    save_deployment(deployment.model_copy(update={"chain_id": 42161}), tmp_path)
    with pytest.raises(DeploymentMismatchError, match="serves chain id 31337, the deployment is for chain id 42161"):
        with connected(CHOICE, tmp_path):
            pass


def test_contracts_without_code(deployment, tmp_path):
    nowhere = "0x000000000000000000000000000000000000dEaD"
    save_deployment(deployment.model_copy(update={"contracts": {**deployment.contracts, "mediation": nowhere}}),
                    tmp_path)
    with pytest.raises(DeploymentMismatchError, match=f"no code at the mediation address {nowhere}") as raised:
        with connected(CHOICE, tmp_path):
            pass
    assert raised.value.problems == [f"no code at the mediation address {nowhere}"]


def test_unreachable_node(deployment, tmp_path):
    save_deployment(deployment, tmp_path)
    with pytest.raises(ChainConnectionError, match="cannot connect to 'ethereum:local:http://127.0.0.1:9'"):
        with connected("ethereum:local:http://127.0.0.1:9", tmp_path):
            pass


def test_a_url_choice_that_would_sign_for_another_chain_is_refused(anvil_url, deployments_dir, networks):
    before = networks.provider
    # ape maps ethereum:local:<url> to its geth provider, which assumes chain id 1337
    with pytest.raises(ChainConnectionError, match="assumes chain id 1337 but the node serves 31337"):
        with connected(f"ethereum:local:{anvil_url}", deployments_dir):
            pass
    assert networks.provider is before


def test_rpc_fail_over_picks_the_first_endpoint_on_the_right_chain(anvil, deployments_dir):
    from lilypad.chain.connect import pick_rpc
    from lilypad.devnet.processes import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    node = anvil()  # a node of its own: chain id 31337
    try:
        live = node.rpc_url
        assert pick_rpc([dead, live], 31337) == (live, [f"{dead}: no answer (ConnectionError)"])
        url, problems = pick_rpc([live], 42161)
        assert url is None and problems == [f"{live}: chain id 31337, not 42161"]
    finally:
        node.stop()
    # connected() refuses before dialling ape when no endpoint serves the deployment's chain
    with pytest.raises(ChainConnectionError, match=rf"none of the RPC endpoints serves chain id 31337: {dead}: no answer"):
        with connected(CHOICE, deployments_dir, rpc_urls=[dead]):
            pass


def test_rpc_urls_come_from_the_environment(monkeypatch):
    from lilypad.chain.connect import rpc_urls_from_env

    monkeypatch.setenv("LILYPAD_RPC_URLS", "http://a:1, http://b:2  http://c:3")
    assert rpc_urls_from_env() == ["http://a:1", "http://b:2", "http://c:3"]
    monkeypatch.delenv("LILYPAD_RPC_URLS")
    assert rpc_urls_from_env() == []
