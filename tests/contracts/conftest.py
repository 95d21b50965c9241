"""Session-scoped roles and a deployed system (tests/conftest.py's ``deploy_protocol``); each
test runs in its own chain snapshot."""

from __future__ import annotations

import pytest

from lilypad.protocol.deal import Deal

MAX = 2**256 - 1


@pytest.fixture(scope="session")
def system(deploy_protocol, bridge, job_creator, resource_provider, stranger, payee):
    _, contracts = deploy_protocol(fund=[job_creator, resource_provider, stranger, payee, bridge])
    for party in (job_creator, resource_provider, stranger):
        contracts["token"].approve(contracts["payments"], MAX, sender=party)
    return contracts


@pytest.fixture(scope="session")
def token(system):
    return system["token"]


@pytest.fixture(scope="session")
def controller(system):
    return system["controller"]


@pytest.fixture(scope="session")
def storage(system):
    return system["storage"]


@pytest.fixture(scope="session")
def payments(system):
    return system["payments"]


@pytest.fixture(scope="session")
def mediation(system):
    return system["mediation"]


@pytest.fixture(scope="session")
def job_manager(system):
    return system["job_creator"]


@pytest.fixture(scope="session")
def agreed(controller, job_creator, resource_provider):
    """Bring a deal to DealAgreed; returns the two receipts."""

    def agree(deal: Deal):
        return (
            controller.agree(deal.as_tuple(), sender=job_creator),
            controller.agree(deal.as_tuple(), sender=resource_provider),
        )

    return agree


@pytest.fixture(scope="session")
def balances(token):
    def read(*parties) -> list[int]:
        return [token.balanceOf(p) for p in parties]

    return read


@pytest.fixture(scope="session")
def advance(chain):
    """Move the chain's clock forward by ``seconds`` (mines a block)."""

    def move(seconds: int) -> None:
        chain.mine(timestamp=chain.pending_timestamp + seconds)

    return move


@pytest.fixture(scope="session")
def mediator_registry(system):
    return system["mediator_registry"]
