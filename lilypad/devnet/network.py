"""A whole local network of real processes: anvil, the contracts (deployed by
``ape run deploy``), ``lilypad solver``, resource providers, a mediator and,
when a test asks, kubo nodes (:meth:`LocalNetwork.add_kubo`).

Used by ``make demo`` and the end-to-end tests. Accounts follow anvil's test
mnemonic: 1 job creator, 2 resource provider, 3 mediator, 4 solver, 9 the
relayer of smart-contract jobs (``lilypad jobcreator``; any account may relay).
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lilypad.devnet.processes import (
    ManagedProcess,
    deploy_contracts,
    dev_private_key,
    free_port,
    start_anvil,
    wait_for_port,
)

__all__ = [
    "BRIDGE", "JOB_CREATOR", "MEDIATOR", "NETWORK", "PROVIDER", "SOLVER", "LocalNetwork", "address_of",
    "lilypad_exe", "network_env", "token_balances",
]

JOB_CREATOR, PROVIDER, MEDIATOR, SOLVER = 1, 2, 3, 4
BRIDGE = 9
NETWORK = "ethereum:local:foundry"


def address_of(index: int) -> str:
    from eth_account import Account

    return Account.from_key(dev_private_key(index)).address


def lilypad_exe() -> str:
    """The ``lilypad`` console script of this environment."""
    return shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")


def network_env(rpc_port: int, deployments_dir: Path, solver_url: str) -> dict[str, str]:
    """The environment every service (and client) of a local network shares."""
    return {
        "APE_FOUNDRY_HOST": f"http://127.0.0.1:{rpc_port}",
        "LILYPAD_DEPLOYMENTS_DIR": str(deployments_dir),
        "LILYPAD_SOLVER_URL": solver_url,
        "LILYPAD_SOLVER_ADDRESS": address_of(SOLVER),
        "LILYPAD_MEDIATORS": address_of(MEDIATOR),
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class LocalNetwork:
    root: Path
    rpc_port: int
    solver_url: str
    env: dict[str, str]
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    kubo: dict[str, Any] = field(default_factory=dict)  # name -> lilypad.ipfs.node.KuboNode

    @classmethod
    def start(cls, root: Path, *, match_timeout: float = 20.0) -> LocalNetwork:
        """Start anvil, deploy the contracts and start the solver."""
        rpc_port, solver_port = free_port(), free_port()
        anvil = start_anvil(rpc_port, root / "logs" / "anvil.log")
        deployments = root / "deployments"
        net = cls(root, rpc_port, f"http://127.0.0.1:{solver_port}", {}, {"anvil": anvil})
        try:
            deploy_contracts(rpc_port, deployments, root / "logs" / "deploy.log")
            net.env = network_env(rpc_port, deployments, net.solver_url)
            net.lilypad("solver", "solver", "--network", NETWORK, "--port", str(solver_port),
                        "--data-dir", str(root / "solver"), "--match-timeout", str(match_timeout),
                        key_index=SOLVER, port=solver_port)
        except BaseException:
            net.stop()
            raise
        return net

    def lilypad(self, name: str, *args: str, key_index: int | None = None, extra_env: dict | None = None,
                port: int | None = None) -> ManagedProcess:
        """Start ``lilypad ARGS`` as a managed process logging to ``logs/<name>.log``."""
        env = dict(self.env, **(extra_env or {}))
        if key_index is not None:
            env["WEB3_PRIVATE_KEY"] = dev_private_key(key_index)
        proc = ManagedProcess(name, [lilypad_exe(), *args], self.root / "logs" / f"{name}.log", env=env).start()
        self.processes[name] = proc
        if port is not None:
            wait_for_port(port, proc=proc.proc, timeout=60)
        return proc

    def add_provider(self, name: str = "provider", *extra: str, fault: str | None = None) -> ManagedProcess:
        env = {"LILYPAD_PROVIDER_FAULT": fault} if fault else {}
        return self.lilypad(name, "resource-provider", "--network", NETWORK, "--solver-url", self.solver_url,
                            "--data-dir", str(self.root / name), *extra, key_index=PROVIDER, extra_env=env)

    def add_mediator(self, *extra: str) -> ManagedProcess:
        return self.lilypad("mediator", "mediator", "--network", NETWORK, "--solver-url", self.solver_url,
                            "--data-dir", str(self.root / "mediator"), *extra, key_index=MEDIATOR)

    def add_kubo(self, name: str) -> Any:
        """Start a kubo node (repository ``kubo/<name>``, log ``logs/<name>.log``) on loopback,
        connected to the nodes started before it; the :class:`~lilypad.ipfs.node.KuboNode`."""
        from lilypad.ipfs.node import KuboNode

        node = KuboNode(self.root / "kubo" / name, log_path=self.root / "logs" / f"{name}.log")
        node.init(peers=[other.multiaddr for other in self.kubo.values()])
        node.start()
        for other in self.kubo.values():
            node.connect(other)
        self.kubo[name] = node
        assert node.process is not None
        self.processes[name] = node.process
        return node

    def add_bridge(self, name: str = "bridge", *extra: str, fault: str | None = None,
                   key_index: int = BRIDGE) -> ManagedProcess:
        """Start ``lilypad jobcreator`` (a relayer of smart-contract jobs) as account
        ``key_index``; ``fault`` sets ``LILYPAD_BRIDGE_FAULT`` (test-only crash points)."""
        env = {"LILYPAD_BRIDGE_FAULT": fault} if fault else {"LILYPAD_BRIDGE_FAULT": ""}
        return self.lilypad(name, "jobcreator", "--network", NETWORK, "--solver-url", self.solver_url,
                            "--data-dir", str(self.root / name), *extra, key_index=key_index, extra_env=env)

    def client_env(self, data_dir: Path) -> dict[str, str]:
        """Environment for ``lilypad run`` as the job creator."""
        return {**os.environ, **self.env, "WEB3_PRIVATE_KEY": dev_private_key(JOB_CREATOR),
                "LILYPAD_DATA_DIR": str(data_dir)}

    def token_balances(self) -> dict[str, int]:
        """LP balances of the parties and of the escrow contract, read straight from the chain."""
        return token_balances(f"http://127.0.0.1:{self.rpc_port}", self.root / "deployments")

    def logs(self) -> str:
        return "\n".join(f"--- {n} ---\n{p.log_tail()}" for n, p in self.processes.items())

    def stop(self) -> None:
        for proc in reversed(list(self.processes.values())):
            proc.stop()


def token_balances(rpc_url: str, deployments_dir: Path) -> dict[str, int]:
    """LP balances of the parties (anvil test accounts) and of the escrow contracts."""
    import json

    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(rpc_url))
    record = json.loads((Path(deployments_dir) / "ethereum-local.json").read_text())
    token = w3.eth.contract(address=record["contracts"]["token"], abi=[{
        "name": "balanceOf", "type": "function", "stateMutability": "view",
        "inputs": [{"name": "a", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]}])
    who = {"job_creator": JOB_CREATOR, "provider": PROVIDER, "mediator": MEDIATOR, "bridge": BRIDGE}
    out = {name: token.functions.balanceOf(address_of(i)).call() for name, i in who.items()}
    out["payments"] = token.functions.balanceOf(record["contracts"]["payments"]).call()
    out["job_creator_contract"] = token.functions.balanceOf(record["contracts"]["job_creator"]).call()
    return out

