"""Driving client contracts on a LocalNetwork's anvil with web3 (anvil's accounts are unlocked),
for the bridge's end-to-end tests. ABIs and bytecode come from ape's compiled project."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from e2e_support import BRIDGE, JOB_CREATOR, address_of  # type: ignore[import-not-found]

__all__ = ["ClientChain", "wait_for"]

MAX = 2**256 - 1
GAS = 3_000_000


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, net: Any = None, every: float = 0.25) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with the components' logs otherwise."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            logs = net.logs() if net is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
        time.sleep(every)


class ClientChain:
    """The deployed system plus helpers to deploy and call client contracts."""

    def __init__(self, net: Any, project: Any) -> None:
        from web3 import Web3

        self.net, self.project = net, project
        self.w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{net.rpc_port}", request_kwargs={"timeout": 60}))
        record = json.loads((net.root / "deployments" / "ethereum-local.json").read_text())
        self.addresses = record["contracts"]
        self.token = self.at("LilypadToken", self.addresses["token"])
        self.job_creator = self.at("LilypadOnChainJobCreator", self.addresses["job_creator"])
        self.payee = address_of(JOB_CREATOR)
        self.bridge = address_of(BRIDGE)
        self.deposit = self.job_creator.functions.getRequiredDeposit().call()
        self.defaults = tuple(self.job_creator.functions.getDefaults().call())
        self.relayer_fee = self.defaults[1]

    def _abi(self, name: str) -> list[dict[str, Any]]:
        return getattr(self.project, name).contract_type.model_dump(mode="json", by_alias=True)["abi"]

    def at(self, name: str, address: str) -> Any:
        return self.w3.eth.contract(address=self.w3.to_checksum_address(address), abi=self._abi(name))

    def deploy(self, name: str, *args: Any, sender: str | None = None) -> Any:
        ct = getattr(self.project, name).contract_type
        factory = self.w3.eth.contract(abi=self._abi(name), bytecode=ct.deployment_bytecode.bytecode)
        tx = factory.constructor(*args).transact({"from": sender or self.payee, "gas": 5_000_000})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx, timeout=60)
        assert receipt.status == 1, f"deploying {name} failed"
        return self.at(name, receipt.contractAddress)

    def send(self, call: Any, sender: str | None = None) -> Any:
        tx = call.transact({"from": sender or self.payee, "gas": GAS})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx, timeout=60)
        assert receipt.status == 1, f"transaction {tx.hex()} reverted"
        return receipt

    def same_block(self, calls: list[tuple[Any, str]]) -> list[Any]:
        """Send ``(call, sender)`` pairs into one block (automine paused); their receipts."""
        self.w3.provider.make_request("evm_setAutomine", [False])
        try:
            hashes = [call.transact({"from": sender, "gas": GAS}) for call, sender in calls]
        finally:
            self.w3.provider.make_request("evm_mine", [])
            self.w3.provider.make_request("evm_setAutomine", [True])
        return [self.w3.eth.wait_for_transaction_receipt(h, timeout=60) for h in hashes]

    def authorise(self, client: Any, payee: str | None = None) -> None:
        """The payee lets ``client`` spend its deposits (approve + setCallerAllowance)."""
        payee = payee or self.payee
        self.send(self.token.functions.approve(self.job_creator.address, MAX), payee)
        self.send(self.job_creator.functions.setCallerAllowance(client.address, MAX), payee)

    def job_ids(self, receipt: Any) -> list[int]:
        return [int(e.args.id) for e in self.job_creator.events.JobAdded().process_receipt(receipt)]

    def job_state(self, job_id: int) -> int:
        """0 none, 1 open, 2 completed, 3 failed."""
        return int(self.job_creator.functions.getJob(job_id).call()[1])

    def job_options(self, job_id: int) -> tuple:
        (terms,) = [e for e in self.job_events("JobTerms") if e.args.id == job_id]
        return tuple(terms.args.options.values()) if hasattr(terms.args.options, "values") else tuple(
            terms.args.options)

    def job_events(self, name: str) -> list[Any]:
        return list(getattr(self.job_creator.events, name)().get_logs(from_block=0))

    def balance(self, who: str) -> int:
        return int(self.token.functions.balanceOf(self.w3.to_checksum_address(who)).call())

    def held(self) -> dict[str, int]:
        """Tokens held by the protocol's contracts (escrow)."""
        return {k: self.balance(self.addresses[k]) for k in ("payments", "job_creator")}
