"""Fixtures shared by the chain-backed test folders: the named test accounts, a
deal factory and an address-to-account lookup. Folders deploy their own system."""

from __future__ import annotations

import pytest

from lilypad.protocol.deal import Deal, DealMembers, DealPricing, DealTimeouts

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
    multiple 2, mediation fee 1, submit collateral 2, judge collateral 3."""

    def make(*, timeouts: dict | None = None, pricing: dict | None = None, **members) -> Deal:
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
        return Deal(members=DealMembers(**m), timeouts=DealTimeouts(**t), pricing=DealPricing(**p))

    return make


@pytest.fixture(scope="session")
def signer(accounts):
    """The test account with a given address."""

    def find(address):
        return next(a for a in accounts if a.address == address)

    return find
