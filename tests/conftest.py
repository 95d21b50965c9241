"""Fixtures shared by every test folder: the named test accounts, a deal factory and an
address-to-account lookup on ape test's own chain, and the one chain/network harness
(tests/harness.py):

* ``deploy_protocol`` (session): deploy the whole protocol on ape test's chain, in-process;
* ``devchain`` (module): an anvil of the module's own with the contracts deployed by
  ``ape run deploy``; ``devchain_contracts`` (module): LilypadContracts connected to it;
* ``anvil`` (function): start bare anvil nodes, stopped when the test ends;
* ``start_network`` / ``network`` (function): a LocalNetwork of real ``lilypad`` processes in the
  test's tmp_path, stopped when the test ends (or when the test's own ``with`` block does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from lilypad.protocol.deal import Deal, DealMembers, DealPricing, DealProtocol, DealTimeouts
from lilypad.protocol.deploy import DeploySettings, deploy_system

from harness import Anvil, DevChain, Network, connected_contracts, deployed_chain, running_anvil

TOKEN = 10**18


@pytest.fixture(scope="session")
def deployer(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def job_creator(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def resource_provider(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def mediators(accounts):
    return [accounts[3], accounts[4], accounts[5]]


@pytest.fixture(scope="session")
def solver(accounts):
    return accounts[6]


@pytest.fixture(scope="session")
def bridge(accounts):
    return accounts[7]


@pytest.fixture(scope="session")
def stranger(accounts):
    return accounts[8]


@pytest.fixture(scope="session")
def payee(accounts):
    return accounts[9]


@pytest.fixture(scope="session")
def make_deal(job_creator, resource_provider, solver, mediators):
    """Terms in whole tokens: price 1/instruction, payment collateral 5, results
    multiple 2, mediation fee 1, submit collateral 2, judge collateral 3; a panel of one
    mediator under settings version 0 unless ``protocol`` says otherwise (tests/contracts
    overrides this fixture to name the deployed controller's current version)."""

    def make(*, timeouts: dict | None = None, pricing: dict | None = None, protocol: dict | None = None,
             **members) -> Deal:
        t = {
            "agree": 100,
            "submit_results": 200,
            "judge_results": 300,
            "mediate_results": 400,
            "submit_results_collateral": 2 * TOKEN,
            "judge_results_collateral": 3 * TOKEN,
        }
        t.update(timeouts or {})
        p = {
            "instruction_price": 1 * TOKEN,
            "payment_collateral": 5 * TOKEN,
            "results_collateral_multiple": 2,
            "mediation_fee": 1 * TOKEN,
        }
        p.update(pricing or {})
        m = {
            "solver": solver,
            "job_creator": job_creator,
            "resource_provider": resource_provider,
            "mediators": mediators,
        }
        m.update(members)
        return Deal(members=DealMembers(**m), timeouts=DealTimeouts(**t), pricing=DealPricing(**p),
                    protocol=DealProtocol(**(protocol or {})))

    return make


@pytest.fixture(scope="session")
def signer(accounts):
    """The test account with a given address."""

    def find(address):
        return next(a for a in accounts if a.address == address)

    return find


# --------------------------------------------------------------------------
# The harness: the protocol on ape test's chain, chains and networks of their own
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def deploy_protocol(project, deployer, bridge):
    """Deploy the protocol on ape test's chain (lilypad.protocol.deploy, in-process) with a
    4-token deposit and ``bridge`` holding BRIDGE_ROLE: ``deploy_protocol(fund=[...])`` returns
    (Deployment, instances). Each call is a deployment of its own."""

    def deploy(*, fund: list) -> tuple:
        return deploy_system(project, deployer, settings=DeploySettings(required_deposit=4 * TOKEN), fund=fund)

    return deploy


@pytest.fixture(scope="module")
def devchain(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevChain]:
    """An anvil of this test module's own with the contracts deployed by ``ape run deploy``."""
    with deployed_chain(tmp_path_factory.mktemp(f"{request.module.__name__}-chain")) as chain:
        yield chain


@pytest.fixture(scope="module")
def devchain_contracts(devchain: DevChain) -> Iterator[Any]:
    """LilypadContracts on ``devchain``, connected in-process for the module (the environment
    points ape and lilypad at it meanwhile)."""
    with connected_contracts(devchain) as contracts:
        yield contracts


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[Callable[..., Anvil]]:
    """``anvil(port=None, chain_id=None)`` starts a bare anvil (nothing deployed); each is stopped
    when the test ends, or earlier with ``.stop()`` (a new one on the same port starts afresh)."""
    with ExitStack() as stack:
        count = 0

        def start(*, port: int | None = None, chain_id: int | None = None) -> Anvil:
            nonlocal count
            count += 1
            return stack.enter_context(running_anvil(tmp_path / "logs", port=port, chain_id=chain_id,
                                                     name=f"anvil-{count}"))

        yield start


@pytest.fixture
def start_network(tmp_path: Path) -> Iterator[Callable[..., Network]]:
    """``start_network(**options)`` starts this test's LocalNetwork in ``tmp_path`` (anvil, the
    contracts, ``lilypad solver``; options as :meth:`LocalNetwork.start`); it is stopped when the
    test ends, or when the test's own ``with start_network() as net:`` block does."""
    started: list[Network] = []

    def start(**options: Any) -> Network:
        assert not started, "one network per test: they would share tmp_path"
        started.append(Network.start(tmp_path, **options))
        return started[0]

    try:
        yield start
    finally:
        for net in started:
            net.stop()


@pytest.fixture
def network(start_network: Callable[..., Network]) -> Network:
    """Anvil + contracts + solver. Tests start the providers and mediators they need."""
    return start_network()
