"""Protocol settings, the tax, the treasury and the jackpot's catch reward, with exact amounts.

Settings are versions appended by the admin only, each field within its bound; a deal names
the version current at its first agree and keeps it for life. A settlement that pays the
provider the job cost takes ``taxBps`` of it (floor), ``treasuryShareBps`` of that (floor) to
the treasury and the rest to the jackpot; settlements that do not pay the job cost take none;
an exempt job creator's deals pay none. A rejected result pays a catch reward of ``rewardBps``
of the jackpot: half to the job creator that checked, the rest to the majority.
Every test asserts every holder's change (tests/contracts/mechanisms_support.Books).
"""

from __future__ import annotations

from dataclasses import replace

import ape
import pytest
from mechanisms_support import BPS, TOKEN, Settings, mediator_share, tax_split

from lilypad.protocol.deal import AgreementState as S

#: Terms whose job cost is not a round number, so every floor division shows.
ODD = {"instruction_price": TOKEN + 7}
COUNT = 3
COST = 3 * (TOKEN + 7)  # job cost of ODD terms at COUNT instructions
FEE, JUDGE, SUBMIT = TOKEN, 3 * TOKEN, 2 * TOKEN  # tests/conftest.py make_deal's terms


def test_settings_are_admin_only_bounded_and_versioned(mech, controller, deployer, stranger, job_creator,
                                                      resource_provider, panel):
    c = controller
    assert c.getSettingsVersion() == 0 and Settings.read(c, 0) == Settings()  # version 0: all off
    top = Settings(tax_bps=c.MAX_TAX_BPS(), treasury_share_bps=BPS, audit_bps=c.MAX_AUDIT_BPS(),
                   reward_bps=c.MAX_REWARD_BPS(), min_mediator_stake=c.MAX_MIN_MEDIATOR_STAKE(),
                   mediator_slash=c.MAX_MIN_MEDIATOR_STAKE())
    assert (top.tax_bps, top.audit_bps, top.reward_bps, top.min_mediator_stake) == (
        1_000, 5_000, 5_000, 1_000_000 * TOKEN)
    for who in (stranger, job_creator, resource_provider, panel[0]):
        with ape.reverts(c.AccessControlUnauthorizedAccount):
            c.setProtocolSettings(Settings(tax_bps=1).as_tuple(), sender=who)
        with ape.reverts(c.AccessControlUnauthorizedAccount):
            c.setMinMediatorStake(1, sender=who)
        with ape.reverts(c.AccessControlUnauthorizedAccount):
            c.setTreasury(who, sender=who)
        with ape.reverts(c.AccessControlUnauthorizedAccount):
            c.setTaxExempt(who, True, sender=who)
    assert c.getSettingsVersion() == 0 and c.getTreasury() == "0x" + "00" * 20
    assert not c.isTaxExempt(stranger)

    # Every field at its bound is accepted, and makes a new version with an event.
    receipt = c.setProtocolSettings(top.as_tuple(), sender=deployer)
    (event,) = receipt.events.filter(c.ProtocolSettingsChanged)
    assert event.version == 1 and Settings(*event.settings) == top
    assert c.getSettingsVersion() == 1 and Settings.read(c, 1) == top and Settings.read(c, 0) == Settings()

    # One unit above any bound is refused, and no version is added.
    for name, error, reason in (("tax_bps", c.InvalidSettings, "tax over MAX_TAX_BPS"),
                                ("treasury_share_bps", c.InvalidSettings, "treasury share over 100%"),
                                ("audit_bps", c.InvalidSettings, "audit rate over MAX_AUDIT_BPS"),
                                ("reward_bps", c.InvalidSettings, "reward over MAX_REWARD_BPS"),
                                ("min_mediator_stake", c.MinMediatorStakeTooHigh, None),
                                ("mediator_slash", c.MinMediatorStakeTooHigh, None)):
        over = replace(top, **{name: getattr(top, name) + 1})
        with ape.reverts(error, **({"reason": reason} if reason else {})):
            c.setProtocolSettings(over.as_tuple(), sender=deployer)
    with ape.reverts(c.MinMediatorStakeTooHigh):
        c.setMinMediatorStake(c.MAX_MIN_MEDIATOR_STAKE() + 1, sender=deployer)
    assert c.getSettingsVersion() == 1

    # setMinMediatorStake is a version too: the other fields carried over.
    receipt = c.setMinMediatorStake(7 * TOKEN, sender=deployer)
    (event,) = receipt.events.filter(c.ProtocolSettingsChanged)
    assert event.version == 2 and Settings.read(c, 2) == replace(top, min_mediator_stake=7 * TOKEN)
    assert receipt.events.filter(c.MinMediatorStakeChanged)[0].minStake == 7 * TOKEN
    assert mech.settings(tax_bps=5) == 3 and Settings.read(c, 3) == Settings(tax_bps=5)

    receipt = c.setTreasury(stranger, sender=deployer)
    assert receipt.events.filter(c.TreasuryAddressChanged)[0].treasury == stranger.address
    receipt = c.setTaxExempt(stranger, True, sender=deployer)
    (event,) = receipt.events.filter(c.TaxExemptionChanged)
    assert (event.jobCreator, event.exempt) == (stranger.address, True)
    assert c.getTreasury() == stranger.address and c.isTaxExempt(stranger)


def test_a_deal_naming_another_version_is_refused_at_first_agree_and_loses_nothing(mech, controller, job_creator,
                                                                                  resource_provider):
    stale = mech.deal()  # made under version 0
    current = mech.settings(tax_bps=100)
    future = mech.deal(version=current + 1)
    before = mech.books.snapshot()
    for deal in (stale, future):
        for party in (job_creator, resource_provider):
            with ape.reverts(controller.InvalidDeal, reason="settings version not current"):
                controller.agree(deal.as_tuple(), sender=party)
        assert mech.state(deal) == S.NONE
    assert mech.books.delta(before) == {}
    fresh = mech.deal()
    assert fresh.protocol.settings_version == current
    mech.agree(fresh)
    assert mech.books.delta(before) == {"jc": -8 * TOKEN, "rp": -SUBMIT, "escrow": 8 * TOKEN + SUBMIT}


def test_an_open_deal_keeps_its_versions_tax_audit_rate_and_slash(mech, controller, chain, job_creator,
                                                                 resource_provider, deployer):
    mech.seed_jackpot(5 * TOKEN)  # enough to pay any audit's fee: only the rate decides
    v1 = Settings(tax_bps=1_000, treasury_share_bps=5_000, mediator_slash=3 * TOKEN)
    mech.settings(**v1.__dict__)
    half = mech.deal()  # agreed by one side under v1
    controller.agree(half.as_tuple(), sender=job_creator)
    checked = mech.deal(mediators=mech.panel[:3])
    mech.submit(checked)
    mech.check(checked)
    (silent,) = mech.drawn(checked)
    controller.assignMediator(checked.as_tuple(), sender=resource_provider)  # fixed before 300 blocks pass
    v2 = Settings(audit_bps=5_000, mediator_slash=7 * TOKEN)
    mech.settings(**v2.__dict__)  # the admin switches the tax off and audits on, and raises the slash

    # The half-agreed deal is completed and accepted after a forgotten audit draw (which would be
    # audited under v2): v1 has no audits, and v1's tax is taken.
    before = mech.books.snapshot()
    controller.agree(half.as_tuple(), sender=resource_provider)
    controller.addResult(half.as_tuple(), b"\x11" * 32, 3, sender=resource_provider)
    chain.mine(300)
    controller.acceptResult(half.as_tuple(), sender=job_creator)
    assert mech.state(half) == S.RESULTS_ACCEPTED
    tax, to_treasury, to_jackpot = tax_split(3 * TOKEN, v1)
    assert (tax, to_treasury) == (3 * TOKEN // 10, 3 * TOKEN // 20)
    # (the job creator's deposit was escrowed before: it gets it back less the job cost)
    assert mech.books.delta(before) == {"jc": 8 * TOKEN - 3 * TOKEN, "rp": 3 * TOKEN - tax, "escrow": -8 * TOKEN,
                                        "jackpot": to_jackpot, "treasury": to_treasury}

    # The checked deal's silent mediator loses v1's slash, not v2's (all to the jackpot: no majority).
    before = mech.books.snapshot()
    mech.resolve(checked)
    label = mech.books.label(silent)
    assert mech.books.delta(before) == {f"stake {label}": -3 * TOKEN, "jackpot": 3 * TOKEN}

    # A deal made under v2 is audited after a forgotten draw even once the admin switches audits off.
    audited = mech.deal()
    mech.submit(audited)
    mech.settings()
    chain.mine(300)
    before = mech.books.snapshot()
    receipt = controller.acceptResult(audited.as_tuple(), sender=job_creator)
    assert mech.state(audited) == S.RESULTS_CHECKED
    assert receipt.events.filter(controller.DealAudited)[0].feeFromJackpot == FEE
    assert mech.books.delta(before) == {"jackpot": -FEE, "escrow": FEE}


@pytest.mark.parametrize("tax_bps,share_bps", [(333, 2_500), (1_000, 10_000), (1, 0), (999, 1)])
def test_accept_pays_the_job_cost_less_the_tax_split_exactly(mech, controller, job_creator, tax_bps, share_bps):
    s = Settings(tax_bps=tax_bps, treasury_share_bps=share_bps)
    mech.settings(**s.__dict__)
    deal = mech.deal(pricing=ODD)
    before = mech.books.snapshot()
    mech.submit(deal, COUNT)
    controller.acceptResult(deal.as_tuple(), sender=job_creator)
    tax, to_treasury, to_jackpot = tax_split(COST, s)
    assert tax == COST * tax_bps // BPS and to_treasury == tax * share_bps // BPS and tax > 0
    # provider: job cost - tax (its results collateral came back); job creator: the job cost
    assert mech.books.delta(before) == {k: v for k, v in {
        "jc": -COST, "rp": COST - tax, "treasury": to_treasury, "jackpot": to_jackpot}.items() if v}


PATHS = ["accept", "timeout_judge", "mediation_accept", "mediation_non_deterministic", "mediation_reject",
         "timeout_agree", "timeout_submit", "timeout_mediate"]


@pytest.mark.parametrize("path", PATHS)
def test_only_settlements_that_pay_the_job_cost_are_taxed(mech, controller, job_creator, resource_provider,
                                                          stranger, path):
    s = Settings(tax_bps=333, treasury_share_bps=2_500)
    mech.settings(**s.__dict__)
    deal = mech.deal(pricing=ODD, mediators=mech.panel[:1])
    (m,) = deal.members.mediators
    before = mech.books.snapshot()
    mech.settle_along(deal, path, COUNT)  # its only mediator is silent on timeout_mediate: all refunded
    tax, to_treasury, to_jackpot = tax_split(COST, s)
    pot = {"treasury": to_treasury, "jackpot": to_jackpot}
    expected = {
        "accept": {"jc": -COST, "rp": COST - tax, **pot},
        "timeout_judge": {"jc": -COST - JUDGE, "rp": COST - tax + JUDGE, **pot},
        "mediation_accept": {"jc": -COST - FEE, "rp": COST - tax, "m0": FEE, **pot},
        "mediation_non_deterministic": {"jc": -COST - FEE - JUDGE, "rp": COST - tax + JUDGE, "m0": FEE, **pot},
        "mediation_reject": {"jc": 2 * COST - FEE, "rp": -2 * COST, "m0": FEE},  # results collateral 2 x cost
        "timeout_agree": {},  # the job creator's deposit comes back
        "timeout_submit": {"jc": SUBMIT, "rp": -SUBMIT},
        "timeout_mediate": {},  # everything back, the fee included
    }[path]
    assert mech.books.delta(before) == expected
    assert m == mech.panel[0].address and mech.state(deal).is_terminal


def test_a_tax_exempt_job_creator_pays_no_tax(mech, controller, deployer, job_creator, stranger):
    s = Settings(tax_bps=1_000, treasury_share_bps=3_000)
    mech.settings(**s.__dict__)
    controller.setTaxExempt(job_creator, True, sender=deployer)
    exempt, taxed = mech.deal(pricing=ODD), mech.deal(pricing=ODD, job_creator=stranger)
    before = mech.books.snapshot()
    mech.submit(exempt, COUNT)
    controller.acceptResult(exempt.as_tuple(), sender=job_creator)
    assert mech.books.delta(before) == {"jc": -COST, "rp": COST}
    # another job creator's deal is taxed as usual
    before = mech.books.snapshot()
    controller.agree(taxed.as_tuple(), sender=stranger)
    controller.agree(taxed.as_tuple(), sender=mech.rp)
    controller.addResult(taxed.as_tuple(), b"\x11" * 32, COUNT, sender=mech.rp)
    controller.acceptResult(taxed.as_tuple(), sender=stranger)
    tax, to_treasury, to_jackpot = tax_split(COST, s)
    assert mech.books.delta(before) == {"stranger": -COST, "rp": COST - tax, "treasury": to_treasury,
                                        "jackpot": to_jackpot}


def test_a_change_of_tax_exemption_never_alters_an_open_deal(mech, controller, deployer, job_creator):
    """Issue 17, rule 5: "settings that affect a deal are fixed when the deal is agreed (a change
    never alters an open deal)". The provider agreed to be paid the job cost less the tax of an
    exempt job creator's deal, i.e. all of it: revoking the exemption while the deal is open must
    not cut its pay (nor granting one raise it)."""
    s = Settings(tax_bps=1_000)
    mech.settings(**s.__dict__)
    controller.setTaxExempt(job_creator, True, sender=deployer)  # appends a settings version
    was_exempt = mech.deal(pricing=ODD)
    mech.submit(was_exempt, COUNT)
    controller.setTaxExempt(job_creator, False, sender=deployer)
    with ape.reverts(controller.InvalidDeal):  # a deal under the version that exempted it is no longer agreed
        mech.submit(mech.deal(pricing=ODD, version=was_exempt.protocol.settings_version), COUNT)
    was_taxed = mech.deal(pricing=ODD)
    mech.submit(was_taxed, COUNT)
    controller.setTaxExempt(job_creator, True, sender=deployer)
    before = mech.books.snapshot()
    controller.acceptResult(was_exempt.as_tuple(), sender=job_creator)
    controller.acceptResult(was_taxed.as_tuple(), sender=job_creator)
    tax = tax_split(COST, s)[0]
    # exempt when agreed: paid in full; taxed when agreed: taxed (each gets its results collateral back)
    assert mech.books.delta(before) == {"jc": 2 * (8 * TOKEN - COST), "rp": 2 * COST - tax + 2 * 2 * COST,
                                        "escrow": -2 * (8 * TOKEN + 2 * COST), "jackpot": tax}


def test_claim_treasury_pays_the_treasury_address_and_anyone_may_call_it(mech, controller, deployer, stranger,
                                                                         job_creator, payee):
    with ape.reverts(controller.NoTreasury):
        controller.claimTreasury(sender=stranger)
    s = Settings(tax_bps=777, treasury_share_bps=6_001)
    mech.settings(**s.__dict__)
    deal = mech.deal(pricing=ODD)
    mech.submit(deal, COUNT)
    controller.acceptResult(deal.as_tuple(), sender=job_creator)
    _, to_treasury, to_jackpot = tax_split(COST, s)
    with ape.reverts(controller.NoTreasury):  # the tax is kept until governance names a treasury
        controller.claimTreasury(sender=stranger)
    controller.setTreasury(payee, sender=deployer)
    before = mech.books.snapshot()
    assert before["treasury"] == to_treasury and before["jackpot"] == to_jackpot
    receipt = controller.claimTreasury(sender=stranger)
    (event,) = receipt.events.filter(mech.payments.TreasuryChanged)
    assert (event.added, event.claimed, event.treasury) == (0, to_treasury, 0)
    assert mech.books.delta(before) == {"payee": to_treasury, "treasury": -to_treasury}  # the jackpot stays
    before = mech.books.snapshot()
    controller.claimTreasury(sender=payee)  # nothing left: nothing moves
    assert mech.books.delta(before) == {}


def test_a_reject_pays_the_catch_reward_half_to_the_checker(mech, controller, job_creator):
    """k = 1: the job creator that checked gets half of rewardBps of the jackpot, the mediator the
    rest plus its fee; the provider loses its results collateral to the job creator, untaxed."""
    mech.seed_jackpot(5 * TOKEN + 5)  # a jackpot whose reward is odd: the halves differ by one
    s = Settings(tax_bps=500, treasury_share_bps=5_000, reward_bps=2_001)
    mech.settings(**s.__dict__)
    deal = mech.deal(pricing=ODD)
    mech.submit(deal, COUNT, b"\x66" * 32)
    mech.check(deal)
    (mediator,) = mech.drawn(deal)
    before = mech.books.snapshot()
    reward = before["jackpot"] * s.reward_bps // BPS
    assert reward == (5 * TOKEN + 5) * 2_001 // BPS and reward % 2 == 1
    controller.mediationRejectResult(deal.as_tuple(), sender=mediator)
    to_checker = reward // 2
    each, dust = mediator_share(FEE + reward - to_checker, 0, 1)
    assert (each, dust) == (FEE + reward - to_checker, 0) and reward - to_checker == to_checker + 1
    # job creator: its escrow back (the fee excepted) plus the results collateral plus half the reward
    assert mech.books.delta(before) == {
        "jc": 8 * TOKEN + 2 * COST + to_checker, mech.books.label(mediator): each, "jackpot": -reward,
        "escrow": -(8 * TOKEN + FEE + 2 * COST)}
