"""Every path a deal can take, with exact balances and reputation."""

from __future__ import annotations

import ape
import pytest

from lilypad.chain.mediation import Panel, Vote
from lilypad.protocol.deal import AgreementState

TOKEN = 10**18
CID = bytes.fromhex("11" * 32)


def state(storage, deal):
    return AgreementState(storage.getAgreement(deal.deal_id).state)


def reputation(storage, provider) -> dict:
    r = storage.getReputation(provider)
    return {k: int(getattr(r, k)) for k in (
        "dealsAgreed", "resultsSubmitted", "resultsAccepted", "resultsChecked",
        "mediationsPassed", "mediationsFailed", "submitTimeouts", "otherTimeouts", "valuePaid", "valueVerified",
    )}


def test_deal_id_matches_python(controller, make_deal):
    deal = make_deal()
    assert bytes(controller.getDealId(deal.as_tuple())) == deal.deal_id


def test_happy_path_pays_exactly(controller, storage, payments, token, make_deal, agreed,
                                 job_creator, resource_provider, balances):
    deal = make_deal()
    jc0, rp0 = balances(job_creator, resource_provider)
    agreed(deal)
    assert state(storage, deal) == AgreementState.DEAL_AGREED
    # job creator: payment collateral 5 + judge collateral 3; provider: submit collateral 2
    assert balances(job_creator, resource_provider) == [jc0 - 8 * TOKEN, rp0 - 2 * TOKEN]
    assert token.balanceOf(payments) == 10 * TOKEN

    receipt = controller.addResult(deal.as_tuple(), CID, 2, sender=resource_provider)
    assert state(storage, deal) == AgreementState.RESULTS_SUBMITTED
    # results collateral = 2 x (1 x 2 instructions) = 4: 2 more than the submit collateral
    assert balances(resource_provider) == [rp0 - 4 * TOKEN]
    result = storage.getResult(deal.deal_id)
    assert bytes(result.dataCid) == CID and result.instructionCount == 2
    assert receipt.events.filter(controller.ResultAdded)[0].dataCid == CID

    controller.acceptResult(deal.as_tuple(), sender=job_creator)
    assert state(storage, deal) == AgreementState.RESULTS_ACCEPTED
    # provider earns the job cost (2); job creator pays exactly that
    assert balances(job_creator, resource_provider) == [jc0 - 2 * TOKEN, rp0 + 2 * TOKEN]
    assert token.balanceOf(payments) == 0
    escrow = payments.getEscrow(deal.deal_id)
    # settled: nothing held; the account records what the job creator got back (5 + 3 - 2)
    assert escrow.settled and escrow.jobCreator == 6 * TOKEN and escrow.resourceProvider == 0
    assert reputation(storage, resource_provider) == {
        "dealsAgreed": 1, "resultsSubmitted": 1, "resultsAccepted": 1, "resultsChecked": 0,
        "mediationsPassed": 0, "mediationsFailed": 0, "submitTimeouts": 0, "otherTimeouts": 0,
        "valuePaid": 2 * TOKEN, "valueVerified": 0,  # paid the job cost; no panel verified it
    }


def panel_of(mediation, deal) -> Panel:
    return Panel.from_chain(mediation.getPanel(deal.deal_id))


def drawn(mediation, deal) -> list[str]:
    """The current round's panel as the draw gives it (no minimum stake: version 0)."""
    return list(mediation.drawPanel(deal.deal_id, list(deal.members.mediators), 0))


def _check(controller, mediation, chain, deal, job_creator, resource_provider, agreed):
    agreed(deal)
    controller.addResult(deal.as_tuple(), CID, 3, sender=resource_provider)
    controller.checkResult(deal.as_tuple(), sender=job_creator)
    chain.mine()  # seal the block that included checkResult: the draw uses its hash
    (chosen,) = drawn(mediation, deal)
    others = [m for m in deal.members.mediators if m != chosen]
    return chosen, others


def test_check_then_mediation_accept(controller, storage, mediation, payments, token, chain, make_deal,
                                     agreed, job_creator, resource_provider, signer, balances):
    deal = make_deal()
    jc0, rp0 = balances(job_creator, resource_provider)
    chosen, others = _check(controller, mediation, chain, deal, job_creator, resource_provider, agreed)
    assert state(storage, deal) == AgreementState.RESULTS_CHECKED
    med0 = token.balanceOf(chosen)
    for other in others:  # only the drawn mediator may judge
        with ape.reverts(controller.NotChosenMediator):
            controller.mediationAcceptResult(deal.as_tuple(), sender=signer(other))
    with ape.reverts(controller.NotChosenMediator):
        controller.mediationAcceptResult(deal.as_tuple(), sender=job_creator)
    controller.mediationAcceptResult(deal.as_tuple(), sender=signer(chosen))
    assert state(storage, deal) == AgreementState.MEDIATION_ACCEPTED
    # job cost 3 to the provider; the job creator also paid the mediation fee (1)
    assert balances(job_creator, resource_provider) == [jc0 - 4 * TOKEN, rp0 + 3 * TOKEN]
    assert token.balanceOf(chosen) == med0 + TOKEN
    assert token.balanceOf(payments) == 0
    panel = panel_of(mediation, deal)
    assert panel.assigned and panel.members == (chosen,) and (panel.round, panel.size) == (1, 1)
    rep = reputation(storage, resource_provider)
    assert rep["resultsChecked"] == 1 and rep["mediationsPassed"] == 1 and rep["resultsAccepted"] == 0
    assert rep["valuePaid"] == rep["valueVerified"] == 3 * TOKEN  # paid, and verified by the mediator


def test_check_then_mediation_reject_slashes_provider(controller, storage, mediation, payments, token, chain,
                                                      make_deal, agreed, job_creator, resource_provider,
                                                      signer, balances):
    deal = make_deal()
    jc0, rp0 = balances(job_creator, resource_provider)
    chosen, _ = _check(controller, mediation, chain, deal, job_creator, resource_provider, agreed)
    med0 = token.balanceOf(chosen)
    controller.mediationRejectResult(deal.as_tuple(), sender=signer(chosen))
    assert state(storage, deal) == AgreementState.MEDIATION_REJECTED
    # provider loses its results collateral (2 x 3 = 6) to the job creator, which
    # paid only the mediation fee
    assert balances(job_creator, resource_provider) == [jc0 + 6 * TOKEN - TOKEN, rp0 - 6 * TOKEN]
    assert token.balanceOf(chosen) == med0 + TOKEN
    assert token.balanceOf(payments) == 0
    rep = reputation(storage, resource_provider)
    assert rep["mediationsFailed"] == 1 and rep["valuePaid"] == rep["valueVerified"] == 0


def test_check_then_mediation_non_deterministic_pays_the_provider(controller, storage, mediation, payments, token,
                                                                  chain, make_deal, agreed, job_creator,
                                                                  resource_provider, stranger, signer, balances):
    deal = make_deal()
    jc0, rp0 = balances(job_creator, resource_provider)
    chosen, others = _check(controller, mediation, chain, deal, job_creator, resource_provider, agreed)
    med0, pay0 = token.balanceOf(chosen), token.balanceOf(payments)
    # escrowed: job creator 5 + 3 + fee 1, provider its results collateral 2 x 3 = 6
    assert pay0 == 15 * TOKEN
    for who in (*(signer(o) for o in others), job_creator, resource_provider, stranger):
        with ape.reverts(controller.NotChosenMediator):  # only the drawn mediator may judge
            controller.mediationNonDeterministic(deal.as_tuple(), sender=who)
    receipt = controller.mediationNonDeterministic(deal.as_tuple(), sender=signer(chosen))
    assert state(storage, deal) == AgreementState.MEDIATION_NON_DETERMINISTIC
    # job creator: gets back 5 - 3 of its 9, so pays the job cost 3, the fee 1 and its judging collateral 3;
    # provider: job cost 3 + its collateral 6 + the judging collateral 3 for its 6, so earns 3 + 3
    assert balances(job_creator, resource_provider) == [jc0 - 7 * TOKEN, rp0 + 6 * TOKEN]
    assert token.balanceOf(chosen) == med0 + TOKEN
    assert token.balanceOf(payments) == pay0 - 15 * TOKEN == 0
    escrow = payments.getEscrow(deal.deal_id)
    assert escrow.settled and escrow.jobCreator == 2 * TOKEN and escrow.resourceProvider == 0  # paid back: 2
    (settled,) = receipt.events.filter(payments.Settled)
    assert (settled.dealId, settled.toJobCreator, settled.toResourceProvider, list(settled.mediators),
            settled.toEachMediator) == (deal.deal_id, 2 * TOKEN, 12 * TOKEN, [chosen], TOKEN)
    (changed,) = receipt.events.filter(storage.AgreementStateChanged)
    assert AgreementState(changed.state) == AgreementState.MEDIATION_NON_DETERMINISTIC
    assert reputation(storage, resource_provider) == {  # the provider's work was not wrong
        "dealsAgreed": 1, "resultsSubmitted": 1, "resultsAccepted": 0, "resultsChecked": 1,
        "mediationsPassed": 1, "mediationsFailed": 0, "submitTimeouts": 0, "otherTimeouts": 0,
        "valuePaid": 3 * TOKEN, "valueVerified": 0,  # paid, but the mediator did not accept the result
    }
    # terminal: no second verdict of any kind, and no timeout once the window has passed
    for verdict in (controller.mediationNonDeterministic, controller.mediationAcceptResult,
                    controller.mediationRejectResult):
        with ape.reverts(controller.WrongState):
            verdict(deal.as_tuple(), sender=signer(chosen))
    chain.mine(timestamp=chain.pending_timestamp + deal.timeouts.mediate_results)
    with ape.reverts(controller.WrongState):
        controller.timeoutMediateResult(deal.as_tuple(), sender=stranger)
    assert balances(job_creator, resource_provider) == [jc0 - 7 * TOKEN, rp0 + 6 * TOKEN]


def test_mediation_non_deterministic_only_inside_the_mediation_window(controller, storage, mediation, token,
                                                                      payments, chain, make_deal, agreed,
                                                                      job_creator, resource_provider, stranger,
                                                                      advance, signer, balances,
                                                                      time_out_mediation):
    deal = make_deal()
    jc0, rp0 = balances(job_creator, resource_provider)
    chosen, _ = _check(controller, mediation, chain, deal, job_creator, resource_provider, agreed)
    advance(400)  # the 400 s mediation window has closed
    with ape.reverts(controller.WindowClosed):
        controller.mediationNonDeterministic(deal.as_tuple(), sender=signer(chosen))
    # Each silent round is timed out and redrawn among the others; after the last, everyone is refunded.
    assert time_out_mediation(deal, stranger) == 3
    assert state(storage, deal) == AgreementState.TIMEOUT_MEDIATE_RESULTS
    assert balances(job_creator, resource_provider) == [jc0, rp0]
    assert token.balanceOf(payments) == 0


def test_mediation_non_deterministic_needs_a_checked_result(controller, storage, make_deal, agreed, job_creator,
                                                            resource_provider, mediators):
    deal = make_deal()
    anyone = mediators[0]
    expected = {  # each state before ResultsChecked is refused, whoever calls
        AgreementState.NONE: lambda: None,
        AgreementState.DEAL_NEGOTIATING: lambda: controller.agree(deal.as_tuple(), sender=job_creator),
        AgreementState.DEAL_AGREED: lambda: controller.agree(deal.as_tuple(), sender=resource_provider),
        AgreementState.RESULTS_SUBMITTED: lambda: controller.addResult(deal.as_tuple(), CID, 1,
                                                                       sender=resource_provider),
    }
    for reached, step in expected.items():
        step()
        assert state(storage, deal) == reached
        for who in (anyone, job_creator):
            with ape.reverts(controller.WrongState):
                controller.mediationNonDeterministic(deal.as_tuple(), sender=who)


def test_assign_mediator_by_anyone_fixes_the_draw(controller, mediation, chain, make_deal, agreed,
                                                  job_creator, resource_provider, stranger):
    deal = make_deal()
    chosen, _ = _check(controller, mediation, chain, deal, job_creator, resource_provider, agreed)
    receipt = controller.assignMediator(deal.as_tuple(), sender=stranger)
    (assigned,) = receipt.events.filter(mediation.PanelAssigned)
    assert (assigned.round, list(assigned.members)) == (1, [chosen])
    chain.mine(300)  # the check block's hash is gone from the EVM; the assignment stays
    assert drawn(mediation, deal) == [chosen]
    assert panel_of(mediation, deal).members == (chosen,)


def test_mediator_draw_uses_the_check_block_hash(controller, mediation, chain, make_deal, agreed,
                                                 job_creator, resource_provider):
    """A panel of one: position keccak256(abi.encode(hash, dealId, round 1, 0)) % n of the list."""
    from eth_abi import encode
    from eth_utils import keccak

    deal = make_deal()
    chosen, _ = _check(controller, mediation, chain, deal, job_creator, resource_provider, agreed)
    block_hash = bytes(chain.blocks[panel_of(mediation, deal).draw_block].hash)
    word = keccak(encode(["bytes32", "bytes32", "uint8", "uint256"], [block_hash, deal.deal_id, 1, 0]))
    assert deal.members.mediators[int.from_bytes(word, "big") % len(deal.members.mediators)] == chosen


def test_mediator_draw_is_not_fixed_before_check_block_is_sealed(controller, mediation, make_deal, agreed,
                                                                 job_creator, resource_provider):
    deal = make_deal()
    with ape.reverts(mediation.MediationNotRequested):
        mediation.drawPanel(deal.deal_id, list(deal.members.mediators), 0)



# ---------------------------------------------------------------- timeouts


def test_timeout_agree_refunds_only_what_that_deal_escrowed(controller, storage, payments, token, make_deal,
                                                             agreed, job_creator, resource_provider, stranger,
                                                             advance, balances):
    other = make_deal()
    agreed(other)  # another open deal whose escrow must stay untouched
    deal = make_deal(timeouts={"submit_results_collateral": 7 * TOKEN})
    jc0 = token.balanceOf(job_creator)
    controller.agree(deal.as_tuple(), sender=job_creator)
    with ape.reverts(controller.TimeoutNotExpired):
        controller.timeoutAgree(deal.as_tuple(), sender=stranger)
    advance(100)
    with ape.reverts(controller.WindowClosed):  # too late to agree now
        controller.agree(deal.as_tuple(), sender=resource_provider)
    controller.timeoutAgree(deal.as_tuple(), sender=stranger)
    assert state(storage, deal) == AgreementState.TIMEOUT_AGREE
    assert token.balanceOf(job_creator) == jc0
    assert token.balanceOf(payments) == 10 * TOKEN  # exactly the other deal's escrow
    esc = payments.getEscrow(other.deal_id)
    assert esc.jobCreator == 8 * TOKEN and esc.resourceProvider == 2 * TOKEN


def test_timeout_agree_when_only_provider_agreed(controller, storage, token, make_deal, resource_provider,
                                                 stranger, advance):
    deal = make_deal()
    rp0 = token.balanceOf(resource_provider)
    controller.agree(deal.as_tuple(), sender=resource_provider)
    advance(100)
    controller.timeoutAgree(deal.as_tuple(), sender=stranger)
    assert token.balanceOf(resource_provider) == rp0
    assert reputation(storage, resource_provider)["otherTimeouts"] == 0  # not the provider's fault


def test_timeout_submit_result_slashes_provider(controller, storage, payments, token, make_deal, agreed,
                                                job_creator, resource_provider, stranger, advance, balances):
    deal = make_deal()
    jc0, rp0 = balances(job_creator, resource_provider)
    agreed(deal)
    advance(190)  # the 200 s window is still open (10 s of slack: anvil's clock follows the wall clock)
    with ape.reverts(controller.TimeoutNotExpired):
        controller.timeoutSubmitResult(deal.as_tuple(), sender=stranger)
    advance(10)
    with ape.reverts(controller.WindowClosed):
        controller.addResult(deal.as_tuple(), CID, 1, sender=resource_provider)
    controller.timeoutSubmitResult(deal.as_tuple(), sender=stranger)
    assert state(storage, deal) == AgreementState.TIMEOUT_SUBMIT_RESULTS
    assert balances(job_creator, resource_provider) == [jc0 + 2 * TOKEN, rp0 - 2 * TOKEN]
    assert token.balanceOf(payments) == 0
    rep = reputation(storage, resource_provider)
    assert rep["submitTimeouts"] == 1 and rep["valuePaid"] == 0


def test_timeout_judge_result_pays_provider_and_slashes_job_creator(controller, storage, payments, token,
                                                                    make_deal, agreed, job_creator,
                                                                    resource_provider, stranger, advance,
                                                                    balances):
    deal = make_deal()
    jc0, rp0 = balances(job_creator, resource_provider)
    agreed(deal)
    controller.addResult(deal.as_tuple(), CID, 2, sender=resource_provider)
    advance(300)
    with ape.reverts(controller.WindowClosed):
        controller.acceptResult(deal.as_tuple(), sender=job_creator)
    with ape.reverts(controller.WindowClosed):
        controller.checkResult(deal.as_tuple(), sender=job_creator)
    controller.timeoutJudgeResult(deal.as_tuple(), sender=stranger)
    assert state(storage, deal) == AgreementState.TIMEOUT_JUDGE_RESULTS
    # job cost 2 plus the job creator's judging collateral 3
    assert balances(job_creator, resource_provider) == [jc0 - 5 * TOKEN, rp0 + 5 * TOKEN]
    assert token.balanceOf(payments) == 0
    rep = reputation(storage, resource_provider)
    assert rep["otherTimeouts"] == 1 and (rep["valuePaid"], rep["valueVerified"]) == (2 * TOKEN, 0)


def test_timeout_mediate_result_refunds_everyone_on_the_mediation_clock(controller, storage, mediation, payments,
                                                                        token, chain, make_deal, agreed,
                                                                        job_creator, resource_provider, stranger,
                                                                        advance, signer, balances,
                                                                        time_out_mediation):
    deal = make_deal()
    jc0, rp0 = balances(job_creator, resource_provider)
    agreed(deal)
    controller.addResult(deal.as_tuple(), CID, 2, sender=resource_provider)
    advance(290)  # check late in the judging window
    controller.checkResult(deal.as_tuple(), sender=job_creator)
    chain.mine()
    (chosen,) = drawn(mediation, deal)
    advance(350)  # judging window long over, but the mediation window (400 s from the check) is open
    with ape.reverts(controller.TimeoutNotExpired):
        controller.timeoutMediateResult(deal.as_tuple(), sender=stranger)
    advance(50)
    with ape.reverts(controller.WindowClosed):
        controller.mediationAcceptResult(deal.as_tuple(), sender=signer(chosen))
    # The silent mediator's round ends; a new round (400 s from now) draws among the other two.
    receipt = controller.timeoutMediateResult(deal.as_tuple(), sender=stranger)
    assert state(storage, deal) == AgreementState.RESULTS_CHECKED
    assert panel_of(mediation, deal).round == 2
    assert Vote.from_chain(mediation.getVote(deal.deal_id, chosen)).slashed
    assert storage.getAgreement(deal.deal_id).mediationRequestedAt == chain.blocks[receipt.block_number].timestamp
    assert time_out_mediation(deal, stranger) == 2
    assert state(storage, deal) == AgreementState.TIMEOUT_MEDIATE_RESULTS
    assert balances(job_creator, resource_provider) == [jc0, rp0]
    assert token.balanceOf(payments) == 0


@pytest.mark.parametrize("finish", ["accept", "timeout_judge"])
def test_a_settled_deal_never_settles_again(controller, make_deal, agreed, job_creator, resource_provider,
                                            stranger, advance, finish):
    deal = make_deal()
    agreed(deal)
    controller.addResult(deal.as_tuple(), CID, 1, sender=resource_provider)
    if finish == "accept":
        controller.acceptResult(deal.as_tuple(), sender=job_creator)
    else:
        advance(300)
        controller.timeoutJudgeResult(deal.as_tuple(), sender=stranger)
    advance(10_000)
    for call, who in [
        (controller.acceptResult, job_creator),
        (controller.checkResult, job_creator),
        (controller.timeoutJudgeResult, stranger),
        (controller.timeoutSubmitResult, stranger),
        (controller.timeoutAgree, stranger),
        (controller.timeoutMediateResult, stranger),
        (controller.mediationNonDeterministic, stranger),
        (controller.agree, job_creator),
    ]:
        with ape.reverts(controller.WrongState):
            call(deal.as_tuple(), sender=who)
