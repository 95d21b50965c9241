"""agreeWithPermit / checkResultWithPermit: a deposit escrowed with an EIP-2612
permit in the same transaction, for exactly the amount, and what a bad or
front-run permit does."""

from __future__ import annotations

import pytest
from ape.exceptions import ContractLogicError

from lilypad.protocol.permit import PermitDomain, sign_permit

TOKEN = 10**18
CID = bytes.fromhex("44" * 32)


@pytest.fixture(scope="session")
def domain(token, chain):
    d = token.eip712Domain()
    return PermitDomain(name=d.name, version=d.version, chain_id=chain.chain_id, verifying_contract=token.address)


@pytest.fixture(scope="session")
def permit_for(token, payments, domain, chain):
    """A permit signed by ``owner`` letting Payments take ``value`` for an hour."""

    def make(owner, value, *, spender=None, nonce=None):
        nonce = token.nonces(owner) if nonce is None else nonce
        deadline = chain.pending_timestamp + 3600
        return sign_permit(owner, domain, spender or payments.address, value, nonce, deadline)

    return make


def _args(p):
    return p.value, p.deadline, p.v, p.r, p.s


def test_agree_with_permit_escrows_exactly_and_leaves_no_allowance(controller, token, payments, make_deal,
                                                                   payee, resource_provider, permit_for):
    deal = make_deal(job_creator=payee)
    deposit = deal.job_creator_deposit
    assert token.allowance(payee, payments) == 0
    before = token.balanceOf(payee)
    receipt = controller.agreeWithPermit(deal.as_tuple(), *_args(permit_for(payee, deposit)), sender=payee)
    assert token.balanceOf(payee) == before - deposit
    assert payments.getEscrow(deal.deal_id).jobCreator == deposit
    assert token.allowance(payee, payments) == 0  # spent at once: nothing left for later
    assert token.nonces(payee) == 1
    assert controller.getDealId(deal.as_tuple()) == deal.deal_id
    assert len(receipt.events.filter(controller.DealAgreed)) == 1
    # The other side agrees the ordinary way: the deal is agreed.
    controller.agree(deal.as_tuple(), sender=resource_provider)
    assert controller.getDealId(deal.as_tuple()) == deal.deal_id


def test_a_front_run_permit_does_not_block_the_agreement(controller, token, payments, make_deal, payee,
                                                         stranger, permit_for):
    deal = make_deal(job_creator=payee)
    permit = permit_for(payee, deal.job_creator_deposit)
    # Someone copies the permit from the mempool onto the token first.
    token.permit(payee, payments, *_args(permit), sender=stranger)
    controller.agreeWithPermit(deal.as_tuple(), *_args(permit), sender=payee)
    assert payments.getEscrow(deal.deal_id).jobCreator == deal.job_creator_deposit


@pytest.mark.parametrize("flaw", ["too_little", "other_signer", "other_spender", "wrong_nonce"])
def test_a_bad_permit_reverts_with_nothing_escrowed(controller, token, payments, storage, make_deal, payee,
                                                    stranger, permit_for, flaw):
    deal = make_deal(job_creator=payee)
    deposit = deal.job_creator_deposit
    if flaw == "too_little":
        permit = permit_for(payee, deposit - 1)
    elif flaw == "other_signer":
        permit = permit_for(stranger, deposit)
    elif flaw == "other_spender":
        permit = permit_for(payee, deposit, spender=controller.address)
    else:
        permit = permit_for(payee, deposit, nonce=token.nonces(payee) + 1)
    before = token.balanceOf(payee)
    with pytest.raises(ContractLogicError) as caught:
        controller.agreeWithPermit(deal.as_tuple(), *_args(permit), sender=payee)
    assert type(caught.value).__name__ == "ERC20InsufficientAllowance"
    assert storage.getAgreement(deal.deal_id).state == 0
    assert payments.getEscrow(deal.deal_id).jobCreator == 0
    assert token.balanceOf(payee) == before


def test_check_result_with_permit_escrows_the_mediation_fee(controller, token, payments, make_deal, payee,
                                                            resource_provider, permit_for):
    deal = make_deal(job_creator=payee)
    controller.agreeWithPermit(deal.as_tuple(), *_args(permit_for(payee, deal.job_creator_deposit)), sender=payee)
    controller.agree(deal.as_tuple(), sender=resource_provider)
    controller.addResult(deal.as_tuple(), CID, 2, sender=resource_provider)
    escrowed = payments.getEscrow(deal.deal_id).jobCreator
    fee = deal.pricing.mediation_fee
    controller.checkResultWithPermit(deal.as_tuple(), *_args(permit_for(payee, fee)), sender=payee)
    assert payments.getEscrow(deal.deal_id).jobCreator == escrowed + fee
    assert token.allowance(payee, payments) == 0


def test_permit_costs_less_than_an_approval_transaction(controller, token, payments, make_deal, payee,
                                                        permit_for):
    """Gas is deterministic: agreeWithPermit against approve + agree for the same
    first agreement of a deal, once the job creator has used the protocol before
    (its permit nonce and allowance slots exist, as for every job but its first)."""

    def with_permit():
        deal = make_deal(job_creator=payee)
        return controller.agreeWithPermit(deal.as_tuple(), *_args(permit_for(payee, deal.job_creator_deposit)),
                                          sender=payee).gas_used

    def plain():
        deal = make_deal(job_creator=payee)
        return (token.approve(payments, deal.job_creator_deposit, sender=payee).gas_used
                + controller.agree(deal.as_tuple(), sender=payee).gas_used)

    first_permit, first_plain = with_permit(), plain()
    gas_permit, gas_plain = with_permit(), plain()
    print(f"\nfirst agreement of a deal, first job: approve + agree {first_plain:,} gas, agreeWithPermit "
          f"{first_permit:,}; later jobs: approve + agree {gas_plain:,}, agreeWithPermit {gas_permit:,}")
    assert gas_permit < gas_plain
