"""lilypad.client.chain: a job creator's transactions and reads over web3.py, without ape.

On an anvil of its own with the contracts deployed by ``ape run deploy``; what the lean client
does is checked through ape's side (:class:`~lilypad.chain.contracts.LilypadContracts` on the
same chain), amounts exact. The import budget is counted in modules, never in seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from lilypad.client.chain import ContractRevertError, JobCreatorChain, job_creator_chain, lean_rpc_urls
from lilypad.devnet.network import NETWORK
from lilypad.devnet.processes import dev_private_key
from lilypad.exceptions import ChainConnectionError, DeploymentMismatchError
from lilypad.protocol.accounts import local_account_from_private_key
from lilypad.protocol.deal import AgreementState

TOKEN = 10**18
CID = "bafybeiht6jsmwnj45l6aec2ico6xndk77ynk63tws6etc3agf4u6cup42a"


@pytest.fixture
def lean(devchain: Any) -> Any:
    """One client per test, as one per ``lilypad run``: ape test snapshots and reverts the chain
    it is connected to (devchain_contracts) around each test, which a nonce counted across tests
    would not follow."""
    with job_creator_chain(NETWORK, [devchain.rpc_url], devchain.deployments) as chain:
        yield chain


@pytest.fixture(scope="module")
def jc_key() -> Any:
    return local_account_from_private_key(dev_private_key(1))  # the job_creator fixture's account


def _deal(make_deal: Any, salt: int) -> Any:
    return make_deal().model_copy(update={"nonce": salt.to_bytes(32, "big")})


def test_a_job_creators_deal_through_the_lean_client(lean, jc_key, make_deal, devchain_contracts,
                                                     resource_provider) -> None:
    """agree (by permit: no approval transaction), the provider's side through ape, accept: the
    escrow and every balance move exactly as through ape, and each transaction costs the
    JSON-RPC requests the module docstring says."""
    ape_side = devchain_contracts
    deal = _deal(make_deal, 1)
    deposit = deal.job_creator_deposit
    assert lean.allowance(jc_key) == 0  # nothing approved: the permit path
    jc0, rp0 = ape_side.balance_of(jc_key.address), ape_side.balance_of(resource_provider)

    before = lean.rpc_calls.copy()
    receipt = lean.agree_paying(deal, jc_key, deposit)
    assert receipt["status"] == 1
    used = lean.rpc_calls - before
    # nonces(), the latest block (the permit's deadline), eip712Domain() (read once), allowance(),
    # then the transaction itself: estimate, gas price, first nonce read, send, receipt.
    assert used["eth_sendRawTransaction"] == 1 and used["eth_estimateGas"] == 1
    assert used["eth_getTransactionReceipt"] >= 1 and used["eth_getTransactionCount"] == 1
    a = lean.agreement(deal)
    assert (a.state, a.job_creator_agreed) == (AgreementState.DEAL_NEGOTIATING, True)
    assert a == ape_side.agreement(deal)  # the same typed answer both ways
    assert lean.escrow(deal.deal_id) == ape_side.escrow(deal.deal_id)
    assert lean.escrow(deal.deal_id).job_creator == deposit

    ape_side.ensure_allowance(resource_provider, deal.resource_provider_deposit + 10 * TOKEN)
    ape_side.agree(deal, resource_provider)
    ape_side.add_result(deal, CID, 2, resource_provider)
    assert lean.result(deal.deal_id) == (CID, 2)
    before = lean.rpc_calls.copy()
    lean.accept_result(deal, jc_key)
    used = lean.rpc_calls - before
    # The nonce is counted locally now: a transaction is estimate, gas price, send, receipt.
    assert used["eth_getTransactionCount"] == 0
    assert used["eth_estimateGas"] == used["eth_gasPrice"] == used["eth_sendRawTransaction"] == 1
    assert sum(used.values()) == 3 + used["eth_getTransactionReceipt"]
    assert lean.state(deal) == AgreementState.RESULTS_ACCEPTED
    cost = 2 * deal.pricing.instruction_price
    assert ape_side.balance_of(jc_key.address) == jc0 - cost  # the rest of the deposit came back
    assert ape_side.balance_of(resource_provider) == rp0 + cost  # settings version 0: no tax


def test_a_refused_transaction_raises_the_contracts_error_and_sends_nothing(lean, jc_key, make_deal,
                                                                          devchain_contracts) -> None:
    deal = _deal(make_deal, 2)
    before = lean.rpc_calls.copy()
    with pytest.raises(ContractRevertError) as err:
        lean.accept_result(deal, jc_key)  # never agreed
    assert err.value.error == "WrongState" and err.value.function == "acceptResult"
    assert err.value.args_[0] == deal.deal_id
    assert (lean.rpc_calls - before)["eth_sendRawTransaction"] == 0


def test_a_stale_nonce_is_read_again_and_the_transaction_sent(lean, jc_key, make_deal, devchain_contracts) -> None:
    """Another process (or tool) sent from the same account: the locally counted nonce is stale;
    the node refuses it ("nonce too low"), the client reads it again and the transaction goes
    through once."""
    deal = _deal(make_deal, 3)
    lean.agree_paying(deal, jc_key, deal.job_creator_deposit)  # the nonce is now counted locally
    lean._nonces[jc_key.address] -= 1  # as if a transaction had gone out behind the client's back
    before = lean.rpc_calls.copy()
    other = _deal(make_deal, 4)
    lean.agree_paying(other, jc_key, other.job_creator_deposit)
    used = lean.rpc_calls - before
    assert used["eth_sendRawTransaction"] == 2 and used["eth_getTransactionCount"] == 1
    assert lean.agreement(other).job_creator_agreed


def test_a_transaction_replaced_in_the_pool_is_sent_again(lean, jc_key, make_deal) -> None:
    """Another process sent a transaction with the same nonce that replaced ours in the pool (a
    higher gas price): ours is never mined; once the account's mined nonce passes it, the client
    reads the nonce again and sends once more. Blocks are mined by hand (automine off)."""
    import threading

    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(lean.rpc_url))  # the other process's own connection
    deal = _deal(make_deal, 6)
    lean.ensure_allowance(jc_key, deal.job_creator_deposit)  # a plain agree: one transaction
    nonce = lean._nonces[jc_key.address]
    w3.provider.make_request("evm_setAutomine", [False])
    stop = threading.Event()
    replaced = threading.Event()

    def other_process() -> None:
        while not stop.is_set():
            pending = w3.eth.get_block("pending", full_transactions=True)["transactions"]
            ours = [t for t in pending if t["from"] == jc_key.address and t["nonce"] == nonce]
            if ours and not replaced.is_set():
                tx = {"to": jc_key.address, "value": 0, "gas": 21_000, "gasPrice": 2 * int(ours[0]["gasPrice"]),
                      "nonce": nonce, "chainId": lean.deployment.chain_id}
                w3.eth.send_raw_transaction(jc_key.sign_transaction(tx).raw_transaction)
                replaced.set()
            if replaced.is_set():
                w3.provider.make_request("evm_mine", [])
            stop.wait(0.2)

    thread = threading.Thread(target=other_process, daemon=True)
    thread.start()
    try:
        before = lean.rpc_calls.copy()
        receipt = lean.agree_paying(deal, jc_key, deal.job_creator_deposit)
    finally:
        stop.set()
        thread.join()
        w3.provider.make_request("evm_setAutomine", [True])
    assert replaced.is_set()
    assert receipt["status"] == 1 and int(w3.eth.get_transaction(receipt["transactionHash"])["nonce"]) == nonce + 1
    assert (lean.rpc_calls - before)["eth_sendRawTransaction"] == 2  # ours, replaced; then ours again
    assert lean.agreement(deal).job_creator_agreed


def test_a_transaction_that_reverts_when_mined_says_why(lean, jc_key, make_deal, devchain_contracts,
                                                       resource_provider) -> None:
    """acceptResult passes its estimate inside the judging window, then the clock passes the
    window before it is mined: the contract refuses it (WindowClosed), and the client says so,
    replaying the call on the block's state, instead of a bare "reverted"."""
    import threading

    from web3 import Web3

    ape_side = devchain_contracts
    deal = _deal(make_deal, 7).model_copy(update={"timeouts": make_deal().timeouts.model_copy(
        update={"judge_results": 60})})
    lean.agree_paying(deal, jc_key, deal.job_creator_deposit)
    ape_side.ensure_allowance(resource_provider, deal.resource_provider_deposit + 10 * TOKEN)
    ape_side.agree(deal, resource_provider)
    ape_side.add_result(deal, CID, 1, resource_provider)
    other = Web3(Web3.HTTPProvider(lean.rpc_url))
    other.provider.make_request("evm_setAutomine", [False])
    stop = threading.Event()

    def clock() -> None:  # once our transaction waits in the pool: an hour passes, then a block
        while not stop.is_set():
            if other.eth.get_block("pending", full_transactions=True)["transactions"]:
                other.provider.make_request("evm_increaseTime", [3600])
                other.provider.make_request("evm_mine", [])
                return
            stop.wait(0.05)

    thread = threading.Thread(target=clock, daemon=True)
    thread.start()
    try:
        with pytest.raises(ContractRevertError) as err:
            lean.accept_result(deal, jc_key)
    finally:
        stop.set()
        thread.join(5)
        other.provider.make_request("evm_setAutomine", [True])
    assert err.value.error == "WindowClosed" and err.value.function == "acceptResult"
    assert lean.state(deal) == AgreementState.RESULTS_SUBMITTED  # nothing happened


def test_the_client_refuses_a_node_of_another_chain_or_none(devchain, anvil) -> None:
    other = anvil(chain_id=4242)
    with pytest.raises(DeploymentMismatchError, match="chain id 4242"), \
            job_creator_chain(NETWORK, [other.rpc_url], devchain.deployments):
        pass
    other.stop()
    with pytest.raises(ChainConnectionError), job_creator_chain(NETWORK, [other.rpc_url], devchain.deployments):
        pass
    # Several endpoints: the first that serves the deployment's chain.
    with job_creator_chain(NETWORK, [other.rpc_url, devchain.rpc_url], devchain.deployments) as chain:
        assert isinstance(chain, JobCreatorChain) and chain.rpc_url == devchain.rpc_url


def test_which_endpoints_need_no_ape(monkeypatch) -> None:
    monkeypatch.setenv("APE_FOUNDRY_HOST", "http://127.0.0.1:8545")
    assert lean_rpc_urls("ethereum:local:foundry") == ["http://127.0.0.1:8545"]
    assert lean_rpc_urls("arbitrum:sepolia:node") == []  # only ape's plugin knows that node
    assert lean_rpc_urls("arbitrum:sepolia:node", ["https://rpc.example"]) == ["https://rpc.example"]
    monkeypatch.setenv("APE_FOUNDRY_HOST", "auto")
    assert lean_rpc_urls("ethereum:local:foundry") == []


#: What a job creator's command may load: lilypad's client side, web3.py and its codecs, pydantic,
#: click, an HTTP client. Measured at 1,044 modules (issue 20); the budget leaves room to grow a
#: little and fails when a heavy dependency sneaks onto the hot path.
IMPORT_BUDGET = 1_250
NEVER = {"ape", "docker", "fastapi", "uvicorn", "numpy", "matplotlib", "sqlalchemy", "evm", "eth_tester", "hypothesis"}
SERVERS = ("lilypad.solver", "lilypad.provider", "lilypad.mediator", "lilypad.devnet", "lilypad.twin")


def _forbidden(module: str) -> bool:
    top = module.split(".")[0]
    return top in NEVER or top.startswith("ape_") or any(module == s or module.startswith(s + ".") for s in SERVERS)


def test_a_job_creators_hot_path_imports_within_its_budget_and_never_ape(devchain, jc_key, make_deal) -> None:
    """In a fresh interpreter: import the CLI's run command and the run's code, open the lean
    chain, read an agreement, sign and send a transaction; count what got loaded."""
    deal = make_deal().model_copy(update={"nonce": (5).to_bytes(32, "big")})
    code = f"""
import json, sys
import lilypad.cli.run, lilypad.jobcreator.run
from lilypad.client.chain import job_creator_chain
from lilypad.protocol.accounts import local_account_from_private_key
from lilypad.protocol.deal import Deal
deal = Deal.model_validate_json({deal.model_dump_json()!r})
from pathlib import Path
with job_creator_chain("{NETWORK}", ["{devchain.rpc_url}"], Path({str(devchain.deployments)!r})) as c:
    c.agree_paying(deal, local_account_from_private_key({dev_private_key(1)!r}), deal.job_creator_deposit)
    state = int(c.agreement(deal).state)
print(json.dumps({{"state": state, "modules": sorted(sys.modules)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    assert got["state"] == int(AgreementState.DEAL_NEGOTIATING)
    loaded = got["modules"]
    assert [m for m in loaded if _forbidden(m)] == []
    assert len(loaded) <= IMPORT_BUDGET, len(loaded)
