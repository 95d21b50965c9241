"""Targeted attacks on the contracts: reentrancy through a malicious client
contract's callbacks, role escalation, and front-running a timeout or a
mediation at the edge of its window. The token is the fixed LilypadToken (no
transfer hooks), so token-callback reentrancy does not apply; the client
callback is the only code of an attacker the contracts ever call."""

from __future__ import annotations

import ape
import pytest

from lilypad.protocol.deal import AgreementState, JobState
from lilypad.protocol.deploy import ADMIN_ROLE, MINTER_ROLE

TOKEN = 10**18
DEPOSIT = 4 * TOKEN
MAX = 2**256 - 1
CID = b"\x11" * 32


def _hostile_job(project, job_manager, token, deployer, payee):
    hostile = project.ReentrantClient.deploy(job_manager, sender=deployer)
    token.approve(job_manager, MAX, sender=payee)
    job_manager.setCallerAllowance(hostile, MAX, sender=payee)
    job_id = hostile.run(payee, sender=payee).events.filter(job_manager.JobAdded)[0].id
    return hostile, job_id


@pytest.mark.parametrize("ending", ["delivered", "cancelled"])
def test_a_client_re_entering_from_its_callback_gets_nothing(project, job_manager, controller, token, deployer,
                                                             payee, stranger, resource_provider, make_deal, ending):
    hostile, job_id = _hostile_job(project, job_manager, token, deployer, payee)
    options = tuple(hostile.options())
    before = {who: token.balanceOf(who) for who in (payee, stranger, job_manager)}
    if ending == "delivered":
        deal = make_deal(job_creator=job_manager.address,
                         pricing={"instruction_price": TOKEN, "payment_collateral": 2 * TOKEN},
                         timeouts={"judge_results_collateral": 1, "submit_results_collateral": 1})
        deal = deal.model_copy(update={"nonce": bytes(job_manager.dealNonce(job_id, 0))})
        job_manager.agree(job_id, options, deal.as_tuple(), sender=stranger)
        controller.agree(deal.as_tuple(), sender=resource_provider)
        controller.addResult(deal.as_tuple(), CID, 1, sender=resource_provider)
        job_manager.judge(job_id, options, deal.as_tuple(), sender=stranger, gas=3_000_000)
    else:
        hostile.cancel(job_id, sender=payee, gas=3_000_000)
    assert hostile.callbacks() == 1 and hostile.attempts() == 5
    assert hostile.succeeded() == 0, "a re-entrant call got through"
    after = {who: token.balanceOf(who) for who in (payee, stranger, job_manager)}
    fee = options[1]
    if ending == "delivered":
        assert JobState(job_manager.getJob(job_id).state) == JobState.COMPLETED
        assert after[stranger] - before[stranger] == fee  # the relayer's fee, once
        assert after[payee] - before[payee] == DEPOSIT - TOKEN - fee  # the change, once
    else:
        assert JobState(job_manager.getJob(job_id).state) == JobState.FAILED
        assert after[payee] - before[payee] == DEPOSIT and after[stranger] == before[stranger]
    assert after[job_manager] == before[job_manager] - DEPOSIT, "paid out exactly once"
    for call in (lambda: job_manager.complete(job_id, options, sender=stranger),
                 lambda: job_manager.cancelJob(job_id, options, sender=payee),
                 lambda: job_manager.timeoutJob(job_id, options, sender=stranger)):
        with ape.reverts():
            call()


def test_roles_cannot_be_escalated(job_manager, token, controller, stranger, bridge, deployer, payee):
    defaults = tuple(job_manager.getDefaults())
    for who in (stranger, bridge):
        with ape.reverts():
            job_manager.grantRole(ADMIN_ROLE, who, sender=who)
        with ape.reverts():
            job_manager.proposeDefaults(defaults, sender=who)
        with ape.reverts():
            token.grantRole(MINTER_ROLE, who, sender=who)
        with ape.reverts():
            token.mint(who, 10**30, sender=who)
        with ape.reverts():
            controller.setJobCreatorAddress(who, sender=who)
        with ape.reverts():
            controller.grantRole(ADMIN_ROLE, who, sender=who)
    # Nobody holds a role that moves client money or chooses a result: there is none.
    with ape.reverts(job_manager.ResultsComeFromTheChain):
        job_manager.submitResults(1, "0xdeal", "bafyx", sender=deployer)
    # The admin role itself changes hands only after a delay (AccessControlDefaultAdminRules).
    assert job_manager.defaultAdminDelay() == 2 * 24 * 3600
    assert not job_manager.hasRole(ADMIN_ROLE, bridge)
    assert not token.hasRole(MINTER_ROLE, stranger)


def _settled(token, payments, parties) -> int:
    return sum(token.balanceOf(p) for p in parties) + token.balanceOf(payments)


@pytest.mark.parametrize("first", ["provider", "timeout"])
def test_front_running_the_submit_timeout_at_the_window_edge(controller, storage, token, payments, make_deal,
                                                             agreed, job_creator, resource_provider, stranger,
                                                             chain, first):
    deal = make_deal()
    agreed(deal)
    parties = (job_creator, resource_provider, stranger)
    total = _settled(token, payments, parties)
    # Inside the window the timeout is refused: nobody can steal the provider's chance.
    with ape.reverts():
        controller.timeoutSubmitResult(deal.as_tuple(), sender=stranger)
    chain.mine(timestamp=chain.pending_timestamp + deal.timeouts.submit_results + 1)
    provider = lambda: controller.addResult(deal.as_tuple(), CID, 1, sender=resource_provider)  # noqa: E731
    timeout = lambda: controller.timeoutSubmitResult(deal.as_tuple(), sender=stranger)  # noqa: E731
    winner, loser = (provider, timeout) if first == "provider" else (timeout, provider)
    if first == "provider":  # the window has closed: a late result is refused, the timeout wins
        with ape.reverts():
            winner()
        timeout()
    else:
        winner()
        with ape.reverts():
            loser()
    assert AgreementState(storage.getAgreement(deal.deal_id).state) == AgreementState.TIMEOUT_SUBMIT_RESULTS
    assert token.balanceOf(payments) == 0 and _settled(token, payments, parties) == total
    with ape.reverts():
        controller.timeoutSubmitResult(deal.as_tuple(), sender=stranger)  # paid once


def test_front_running_a_mediation(controller, storage, token, payments, mediation, make_deal, agreed, job_creator,
                                   resource_provider, mediators, stranger, chain, time_out_mediation):
    deal = make_deal()
    agreed(deal)
    controller.addResult(deal.as_tuple(), CID, 1, sender=resource_provider)
    controller.checkResult(deal.as_tuple(), sender=job_creator)
    chain.mine()
    parties = (job_creator, resource_provider, stranger, *mediators)
    total = _settled(token, payments, parties)
    (drawn_address,) = mediation.drawPanel(deal.deal_id, list(deal.members.mediators), 0)
    drawn = next(m for m in mediators if m.address == drawn_address)
    # Neither party, nor an undrawn mediator, nor a stranger can judge; the timeout is not yet open.
    for who in (job_creator, resource_provider, stranger, *(m for m in mediators if m != drawn)):
        with ape.reverts():
            controller.mediationAcceptResult(deal.as_tuple(), sender=who)
        with ape.reverts():
            controller.mediationRejectResult(deal.as_tuple(), sender=who)
    with ape.reverts():
        controller.timeoutMediateResult(deal.as_tuple(), sender=resource_provider)
    # At the window's edge the timeout wins and the late verdict is refused: the silent
    # mediator's round ends and a new one is drawn among the others (no money moves).
    chain.mine(timestamp=chain.pending_timestamp + deal.timeouts.mediate_results + 1)
    with ape.reverts():
        controller.mediationRejectResult(deal.as_tuple(), sender=drawn)
    controller.timeoutMediateResult(deal.as_tuple(), sender=stranger)
    assert AgreementState(storage.getAgreement(deal.deal_id).state) == AgreementState.RESULTS_CHECKED
    assert _settled(token, payments, parties) == total
    with ape.reverts():  # the first round's mediator is out of the new round
        controller.mediationRejectResult(deal.as_tuple(), sender=drawn)
    assert time_out_mediation(deal, stranger) == 2  # nobody judges: the last round refunds everyone
    assert AgreementState(storage.getAgreement(deal.deal_id).state) == AgreementState.TIMEOUT_MEDIATE_RESULTS
    assert token.balanceOf(payments) == 0 and _settled(token, payments, parties) == total


@pytest.mark.parametrize("multiple", [2, 100], ids=["default-terms", "results-collateral-x100"])
def test_a_job_creator_gains_nothing_by_posting_a_non_deterministic_job(controller, storage, mediation, payments,
                                                                        token, chain, job_creator, resource_provider,
                                                                        solver, mediators, signer, multiple):
    """The non-determinism attack: post a job whose output differs run to run, check the
    provider's (honest) result, and hope the mediator's re-run differs and slashes the provider.
    The mediator's own runs disagree, so it rules the job non-deterministic: against accepting,
    the job creator loses exactly the mediation fee and its judging collateral, and the provider
    gets exactly what accepting pays plus that judging collateral (never slashed)."""
    from lilypad.protocol.deal import Deal, DealMembers
    from lilypad.protocol.offers import DEFAULT_RESOURCE_PRICING, DEFAULT_TIMEOUTS

    pricing = DEFAULT_RESOURCE_PRICING.model_copy(update={"results_collateral_multiple": multiple})
    members = DealMembers(solver=solver, job_creator=job_creator, resource_provider=resource_provider,
                          mediators=mediators)
    fee, judge = pricing.mediation_fee, DEFAULT_TIMEOUTS.judge_results_collateral
    count = 1  # the provider daemon's instruction count; job cost = 1 LP at the defaults

    def run(verdict: str) -> tuple[int, int, int]:
        deal = Deal(members=members, timeouts=DEFAULT_TIMEOUTS, pricing=pricing)
        before = [token.balanceOf(p) for p in (job_creator, resource_provider, payments)]
        controller.agree(deal.as_tuple(), sender=job_creator)
        controller.agree(deal.as_tuple(), sender=resource_provider)
        controller.addResult(deal.as_tuple(), CID, count, sender=resource_provider)
        if verdict == "accept":
            controller.acceptResult(deal.as_tuple(), sender=job_creator)
        else:
            controller.checkResult(deal.as_tuple(), sender=job_creator)
            chain.mine()
            (drawn_address,) = mediation.drawPanel(deal.deal_id, list(deal.members.mediators), 0)
            drawn = signer(drawn_address)
            m0 = token.balanceOf(drawn)
            controller.mediationNonDeterministic(deal.as_tuple(), sender=drawn)
            assert token.balanceOf(drawn) - m0 == fee
            assert (AgreementState(storage.getAgreement(deal.deal_id).state)
                    == AgreementState.MEDIATION_NON_DETERMINISTIC)
        after = [token.balanceOf(p) for p in (job_creator, resource_provider, payments)]
        return tuple(a - b for a, b in zip(after, before, strict=True))  # type: ignore[return-value]

    jc_accept, rp_accept, pay_accept = run("accept")
    jc_attack, rp_attack, pay_attack = run("non-deterministic")
    job_cost = pricing.instruction_price * count
    assert (jc_accept, rp_accept, pay_accept) == (-job_cost, job_cost, 0)
    assert jc_attack == jc_accept - fee - judge  # the attack costs the job creator fee + judging collateral
    assert rp_attack == rp_accept + judge  # the provider is paid as if accepted, plus the compensation
    assert pay_attack == 0  # nothing is left behind in escrow
    # A reject would have handed the job creator the provider's results collateral (multiple x job cost)
    # for the fee; now the attack is a net loss at any multiple.
    assert jc_attack == -(job_cost + fee + judge)
