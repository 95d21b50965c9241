"""A deployed system and its LilypadContracts; each test runs in its own chain snapshot."""

from __future__ import annotations

import pytest

from lilypad.chain.contracts import LilypadContracts
from lilypad.protocol.deal import Deal, DealMembers, DealPricing, DealTimeouts
from lilypad.protocol.deploy import DeploySettings, deploy_system

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
def payee(accounts):
    return accounts[9]


@pytest.fixture(scope="session")
def deployed(project, deployer, bridge, job_creator, resource_provider, payee, mediators):
    """(Deployment, instances): funded parties, no approvals (tests approve through the wrappers)."""
    return deploy_system(
        project,
        deployer,
        settings=DeploySettings(required_deposit=4 * TOKEN),
        bridges=[bridge],
        fund=[job_creator, resource_provider, payee, bridge, *mediators],
    )


@pytest.fixture(scope="session")
def deployment(deployed):
    return deployed[0]


@pytest.fixture(scope="session")
def contracts(deployment):
    """Built the way services build it: contract types from the repository root's project."""
    return LilypadContracts(deployment, retries=0)


@pytest.fixture(scope="session")
def make_deal(job_creator, resource_provider, solver, mediators):
    """Terms in whole tokens: price 1/instruction, payment collateral 5, results
    multiple 2, mediation fee 1, submit collateral 2, judge collateral 3."""

    def make(**members) -> Deal:
        m = {
            "solver": solver,
            "job_creator": job_creator,
            "resource_provider": resource_provider,
            "mediators": mediators,
        }
        m.update(members)
        return Deal(
            members=DealMembers(**m),
            timeouts=DealTimeouts(
                agree=100,
                submit_results=200,
                judge_results=300,
                mediate_results=400,
                submit_results_collateral=2 * TOKEN,
                judge_results_collateral=3 * TOKEN,
            ),
            pricing=DealPricing(
                instruction_price=1 * TOKEN,
                payment_collateral=5 * TOKEN,
                results_collateral_multiple=2,
                mediation_fee=1 * TOKEN,
            ),
        )

    return make


@pytest.fixture(scope="session")
def agreed(contracts, job_creator, resource_provider):
    """Approve and agree from both sides: the deal ends up DealAgreed."""

    def agree(deal: Deal) -> None:
        contracts.ensure_allowance(job_creator, deal.job_creator_deposit + deal.pricing.mediation_fee)
        contracts.ensure_allowance(resource_provider, deal.resource_provider_deposit)
        contracts.agree(deal, job_creator)
        contracts.agree(deal, resource_provider)

    return agree


@pytest.fixture(scope="session")
def signer(accounts):
    """The test account with a given address."""

    def find(address):
        return next(a for a in accounts if a.address == address)

    return find
