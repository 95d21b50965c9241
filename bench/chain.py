"""Driving the deployed contracts from the benchmarks with web3 (anvil's own
accounts are unlocked): client contracts, approvals, deals for the fault
paths, funding extra accounts. ABIs and bytecode come from ape's build."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.common import compiled

__all__ = ["MAX_UINT", "Chain", "funded_job_creators"]

MAX_UINT = 2**256 - 1
_GAS = 3_000_000


class Chain:
    """The deployment in ``deployments_dir`` on the anvil at ``rpc_url``."""

    def __init__(self, rpc_url: str, deployments_dir: Path) -> None:
        from web3 import Web3

        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
        self.types = compiled()
        record = json.loads((Path(deployments_dir) / "ethereum-local.json").read_text())
        self.addresses: dict[str, str] = record["contracts"]
        names = {"token": "LilypadToken", "controller": "LilypadController", "job_creator": "LilypadOnChainJobCreator",
                 "payments": "LilypadPayments", "storage": "LilypadStorage", "mediation": "LilypadMediation"}
        self.c = {key: self.at(name, self.addresses[key]) for key, name in names.items()}

    @classmethod
    def of(cls, net: Any) -> Chain:
        return cls(f"http://127.0.0.1:{net.rpc_port}", net.root / "deployments")

    def at(self, name: str, address: str) -> Any:
        return self.w3.eth.contract(address=self.w3.to_checksum_address(address), abi=self.types[name]["abi"])

    def contract_names(self) -> dict[str, str]:
        return {address: key for key, address in self.addresses.items()}

    def deploy(self, name: str, *args: Any, sender: str) -> Any:
        ct = self.types[name]
        factory = self.w3.eth.contract(abi=ct["abi"], bytecode=ct["deploymentBytecode"]["bytecode"])
        receipt = self._wait(factory.constructor(*args).transact({"from": sender, "gas": 6_000_000}))
        return self.at(name, receipt["contractAddress"])

    def send(self, call: Any, sender: str) -> Any:
        return self._wait(call.transact({"from": sender, "gas": _GAS}))

    def _wait(self, tx_hash: Any) -> Any:
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
        if receipt["status"] != 1:
            raise RuntimeError(f"transaction {tx_hash.hex()} reverted")
        return receipt

    def approve_payments(self, owner: str, amount: int) -> Any:
        """Approve Payments for ``amount`` (the services approve ``MAX_UINT`` once)."""
        return self.send(self.c["token"].functions.approve(self.addresses["payments"], amount), owner)

    def permit_args(self, owner_key: str, amount: int) -> tuple[int, int, int, bytes, bytes]:
        """``(value, deadline, v, r, s)`` of an EIP-2612 permit for Payments, as
        ``lilypad run`` signs one for ``agreeWithPermit`` / ``checkResultWithPermit``."""
        from eth_account import Account

        from lilypad.protocol.permit import PermitDomain, sign_permit

        token = self.c["token"].functions
        owner = Account.from_key(owner_key).address
        d = token.eip712Domain().call()
        domain = PermitDomain(name=d[1], version=d[2], chain_id=int(d[3]), verifying_contract=d[4])
        deadline = int(self.w3.eth.get_block("latest")["timestamp"]) + 3600
        p = sign_permit(owner_key, domain, self.addresses["payments"], amount, int(token.nonces(owner).call()),
                        deadline)
        return p.value, p.deadline, p.v, p.r, p.s

    def advance(self, seconds: int) -> None:
        """Move the chain's clock forward and mine a block (anvil)."""
        self.w3.provider.make_request("evm_increaseTime", [int(seconds)])
        self.w3.provider.make_request("evm_mine", [])

    def fund(self, address: str, lp: int, *, source: str, eth: int = 10**20) -> None:
        """Give ``address`` ETH for gas (anvil_setBalance) and ``lp`` LP from ``source``."""
        self.w3.provider.make_request("anvil_setBalance", [address, hex(eth)])
        self.send(self.c["token"].functions.transfer(self.w3.to_checksum_address(address), lp), source)

    def balance(self, who: str) -> int:
        return int(self.c["token"].functions.balanceOf(self.w3.to_checksum_address(who)).call())

    def wait_for(self, predicate: Any, *, timeout: float, what: str, every: float = 0.02) -> Any:
        end = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= end:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(every)


def funded_job_creators(chain: Chain, count: int, *, lp: int = 20 * 10**18, first: int = 100) -> list[str]:
    """Private keys of ``count`` fresh job-creator accounts (the test mnemonic's
    accounts ``first``, ``first + 1``, ...), each given ETH and ``lp`` LP from
    anvil's unused funded accounts 5..8 (so many jobs can be submitted at once,
    each by its own user, without racing for one account's nonces)."""
    from lilypad.devnet.network import address_of
    from lilypad.devnet.processes import dev_private_key

    keys = []
    for i in range(count):
        keys.append(dev_private_key(first + i))
        chain.fund(address_of(first + i), lp, source=address_of(5 + i % 4))
    return keys
