"""``lilypad doctor`` against real things, each check broken for real: a bogus
DOCKER_HOST, a closed RPC port, a second anvil on another chain id, a
deployments file pointing at an address with no code, an empty account, an
account without allowance."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lilypad.devnet.processes import dev_private_key, free_port

from harness import running_anvil

FUNDED = 5  # a test account the deploy funded with LP; it approves nothing


def _lilypad() -> str:
    return shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")


@pytest.fixture(scope="module")
def other_chain(tmp_path_factory):
    """A second anvil serving chain id 4242."""
    with running_anvil(tmp_path_factory.mktemp("doctor-other"), chain_id=4242, name="anvil-4242") as node:
        yield node.rpc_url


def doctor(*args: str, deployments: Path, env: dict | None = None, key: str | None = None
           ) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("WEB3_PRIVATE_KEY", "LILYPAD_RPC_URLS")}
    full_env["LILYPAD_DEPLOYMENTS_DIR"] = str(deployments)
    if key is not None:
        full_env["WEB3_PRIVATE_KEY"] = key
    full_env.update(env or {})
    return subprocess.run([_lilypad(), "doctor", *args], env=full_env, capture_output=True, text=True,
                          timeout=120)


def line(out: str, name: str) -> str:
    """The report line of check ``name`` with its fix line (if any)."""
    match = re.search(rf"^\[(ok  |warn|FAIL)\] {re.escape(name)}: .*(\n       fix: .*)?", out, re.M)
    assert match, f"no line for {name!r} in:\n{out}"
    return match.group(0)


def test_healthy_node_passes_and_names_its_account(devchain):
    key = dev_private_key(FUNDED)
    out = doctor("--rpc", devchain.rpc_url, deployments=devchain.deployments, key=key)
    assert out.returncode == 0, out.stdout + out.stderr
    assert line(out.stdout, "docker").startswith("[ok  ]")
    assert line(out.stdout, "contracts").startswith("[ok  ]")
    assert line(out.stdout, "eth-balance").startswith("[ok  ]")
    assert re.search(r"has 1000 LP", line(out.stdout, "lp-balance"))
    assert line(out.stdout, "rpc[1]").endswith("(in use)")
    assert key.removeprefix("0x") not in out.stdout + out.stderr, "the key is never printed"
    # No GPU here: a warning with a fix, never a failure.
    gpu = line(out.stdout, "gpu")
    assert gpu.startswith("[ok  ]") or ("[warn]" in gpu and "CPU-only" in gpu and "NVIDIA driver" in gpu)


def test_unreachable_docker_engine_fails_with_a_fix(devchain):
    bogus = f"tcp://127.0.0.1:{free_port()}"
    out = doctor("--rpc", devchain.rpc_url, deployments=devchain.deployments, env={"DOCKER_HOST": bogus},
                 key=dev_private_key(FUNDED))
    assert out.returncode == 1
    docker = line(out.stdout, "docker")
    assert docker.startswith("[FAIL]") and bogus in docker
    assert "systemctl start docker" in docker and "DOCKER_HOST" in docker
    # The solver role runs no containers: Docker is not its business.
    solver = doctor("--rpc", devchain.rpc_url, "--role", "solver", deployments=devchain.deployments,
                    env={"DOCKER_HOST": bogus}, key=dev_private_key(FUNDED))
    assert solver.returncode == 0, solver.stdout
    assert "docker:" not in solver.stdout


def test_closed_rpc_port_fails_and_skips_the_chain_checks(devchain):
    closed = f"http://127.0.0.1:{free_port()}"
    out = doctor("--rpc", closed, deployments=devchain.deployments, key=dev_private_key(FUNDED))
    assert out.returncode == 1
    first = line(out.stdout, "rpc[1]")
    assert first.startswith("[FAIL]") and "does not answer" in first and "is running and reachable" in first
    assert line(out.stdout, "rpc").startswith("[FAIL]")
    assert "not checked: no working RPC endpoint" in line(out.stdout, "contracts")


def test_wrong_chain_id_fails(devchain, other_chain):
    out = doctor("--rpc", other_chain, deployments=devchain.deployments, key=dev_private_key(FUNDED))
    assert out.returncode == 1
    bad = line(out.stdout, "rpc[1]")
    assert bad.startswith("[FAIL]") and "serves chain id 4242" in bad and "chain id 31337" in bad
    assert "use an RPC endpoint of chain 31337" in bad


def test_rpc_fail_over_uses_the_first_endpoint_on_the_right_chain(devchain, other_chain):
    closed = f"http://127.0.0.1:{free_port()}"
    backup = devchain.rpc_url.replace("127.0.0.1", "localhost")
    out = doctor(deployments=devchain.deployments, key=dev_private_key(FUNDED),
                 env={"LILYPAD_RPC_URLS": f"{closed},{other_chain},{devchain.rpc_url},{backup}"})
    assert out.returncode == 0, out.stdout
    assert line(out.stdout, "rpc[1]").startswith("[warn]")
    assert "4242" in line(out.stdout, "rpc[2]") and line(out.stdout, "rpc[2]").startswith("[warn]")
    assert line(out.stdout, "rpc[3]").endswith("(in use)")
    assert line(out.stdout, "rpc[4]").endswith("(fall-back)")
    assert line(out.stdout, "rpc") == f"[ok  ] rpc: using {devchain.rpc_url}"


def test_deployments_file_without_code_fails_contracts(devchain, tmp_path):
    record = dict(devchain.record)
    nowhere = "0x" + "ab" * 20
    record["contracts"] = {**record["contracts"], "payments": nowhere}
    (tmp_path / "ethereum-local.json").write_text(json.dumps(record))
    out = doctor("--rpc", devchain.rpc_url, deployments=tmp_path, key=dev_private_key(FUNDED))
    assert out.returncode == 1
    contracts = line(out.stdout, "contracts")
    assert contracts.startswith("[FAIL]") and "payments at " in contracts and nowhere.lower() in contracts.lower()
    assert "redeploy" in contracts and "LILYPAD_DEPLOYMENTS_DIR" in contracts
    assert "not checked: the contracts are missing" in line(out.stdout, "balances")


def test_missing_deployments_file_fails(tmp_path):
    out = doctor("--role", "solver", deployments=tmp_path / "empty")
    assert out.returncode == 1
    dep = line(out.stdout, "deployment")
    assert dep.startswith("[FAIL]") and "no deployments file" in dep and "ape run deploy" in dep


def test_empty_account_fails_balances(devchain):
    from eth_account import Account

    empty = Account.create().address
    out = doctor("--rpc", devchain.rpc_url, "--address", empty, deployments=devchain.deployments)
    assert out.returncode == 1
    eth = line(out.stdout, "eth-balance")
    assert eth.startswith("[FAIL]") and "no ETH to pay gas" in eth and f"send ETH to {empty}" in eth
    lp = line(out.stdout, "lp-balance")
    assert lp.startswith("[FAIL]") and "get LP" in lp and devchain.record["contracts"]["token"] in lp
    # A mediator locks no LP: an empty LP balance is only a warning there.
    mediator = doctor("--rpc", devchain.rpc_url, "--address", empty, "--role", "mediator",
                      deployments=devchain.deployments)
    assert line(mediator.stdout, "lp-balance").startswith("[warn]")


def test_no_allowance_is_a_warning_with_a_fix_and_an_allowance_is_ok(devchain):
    from web3 import Web3

    from lilypad.doctor.checks import ERC20_ABI

    payments = devchain.record["contracts"]["payments"]
    out = doctor("--rpc", devchain.rpc_url, deployments=devchain.deployments, key=dev_private_key(FUNDED))
    allowance = line(out.stdout, "allowance")
    assert allowance.startswith("[warn]") and f"Payments contract {payments} no LP" in allowance
    assert f"approve({payments}, AMOUNT)" in allowance

    w3 = Web3(Web3.HTTPProvider(devchain.rpc_url))
    approver = w3.eth.account.from_key(dev_private_key(6))
    token = w3.eth.contract(address=devchain.record["contracts"]["token"], abi=ERC20_ABI + [{
        "name": "approve", "type": "function", "stateMutability": "nonpayable",
        "inputs": [{"name": "s", "type": "address"}, {"name": "a", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}]}])
    tx = token.functions.approve(payments, 7 * 10**18).build_transaction(
        {"from": approver.address, "nonce": w3.eth.get_transaction_count(approver.address)})
    signed = approver.sign_transaction(tx)
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    out = doctor("--rpc", devchain.rpc_url, "--address", approver.address, deployments=devchain.deployments)
    assert line(out.stdout, "allowance") == f"[ok  ] allowance: {approver.address} allows Payments {payments} 7 LP"


def test_bad_input_is_a_clear_error(tmp_path):
    out = doctor("--address", "not-an-address", deployments=tmp_path)
    assert out.returncode != 0 and "is not an address" in out.stderr
    out = doctor("--rpc", "ftp://x", deployments=tmp_path)
    assert out.returncode != 0 and "not an http(s) RPC URL: ftp://x" in out.stderr
    out = doctor(deployments=tmp_path, key="0x1234")
    assert out.returncode != 0 and "WEB3_PRIVATE_KEY is not a valid private key" in out.stderr
    assert "0x1234" not in out.stderr


def test_the_go_template_helper_is_checked(tmp_path):
    nowhere = tmp_path / "deployments"  # no chain needed: the helper is checked before the deployment
    ok = doctor("--role", "job-creator", deployments=nowhere)
    helper = line(ok.stdout, "gotemplate")
    assert helper.startswith("[ok  ]") and "renders module templates with Go's text/template" in helper
    broken = doctor("--role", "mediator", deployments=nowhere, env={"LILYPAD_GOTEMPLATE": str(tmp_path / "nope")})
    helper = line(broken.stdout, "gotemplate")
    assert broken.returncode == 1 and helper.startswith("[FAIL]") and "make setup" in helper
    unbuilt = doctor("--role", "job-creator", deployments=nowhere, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    helper = line(unbuilt.stdout, "gotemplate")
    assert helper.startswith("[warn]") and "not built yet" in helper and "make setup" in helper
    assert not (tmp_path / "cache" / "lilypad").exists(), "the doctor never builds it"
    solver = doctor("--role", "solver", deployments=nowhere, env={"LILYPAD_GOTEMPLATE": str(tmp_path / "nope")})
    assert "gotemplate:" not in solver.stdout, "the solver renders no templates"


def test_kubo_is_checked(tmp_path):
    from lilypad.ipfs.node import KuboNode

    nowhere = tmp_path / "deployments"  # kubo is checked before the deployment
    without = doctor("--role", "resource-provider", deployments=nowhere)
    assert line(without.stdout, "kubo").startswith("[ok  ]") and "kubo 0.43.1" in line(without.stdout, "kubo")
    assert line(without.stdout, "ipfs-api").startswith("[warn]") and "--ipfs-api" in line(without.stdout, "ipfs-api")
    dead = f"http://127.0.0.1:{free_port()}"
    down = doctor("--role", "resource-provider", "--ipfs-api", dead, deployments=nowhere)
    assert down.returncode == 1
    assert line(down.stdout, "ipfs-api").startswith(f"[FAIL] ipfs-api: IPFS node {dead} is unavailable")
    with KuboNode(tmp_path / "kubo") as node:
        up = doctor("--role", "mediator", deployments=nowhere, env={"LILYPAD_IPFS_API": node.api_url})
    checked = line(up.stdout, "ipfs-api")
    assert checked.startswith(f"[ok  ] ipfs-api: {node.api_url}: kubo 0.43.1, add + cat of a small file"), checked
    unbuilt = doctor("--role", "job-creator", deployments=nowhere, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert line(unbuilt.stdout, "kubo").startswith("[warn]") and "make setup" in line(unbuilt.stdout, "kubo")
    solver = doctor("--role", "solver", deployments=nowhere)
    assert "kubo:" not in solver.stdout and "ipfs-api:" not in solver.stdout
