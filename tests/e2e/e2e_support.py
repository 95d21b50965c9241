"""Helpers for the end-to-end tests: a network of real processes and its accounts."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from lilypad.devnet.processes import (
    ManagedProcess,
    deploy_contracts,
    dev_private_key,
    free_port,
    start_anvil,
    wait_for_port,
)

JOB_CREATOR, PROVIDER, MEDIATOR, SOLVER = 1, 2, 3, 4


def address_of(index: int) -> str:
    from eth_account import Account

    return Account.from_key(dev_private_key(index)).address


@dataclass
class Network:
    root: Path
    rpc_port: int
    solver_url: str
    env: dict[str, str]
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    def lilypad(self, name: str, *args: str, key_index: int | None = None, extra_env: dict | None = None,
                port: int | None = None) -> ManagedProcess:
        env = dict(self.env, **(extra_env or {}))
        if key_index is not None:
            env["WEB3_PRIVATE_KEY"] = dev_private_key(key_index)
        exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
        proc = ManagedProcess(name, [exe, *args], self.root / "logs" / f"{name}.log", env=env).start()
        self.processes[name] = proc
        if port is not None:
            wait_for_port(port, proc=proc.proc, timeout=60)
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {n} ---\n{p.log_tail()}" for n, p in self.processes.items())

    def stop(self) -> None:
        for proc in reversed(list(self.processes.values())):
            proc.stop()




def health(net: Network) -> dict:
    return httpx.get(f"{net.solver_url}/api/v1/health", timeout=5).json()


def run_env(net: Network, data_dir: Path) -> dict:
    return {**os.environ, **net.env, "WEB3_PRIVATE_KEY": dev_private_key(JOB_CREATOR),
            "LILYPAD_DATA_DIR": str(data_dir)}
