"""Random audits paid by the jackpot, with exact amounts.

When a result is accepted, or its judging window times out, the deal is audited if
keccak256(abi.encode(blockhash(resultsBlock), dealId)) % 10000 < auditBps, where resultsBlock
included addResult (so the provider cannot know when it sends its result), or if that hash is
already forgotten (so waiting cannot skip an audit), as long as the jackpot can pay the
mediation fee. An audited deal goes to mediation as if checked, its fee paid by the jackpot;
a reject pays the whole catch reward to the mediators (nobody checked); a refund after the last
round returns the fee to the jackpot.
"""

from __future__ import annotations

import ape

from mechanisms_support import CID, GARBAGE, TOKEN, Settings, mediator_share, tax_split

from lilypad.protocol.deal import AgreementState as S
from lilypad.protocol.deal import Verdict as V

AUDIT = Settings(tax_bps=250, treasury_share_bps=4_000, audit_bps=5_000, reward_bps=2_000,
                 min_mediator_stake=10 * TOKEN, mediator_slash=5 * TOKEN + 1)
SLASH = AUDIT.mediator_slash
FEE, COST, JUDGE = TOKEN, 3 * TOKEN, 3 * TOKEN
RC = 2 * COST
DEPOSIT = 5 * TOKEN + JUDGE  # the job creator's escrow before any check
FORGET = 300  # blocks: more than the 256 whose hashes the EVM keeps


def _audit_on(mech, seed=5 * TOKEN):
    if seed:
        mech.seed_jackpot(seed)
    mech.settings(**AUDIT.__dict__)


def test_the_audit_draw_follows_the_result_blocks_hash_over_a_batch(mech, controller, job_creator):
    """30 deals at 50 %: exactly the deals the rule predicts are audited; their count is that of
    fair coin flips (5..25 fails with probability 6e-5); audited deals cost the jackpot the fee."""
    fee = TOKEN // 10
    _audit_on(mech, seed=4 * TOKEN)  # pays 40 fees
    before = mech.books.snapshot()
    predicted, audited = set(), set()
    for _ in range(30):
        deal = mech.deal(pricing={"mediation_fee": fee})
        receipt = mech.submit(deal, 3, CID)
        if mech.audit_predicted(deal, receipt):
            predicted.add(deal.deal_id)
        accepted = controller.acceptResult(deal.as_tuple(), sender=job_creator)
        events = accepted.events.filter(controller.DealAudited)
        if events:
            assert (bytes(events[0].dealId), events[0].feeFromJackpot) == (deal.deal_id, fee)
            assert mech.state(deal) == S.RESULTS_CHECKED and mech.panel_of(deal)[0].audited
            audited.add(deal.deal_id)
        else:
            assert mech.state(deal) == S.RESULTS_ACCEPTED
    assert audited == predicted
    n = len(audited)
    assert 5 <= n <= 25, n
    tax, to_treasury, to_jackpot = tax_split(COST, AUDIT)
    assert mech.books.delta(before) == {
        "jc": -COST * (30 - n) - DEPOSIT * n, "rp": (COST - tax) * (30 - n) - RC * n,
        "escrow": (DEPOSIT + RC + fee) * n, "jackpot": to_jackpot * (30 - n) - fee * n,
        "treasury": to_treasury * (30 - n)}


def test_an_audited_accept_is_mediated_at_the_jackpots_cost(mech, controller, mediation, job_creator):
    _audit_on(mech)
    deal = mech.submit_drawn(mech.deal, audited=True)
    before = mech.books.snapshot()
    receipt = controller.acceptResult(deal.as_tuple(), sender=job_creator)
    assert mech.state(deal) == S.RESULTS_CHECKED
    (event,) = receipt.events.filter(controller.DealAudited)
    assert event.feeFromJackpot == FEE
    (requested,) = receipt.events.filter(mediation.MediationRequested)
    assert (requested.round, requested.size, requested.audited) == (1, 1, True)
    assert mech.books.delta(before) == {"jackpot": -FEE, "escrow": FEE}  # the fee moved into the deal
    assert mech.payments.getEscrow(deal.deal_id).jobCreator == DEPOSIT + FEE
    mech.chain.mine()
    (mediator,) = mech.drawn(deal)
    controller.mediationAcceptResult(deal.as_tuple(), sender=mediator)
    assert mech.state(deal) == S.MEDIATION_ACCEPTED
    tax, to_treasury, to_jackpot = tax_split(COST, AUDIT)
    # the job creator pays the job cost and no fee; the provider is paid as if accepted
    assert mech.books.delta(before) == {
        "jc": DEPOSIT - COST, "rp": COST - tax + RC, "escrow": -(DEPOSIT + RC), mech.books.label(mediator): FEE,
        "jackpot": -FEE + to_jackpot, "treasury": to_treasury}


def test_an_audit_catches_a_lazy_provider_and_the_reward_goes_to_the_mediator(mech, controller, job_creator):
    """A garbage result (no work done) to a job creator that accepts without checking: audited,
    rejected; the job creator gets everything back plus the provider's results collateral, the
    mediator the fee and the whole catch reward (nobody checked), both paid by the jackpot."""
    _audit_on(mech)
    deal = mech.submit_drawn(mech.deal, audited=True, cid=GARBAGE)
    before = mech.books.snapshot()
    controller.acceptResult(deal.as_tuple(), sender=job_creator)
    mech.chain.mine()
    (mediator,) = mech.drawn(deal)
    controller.mediationRejectResult(deal.as_tuple(), sender=mediator)
    assert mech.state(deal) == S.MEDIATION_REJECTED
    reward = (before["jackpot"] - FEE) * AUDIT.reward_bps // 10_000
    assert reward > 0
    assert mech.books.delta(before) == {
        "jc": DEPOSIT + RC, "escrow": -(DEPOSIT + RC), mech.books.label(mediator): FEE + reward,
        "jackpot": -FEE - reward}


def test_an_audited_panel_of_three_shares_the_whole_reward(mech, controller, job_creator):
    _audit_on(mech)
    deal = mech.submit_drawn(lambda: mech.deal(k=3), audited=True, cid=GARBAGE)
    before = mech.books.snapshot()
    controller.acceptResult(deal.as_tuple(), sender=job_creator)
    members = mech.drawn(deal)
    mech.vote(deal, dict.fromkeys(members, V.REJECT), GARBAGE)
    mech.resolve(deal, wait=False)
    assert mech.state(deal) == S.MEDIATION_REJECTED
    reward = (before["jackpot"] - FEE) * AUDIT.reward_bps // 10_000
    each, dust = mediator_share(FEE + reward, 0, 3)
    assert mech.books.delta(before) == {
        "jc": DEPOSIT + RC, "escrow": -(DEPOSIT + RC), "jackpot": -FEE - reward + dust,
        **{mech.books.label(m): each for m in members}}


def test_a_forgotten_audit_draw_counts_as_audited(mech, controller, chain, job_creator):
    _audit_on(mech)
    for _ in range(3):  # whatever the hash would have drawn
        deal = mech.deal()
        mech.submit(deal, 3, CID)
        chain.mine(FORGET)
        before = mech.books.snapshot()
        receipt = controller.acceptResult(deal.as_tuple(), sender=job_creator)
        assert receipt.events.filter(controller.DealAudited) and mech.state(deal) == S.RESULTS_CHECKED
        assert mech.books.delta(before) == {"jackpot": -FEE, "escrow": FEE}


def test_no_audit_while_the_jackpot_cannot_pay_the_fee(mech, controller, chain, job_creator):
    _audit_on(mech, seed=FEE - 1)
    deal = mech.deal()
    mech.submit(deal, 3, CID)
    chain.mine(FORGET)  # a forgotten draw: audited if the jackpot could pay
    before = mech.books.snapshot()
    receipt = controller.acceptResult(deal.as_tuple(), sender=job_creator)
    assert not receipt.events.filter(controller.DealAudited) and mech.state(deal) == S.RESULTS_ACCEPTED
    tax, to_treasury, to_jackpot = tax_split(COST, AUDIT)
    assert mech.books.delta(before) == {"jc": DEPOSIT - COST, "rp": COST - tax + RC, "escrow": -(DEPOSIT + RC),
                                        "jackpot": to_jackpot, "treasury": to_treasury}
    assert before["jackpot"] == FEE - 1


def test_the_judge_timeout_audits_too(mech, controller, resource_provider):
    """A provider cannot skip its audit by letting the judging window run out: the timeout draws
    the same audit. Audited, the deal is mediated as if checked, so an Accept pays as an accept
    (the job creator's judging collateral is not forfeited to the provider)."""
    _audit_on(mech)
    deal = mech.submit_drawn(mech.deal, audited=True)
    mech.advance(deal.timeouts.judge_results)
    before = mech.books.snapshot()
    receipt = controller.timeoutJudgeResult(deal.as_tuple(), sender=resource_provider)
    assert receipt.events.filter(controller.DealAudited) and mech.state(deal) == S.RESULTS_CHECKED
    assert mech.books.delta(before) == {"jackpot": -FEE, "escrow": FEE}
    mech.chain.mine()
    (mediator,) = mech.drawn(deal)
    controller.mediationAcceptResult(deal.as_tuple(), sender=mediator)
    tax, to_treasury, to_jackpot = tax_split(COST, AUDIT)
    assert mech.books.delta(before) == {
        "jc": DEPOSIT - COST, "rp": COST - tax + RC, "escrow": -(DEPOSIT + RC), mech.books.label(mediator): FEE,
        "jackpot": -FEE + to_jackpot, "treasury": to_treasury}


def test_an_unaudited_judge_timeout_pays_the_judging_collateral(mech, controller, resource_provider):
    _audit_on(mech)
    deal = mech.submit_drawn(mech.deal, audited=False)
    mech.advance(deal.timeouts.judge_results)
    before = mech.books.snapshot()
    controller.timeoutJudgeResult(deal.as_tuple(), sender=resource_provider)
    assert mech.state(deal) == S.TIMEOUT_JUDGE_RESULTS
    tax, to_treasury, to_jackpot = tax_split(COST, AUDIT)
    assert mech.books.delta(before) == {
        "jc": DEPOSIT - COST - JUDGE, "rp": COST - tax + RC + JUDGE, "escrow": -(DEPOSIT + RC),
        "jackpot": to_jackpot, "treasury": to_treasury}


def test_an_audit_refunded_after_the_last_round_returns_its_fee_to_the_jackpot(mech, controller, mediation,
                                                                               job_creator):
    _audit_on(mech)
    deal = mech.submit_drawn(lambda: mech.deal(mediators=mech.panel[:3]), audited=True)
    before = mech.books.snapshot()
    controller.acceptResult(deal.as_tuple(), sender=job_creator)
    silent = []
    for round_ in (1, 2, 3):  # each round's mediator stays silent and is slashed
        assert mech.panel_of(deal)[0].round == round_
        silent += mech.drawn(deal)
        receipt = mech.resolve(deal)
        assert [e.mediator for e in receipt.events.filter(controller.MediatorPenalised)] == [silent[-1].address]
    assert mech.state(deal) == S.TIMEOUT_MEDIATE_RESULTS
    assert len({m.address for m in silent}) == 3
    # the job creator gets exactly its deposit (it paid no fee), the provider its results collateral;
    # the fee went back to the jackpot, which also has the three slashes
    assert mech.books.delta(before) == {
        "jc": DEPOSIT, "rp": RC, "escrow": -(DEPOSIT + RC), "jackpot": 3 * SLASH,
        **{f"stake {mech.books.label(m)}": -SLASH for m in silent}}
    with ape.reverts(controller.WrongState):
        mech.resolve(deal)
