"""LilypadMediatorRegistry and the controller's mediator rules: stakes in and out with exact
balances, the unbonding delay, the admin-only minimum, and the first `agree` refusing deals
that name an unstaked, under-staked or unbonding mediator (minimum > 0) or a mediator twice."""

from __future__ import annotations

import ape
import pytest

TOKEN = 10**18
MAX = 2**256 - 1
DAY = 24 * 3600
DELAY = 67 * DAY  # 2 x MAX_TIMEOUT (30 days: the longest commit + reveal round) + 7 days of margin


@pytest.fixture
def staker(mediators, token, mediator_registry, deployer):
    """A mediator holding 100 LP that has approved the registry."""
    m = mediators[0]
    token.mint(m, 100 * TOKEN, sender=deployer)
    token.approve(mediator_registry, MAX, sender=m)
    return m


def _stake(registry, who) -> tuple[int, int]:
    s = registry.getStake(who)
    return int(s.amount), int(s.unbondingSince)


def test_registry_is_wired(controller, mediator_registry, token):
    assert mediator_registry.controller() == controller.address
    assert mediator_registry.token() == token.address
    assert controller.getMediatorRegistryAddress() == mediator_registry.address
    assert mediator_registry.UNBONDING_DELAY() == DELAY == 2 * controller.MAX_TIMEOUT() + 7 * DAY
    assert controller.getMinMediatorStake() == 0


def test_register_add_unbond_withdraw_moves_exact_amounts(mediator_registry, token, staker, chain, advance):
    r = mediator_registry
    receipt = r.register(10 * TOKEN, sender=staker)
    assert receipt.events.filter(r.MediatorRegistered)[0].stake == 10 * TOKEN
    assert token.balanceOf(staker) == 90 * TOKEN and token.balanceOf(r) == 10 * TOKEN
    with ape.reverts(r.AlreadyRegistered):
        r.register(1, sender=staker)

    receipt = r.addStake(5 * TOKEN, sender=staker)
    added = receipt.events.filter(r.StakeAdded)[0]
    assert (added.amount, added.stake) == (5 * TOKEN, 15 * TOKEN)
    assert _stake(r, staker) == (15 * TOKEN, 0)
    assert token.balanceOf(staker) == 85 * TOKEN and token.balanceOf(r) == 15 * TOKEN

    with ape.reverts(r.NotUnbonding):
        r.withdraw(sender=staker)
    receipt = r.requestUnbond(sender=staker)
    since = chain.blocks.head.timestamp
    event = receipt.events.filter(r.UnbondRequested)[0]
    assert (event.stake, event.withdrawableAt) == (15 * TOKEN, since + DELAY)
    assert _stake(r, staker) == (15 * TOKEN, since)
    with ape.reverts(r.Unbonding):
        r.addStake(1, sender=staker)
    with ape.reverts(r.Unbonding):
        r.requestUnbond(sender=staker)

    advance(DELAY - 10)  # one second before the delay ends, whatever the next block's clock
    with ape.reverts(r.StillBonded):
        r.withdraw(sender=staker)
    assert token.balanceOf(r) == 15 * TOKEN

    advance(10)
    receipt = r.withdraw(sender=staker)
    assert receipt.events.filter(r.StakeWithdrawn)[0].stake == 15 * TOKEN
    assert token.balanceOf(staker) == 100 * TOKEN and token.balanceOf(r) == 0
    assert _stake(r, staker) == (0, 0)
    with ape.reverts(r.NotRegistered):
        r.withdraw(sender=staker)
    with ape.reverts(r.NotRegistered):
        r.addStake(1, sender=staker)


def test_zero_stakes_and_missing_allowance_are_refused(mediator_registry, mediators, stranger, token):
    r = mediator_registry
    with ape.reverts(r.ZeroStake):
        r.register(0, sender=stranger)
    with ape.reverts(r.NotRegistered):
        r.requestUnbond(sender=stranger)
    token.approve(r, 0, sender=stranger)
    with ape.reverts():  # no allowance: SafeERC20 reverts, nothing is recorded
        r.register(TOKEN, sender=stranger)
    assert _stake(r, stranger) == (0, 0)


def test_only_the_admin_sets_the_minimum_within_bounds(controller, deployer, stranger):
    with ape.reverts(controller.AccessControlUnauthorizedAccount):
        controller.setMinMediatorStake(TOKEN, sender=stranger)
    with ape.reverts(controller.MinMediatorStakeTooHigh):
        controller.setMinMediatorStake(controller.MAX_MIN_MEDIATOR_STAKE() + 1, sender=deployer)
    receipt = controller.setMinMediatorStake(7 * TOKEN, sender=deployer)
    assert receipt.events.filter(controller.MinMediatorStakeChanged)[0].minStake == 7 * TOKEN
    assert controller.getMinMediatorStake() == 7 * TOKEN


def test_with_a_minimum_only_deals_naming_staked_mediators_are_agreed(
        controller, mediator_registry, token, payments, deployer, mediators, make_deal, job_creator,
        resource_provider, agreed, advance):
    r = mediator_registry
    staked, under, unbonding = mediators
    for m, amount in ((staked, 10 * TOKEN), (under, 9 * TOKEN), (unbonding, 10 * TOKEN)):
        token.mint(m, amount, sender=deployer)
        token.approve(r, amount, sender=m)
        r.register(amount, sender=m)
    r.requestUnbond(sender=unbonding)
    controller.setMinMediatorStake(10 * TOKEN, sender=deployer)

    holders = (job_creator, resource_provider, payments, r)
    before = [token.balanceOf(h) for h in holders]
    for names in ([under], [unbonding], [staked, under], [staked, deployer]):  # deployer never registered
        deal = make_deal(mediators=names)
        for party in (job_creator, resource_provider):
            with ape.reverts(controller.InvalidDeal, reason="mediator not staked"):
                controller.agree(deal.as_tuple(), sender=party)
    # refused before anything moved: no party escrowed or lost anything, the stakes are intact
    assert [token.balanceOf(h) for h in holders] == before
    assert token.balanceOf(r) == 29 * TOKEN

    deal = make_deal(mediators=[staked])
    agreed(deal)
    assert controller.getMinMediatorStake() == 10 * TOKEN

    # Fixed at the first agree: a deal created while its mediator qualified is agreed by
    # the other side even after the minimum rises above that mediator's stake.
    half = make_deal(mediators=[staked])
    controller.agree(half.as_tuple(), sender=job_creator)
    controller.setMinMediatorStake(11 * TOKEN, sender=deployer)
    controller.agree(half.as_tuple(), sender=resource_provider)
    with ape.reverts(controller.InvalidDeal, reason="mediator not staked"):
        controller.agree(make_deal(mediators=[staked]).as_tuple(), sender=job_creator)

    # An unbond request stops new deals at once, and the stake stays until the delay ends.
    controller.setMinMediatorStake(10 * TOKEN, sender=deployer)
    r.requestUnbond(sender=staked)
    with ape.reverts(controller.InvalidDeal, reason="mediator not staked"):
        controller.agree(make_deal(mediators=[staked]).as_tuple(), sender=job_creator)
    advance(30 * DAY)
    with ape.reverts(r.StillBonded):
        r.withdraw(sender=staked)
    assert token.balanceOf(r) == 29 * TOKEN


def test_with_minimum_zero_any_address_may_be_named(controller, make_deal, agreed, stranger, payee):
    assert controller.getMinMediatorStake() == 0
    agreed(make_deal(mediators=[stranger, payee]))  # never registered, no stake


def test_a_mediator_listed_twice_is_refused_so_the_draw_cannot_be_weighted(
        controller, token, payments, make_deal, mediators, job_creator, resource_provider):
    """Attack: the job creator lists its colluding mediator 15 times beside one honest one, so
    the draw picks it 15 times in 16. The first agree now refuses any repeated mediator, by
    either party, wherever the repeat sits in the list."""
    colluder, honest, other = mediators
    attacks = [
        [colluder] * 15 + [honest],
        [colluder, colluder],
        [honest, other, colluder, other],
    ]
    holders = (job_creator, resource_provider, payments)
    before = [token.balanceOf(h) for h in holders]
    for names in attacks:
        deal = make_deal(mediators=names)
        for party in (job_creator, resource_provider):
            with ape.reverts(controller.InvalidDeal, reason="duplicate mediator"):
                controller.agree(deal.as_tuple(), sender=party)
    assert [token.balanceOf(h) for h in holders] == before  # nothing escrowed for a weighted deal
    controller.agree(make_deal(mediators=[colluder, honest, other]).as_tuple(), sender=job_creator)
