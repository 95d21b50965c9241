"""Session-scoped roles and a deployed system (tests/conftest.py's ``deploy_protocol``); each
test runs in its own chain snapshot. ``make_deal`` names the controller's current settings
version (a test that changes the settings makes its deals afterwards)."""

from __future__ import annotations

import pytest

from lilypad.protocol.deal import AgreementState, Deal

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
def make_deal(make_deal, controller):
    """tests/conftest.py's ``make_deal``, under the controller's current settings version
    unless ``protocol={"settings_version": ...}`` says otherwise."""

    def make(*, protocol: dict | None = None, **kwargs) -> Deal:
        terms = {"settings_version": int(controller.getSettingsVersion()), **(protocol or {})}
        return make_deal(protocol=terms, **kwargs)

    return make


@pytest.fixture(scope="session")
def time_out_mediation(controller, storage, chain):
    """End a checked deal whose panel stays silent, round by round: each timeout of a round
    starts a new one with a fresh draw (the silent mediator no longer eligible) until none is
    left or the rounds run out, and the last refunds everyone. Returns the rounds timed out."""

    def run(deal: Deal, sender) -> int:
        rounds = 0
        while AgreementState(storage.getAgreement(deal.deal_id).state) == AgreementState.RESULTS_CHECKED:
            chain.mine(timestamp=chain.pending_timestamp + deal.mediation_round_window)
            controller.timeoutMediateResult(deal.as_tuple(), sender=sender)
            rounds += 1
            assert rounds <= 3  # LilypadMediation.MAX_ROUNDS
        return rounds

    return run


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


#: What each member of ``panel`` stakes in the mediator registry.
PANEL_STAKE = 100 * 10**18


@pytest.fixture(scope="module")
def panel(accounts, system, deployer):
    """Seven mediators of the module's own: generated ape test accounts given gas money and
    1,000 LP, each registered in the mediator registry with PANEL_STAKE (registry approved for
    more). Module-scoped: the chain state is reverted with the module."""
    token, registry = system["token"], system["mediator_registry"]
    members = []
    for _ in range(7):
        m = accounts.generate_test_account()
        m.balance = 10**21
        token.mint(m, 1_000 * 10**18, sender=deployer)
        token.approve(registry, MAX, sender=m)
        registry.register(PANEL_STAKE, sender=m)
        members.append(m)
    return members


@pytest.fixture
def mech(chain, system, deployer, job_creator, resource_provider, stranger, payee, panel, make_deal):
    """tests/contracts/mechanisms_support.Mechanisms over this test's chain snapshot."""
    from mechanisms_support import Mechanisms

    return Mechanisms(chain=chain, system=system, deployer=deployer, job_creator=job_creator,
                      resource_provider=resource_provider, stranger=stranger, payee=payee, panel=panel,
                      make_deal=make_deal)
