"""A deployed system (tests/conftest.py's ``deploy_protocol``) and its LilypadContracts; each
test runs in its own chain snapshot."""

from __future__ import annotations

import pytest

from lilypad.chain.contracts import LilypadContracts
from lilypad.protocol.deal import Deal


@pytest.fixture(scope="session")
def deployed(deploy_protocol, bridge, job_creator, resource_provider, payee, mediators):
    """(Deployment, instances): funded parties, no approvals (tests approve through the wrappers)."""
    return deploy_protocol(fund=[job_creator, resource_provider, payee, bridge, *mediators])


@pytest.fixture(scope="session")
def deployment(deployed):
    return deployed[0]


@pytest.fixture(scope="session")
def contracts(deployment):
    """Built the way services build it: contract types from the repository root's project."""
    return LilypadContracts(deployment, retries=0)


@pytest.fixture(scope="session")
def agreed(contracts, job_creator, resource_provider):
    """Approve and agree from both sides: the deal ends up DealAgreed."""

    def agree(deal: Deal) -> None:
        contracts.ensure_allowance(job_creator, deal.job_creator_deposit + deal.pricing.mediation_fee)
        contracts.ensure_allowance(resource_provider, deal.resource_provider_deposit)
        contracts.agree(deal, job_creator)
        contracts.agree(deal, resource_provider)

    return agree
