"""The one chain and network harness of the tests: real anvil processes, the contracts deployed
by ``ape run deploy`` (what an operator runs), and whole local networks of ``lilypad`` processes
(:class:`lilypad.devnet.network.LocalNetwork`).

Three sizes, each a context manager that stops what it started:

* :func:`running_anvil` — a bare anvil on a free (or given) port, nothing deployed;
* :func:`deployed_chain` — an anvil with the contracts deployed (a :class:`DevChain`), and
  :func:`connected_contracts` to drive it in-process through :mod:`lilypad.chain`;
* :class:`Network` — a LocalNetwork (anvil, contracts, ``lilypad solver``) that is also a
  context manager.

tests/conftest.py turns them into fixtures (``anvil``, ``devchain``, ``devchain_contracts``,
``start_network``, ``network``); the chain/ and contracts/ folders deploy on ape test's own chain
instead (``deploy_protocol``). Test modules import the types from here (``from harness import
DevChain``): pytest puts tests/ on ``sys.path`` for tests/conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from lilypad.devnet.network import NETWORK, LocalNetwork
from lilypad.devnet.processes import ManagedProcess, anvil_args, deploy_contracts, free_port, wait_for_port

__all__ = ["NETWORK", "Anvil", "DevChain", "Network", "connected_contracts", "deployed_chain", "running_anvil"]


@dataclass
class Anvil:
    """One anvil process listening on ``port`` of 127.0.0.1."""

    port: int
    process: ManagedProcess

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop it (again is a no-op): its chain is gone; a new anvil on the same port starts afresh."""
        self.process.stop()


@contextmanager
def running_anvil(log_dir: Path, *, port: int | None = None, chain_id: int | None = None,
                  name: str = "anvil") -> Iterator[Anvil]:
    """anvil (cancun, anvil's test mnemonic, so ape's TEST::n accounts are funded) on ``port`` or a
    free one, serving ``chain_id`` (anvil's 31337 unless given); logs to ``log_dir/<name>.log``."""
    port = port or free_port()
    args = anvil_args(port)
    if chain_id is not None:
        args += ["--chain-id", str(chain_id)]
    process = ManagedProcess(name, args, log_dir / f"{name}.log").start()
    try:
        wait_for_port(port, proc=process.proc)
        yield Anvil(port, process)
    finally:
        process.stop()


@dataclass
class DevChain:
    """An anvil of its own with the protocol's contracts deployed by ``ape run deploy``: the
    deployments file is in ``deployments``, its content in ``record``; logs in ``root/logs``."""

    root: Path
    anvil: Anvil
    deployments: Path
    record: dict[str, Any]

    @property
    def port(self) -> int:
        return self.anvil.port

    @property
    def rpc_url(self) -> str:
        return self.anvil.rpc_url

    @property
    def env(self) -> dict[str, str]:
        """What points ape (``ethereum:local:foundry``) and lilypad at this chain and its deployment."""
        return {"APE_FOUNDRY_HOST": self.rpc_url, "LILYPAD_DEPLOYMENTS_DIR": str(self.deployments)}


@contextmanager
def deployed_chain(root: Path) -> Iterator[DevChain]:
    """Start anvil and run ``ape run deploy`` against it (deployments in ``root/deployments``)."""
    with running_anvil(root / "logs") as anvil:
        deployments = root / "deployments"
        record = deploy_contracts(anvil.port, deployments, root / "logs" / "deploy.log")
        yield DevChain(root, anvil, deployments, record)


@contextmanager
def connected_contracts(chain: DevChain) -> Iterator[Any]:
    """:class:`~lilypad.chain.contracts.LilypadContracts` on ``chain``, connected in this process,
    with ``APE_FOUNDRY_HOST`` and ``LILYPAD_DEPLOYMENTS_DIR`` pointing at it while connected (so
    that what the test starts, and ape, find the same chain); both are restored afterwards.

    ``provider_settings`` gives the connection a provider of its own even under ``ape test``,
    whose plugin is already connected to its own anvil under the same network name."""
    from lilypad.chain.connect import connected

    saved = {name: os.environ.get(name) for name in chain.env}
    os.environ.update(chain.env)
    try:
        with connected(NETWORK, chain.deployments, provider_settings={"host": chain.rpc_url}) as contracts:
            yield contracts
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Network(LocalNetwork):
    """A :class:`~lilypad.devnet.network.LocalNetwork` that stops every process it started when
    the ``with`` block it opens ends (``Network.start(root)`` starts anvil, the contracts and the
    solver; tests add providers, mediators and bridges)."""

    def __enter__(self) -> Network:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
