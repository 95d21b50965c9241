"""Unauthorised calls revert with a clear reason; bad terms are refused at agree."""

from __future__ import annotations

import ape
import pytest

from lilypad.protocol.deal import AgreementState

TOKEN = 10**18
CID = bytes.fromhex("22" * 32)


def test_only_parties_agree_and_squatting_is_impossible(controller, storage, make_deal, stranger,
                                                        job_creator, resource_provider, agreed):
    deal = make_deal()
    with ape.reverts(controller.NotADealParty):
        controller.agree(deal.as_tuple(), sender=stranger)
    # A squatter can only create a *different* deal (different terms -> different id).
    squat = make_deal(job_creator=stranger)
    controller.agree(squat.as_tuple(), sender=stranger)
    assert squat.deal_id != deal.deal_id
    agreed(deal)  # the real deal is unaffected
    assert storage.getAgreement(deal.deal_id).state == AgreementState.DEAL_AGREED


def test_each_side_acts_only_for_itself(controller, make_deal, agreed, job_creator, resource_provider, stranger):
    deal = make_deal()
    controller.agree(deal.as_tuple(), sender=job_creator)
    with ape.reverts(controller.AlreadyAgreed):
        controller.agree(deal.as_tuple(), sender=job_creator)
    controller.agree(deal.as_tuple(), sender=resource_provider)
    for who in (job_creator, stranger):
        with ape.reverts(controller.NotResourceProvider):
            controller.addResult(deal.as_tuple(), CID, 1, sender=who)
    controller.addResult(deal.as_tuple(), CID, 1, sender=resource_provider)
    for who in (resource_provider, stranger):
        with ape.reverts(controller.NotJobCreator):
            controller.acceptResult(deal.as_tuple(), sender=who)
        with ape.reverts(controller.NotJobCreator):
            controller.checkResult(deal.as_tuple(), sender=who)


def test_only_the_controller_writes_storage_payments_and_mediation(storage, payments, mediation, mediator_registry,
                                                                  stranger, deployer, make_deal):
    deal_id = make_deal().deal_id
    agreement = (1, True, False, 1, 0, 0, 0, 0, 0)
    payout = (stranger, 0, stranger, 0, [stranger], 0, 0, 0, 0, 0)
    for who in (stranger, deployer):  # not even the deployer: the binding is immutable
        with ape.reverts(storage.NotController):
            storage.setAgreement(deal_id, agreement, stranger, 2, 1, sender=who)
        with ape.reverts(storage.NotController):
            storage.setResult(deal_id, deal_id, agreement, stranger, sender=who)
        with ape.reverts(payments.NotController):
            payments.escrowJobCreator(deal_id, stranger, 1, sender=who)
        with ape.reverts(payments.NotController):
            payments.settle(deal_id, payout, sender=who)
        for fn, args in ((payments.fundFromJackpot, (deal_id, 0)), (payments.creditJackpot, (deal_id, 0)),
                         (payments.claimTreasury, (who,))):
            with ape.reverts(payments.NotController):
                fn(*args, sender=who)
        with ape.reverts(mediator_registry.NotController):
            mediator_registry.slash(stranger, 0, who, sender=who)
        for fn, args in ((mediation.request, (deal_id, 1, False)), (mediation.assign, (deal_id, [stranger], 0)),
                         (mediation.commit, (deal_id, who, deal_id)),
                         (mediation.reveal, (deal_id, who, 1, deal_id, deal_id)),
                         (mediation.markSlashed, (deal_id, who)), (mediation.nextRound, (deal_id,))):
            with ape.reverts(mediation.NotController):
                fn(*args, sender=who)


def test_a_contract_the_victim_calls_cannot_act_for_the_victim(project, controller, payments, token, make_deal,
                                                               job_creator, deployer):
    """The reference contracts authorised by tx.origin; a phishing contract could
    make a victim agree and move the victim's tokens into escrow."""
    phisher = project.PhishingContract.deploy(sender=deployer)
    deal = make_deal()  # job_creator has approved Payments for everything
    before = token.balanceOf(job_creator)
    data = controller.agree.as_transaction(deal.as_tuple(), sender=job_creator).data
    with ape.reverts(controller.NotADealParty):
        phisher.innocentLooking(controller, data, sender=job_creator)
    pull = payments.escrowJobCreator.as_transaction(deal.deal_id, job_creator, before, sender=job_creator).data
    with ape.reverts(payments.NotController):
        phisher.innocentLooking(payments, pull, sender=job_creator)
    assert token.balanceOf(job_creator) == before


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"pricing": {"results_collateral_multiple": 0}}, "results collateral multiple not in 1..100"),
        ({"pricing": {"results_collateral_multiple": 101}}, "results collateral multiple not in 1..100"),
        ({"pricing": {"instruction_price": 0}}, "zero instruction price"),
        ({"pricing": {"payment_collateral": TOKEN // 2}}, "payment collateral below one instruction"),
        ({"timeouts": {"submit_results": 0}}, "zero timeout"),
        ({"timeouts": {"mediate_results": 31 * 86400}}, "timeout over 30 days"),
        ({"mediators": []}, "need 1 to 16 mediators"),
        ({"mediators": ["0x" + f"{i + 1:040x}" for i in range(17)]}, "need 1 to 16 mediators"),
        ({"mediators": ["0x" + "0" * 40]}, "mediator is zero or a party"),
        ({"pricing": {"payment_collateral": 2**95, "results_collateral_multiple": 4}}, "amounts overflow"),
    ],
)
def test_bad_terms_are_refused(controller, make_deal, job_creator, change, reason):
    deal = make_deal(**change)
    with ape.reverts(controller.InvalidDeal, reason=reason):
        controller.agree(deal.as_tuple(), sender=job_creator)


def test_party_cannot_mediate_or_be_both_sides(controller, make_deal, job_creator, resource_provider):
    with ape.reverts(controller.InvalidDeal, reason="mediator is zero or a party"):
        controller.agree(make_deal(mediators=[resource_provider]).as_tuple(), sender=job_creator)
    with ape.reverts(controller.InvalidDeal, reason="job creator is the resource provider"):
        controller.agree(make_deal(resource_provider=job_creator).as_tuple(), sender=job_creator)


def test_results_must_be_real_and_within_the_payment_collateral(controller, make_deal, agreed,
                                                                resource_provider):
    deal = make_deal()
    agreed(deal)
    with ape.reverts(controller.EmptyResult):
        controller.addResult(deal.as_tuple(), b"\x00" * 32, 1, sender=resource_provider)
    with ape.reverts(controller.EmptyResult):
        controller.addResult(deal.as_tuple(), CID, 0, sender=resource_provider)
    with ape.reverts(controller.JobCostTooHigh):  # 6 instructions x 1 > payment collateral 5
        controller.addResult(deal.as_tuple(), CID, 6, sender=resource_provider)
    controller.addResult(deal.as_tuple(), CID, 5, sender=resource_provider)


def test_agree_without_approval_or_funds_fails_and_leaves_nothing(controller, storage, token, make_deal,
                                                                  accounts):
    broke = accounts[3]  # a mediator account: holds no tokens and approved nothing
    deal = make_deal(job_creator=broke, mediators=[accounts[4]])
    with ape.reverts():
        controller.agree(deal.as_tuple(), sender=broke)
    assert storage.getAgreement(deal.deal_id).state == AgreementState.NONE
