"""Value-weighted reputation (issue 17, rule 7: count only what cost something), with exact amounts.

Besides its eight counters, a provider's ``Reputation`` has two values: ``valuePaid``, the job
cost of its deals that settled paying it (accept, judge timeout, a mediation's Accept or
NonDeterministic: exactly the settlements the protocol tax is charged on), and
``valueVerified``, the job cost of its deals whose result a mediation panel accepted (a check
or a random audit). The counters are free to inflate by dealing with oneself; valuePaid costs
the tax on the value claimed, valueVerified also a mediation fee and a panel per deal.
"""

from __future__ import annotations

import pytest
from mechanisms_support import CID, TOKEN, Settings, tax_split

from lilypad.protocol.deal import AgreementState as S
from lilypad.protocol.deal import Verdict as V

COUNTERS = ("dealsAgreed", "resultsSubmitted", "resultsAccepted", "resultsChecked", "mediationsPassed",
            "mediationsFailed", "submitTimeouts", "otherTimeouts")
VALUES = ("valuePaid", "valueVerified")
#: Terms whose job cost is not a round number, so the tax's floor division shows.
ODD = {"instruction_price": TOKEN + 7}
COUNT = 3
COST = COUNT * (TOKEN + 7)
TAX = Settings(tax_bps=250, treasury_share_bps=4_000)


def reputation(storage, provider) -> dict[str, int]:
    r = storage.getReputation(provider)
    return {k: int(getattr(r, k)) for k in COUNTERS + VALUES}


def grown(storage, provider, before: dict[str, int]) -> dict[str, int]:
    """Every reputation field that changed since ``before``, by how much."""
    after = reputation(storage, provider)
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def test_the_reputation_struct_is_the_eight_counters_then_the_two_values(storage):
    (abi,) = storage.getReputation.abis
    (output,) = abi.outputs
    assert [(c.name, c.type) for c in output.components] == [
        *((name, "uint32") for name in COUNTERS), ("valuePaid", "uint128"), ("valueVerified", "uint128")]


PATHS = {  # path: what the provider's reputation gains (valuePaid and valueVerified in units of COST)
    "accept": {"dealsAgreed": 1, "resultsSubmitted": 1, "resultsAccepted": 1, "valuePaid": 1},
    "timeout_judge": {"dealsAgreed": 1, "resultsSubmitted": 1, "otherTimeouts": 1, "valuePaid": 1},
    "mediation_accept": {"dealsAgreed": 1, "resultsSubmitted": 1, "resultsChecked": 1, "mediationsPassed": 1,
                         "valuePaid": 1, "valueVerified": 1},
    "mediation_non_deterministic": {"dealsAgreed": 1, "resultsSubmitted": 1, "resultsChecked": 1,
                                    "mediationsPassed": 1, "valuePaid": 1},
    "mediation_reject": {"dealsAgreed": 1, "resultsSubmitted": 1, "resultsChecked": 1, "mediationsFailed": 1},
    "timeout_agree": {},
    "timeout_submit": {"dealsAgreed": 1, "submitTimeouts": 1},
    "timeout_mediate": {"dealsAgreed": 1, "resultsSubmitted": 1, "resultsChecked": 1, "otherTimeouts": 1},
}


@pytest.mark.parametrize("path", list(PATHS))
def test_value_paid_grows_by_the_job_cost_only_on_paid_settlements(mech, controller, storage, job_creator,
                                                                   resource_provider, stranger, path):
    """valuePaid: + the whole job cost (not net of the tax) on accept, judge timeout and a
    mediation's Accept / NonDeterministic; nothing on reject, refunds or the other timeouts.
    valueVerified: + the job cost on a mediation's Accept only."""
    mech.settings(**TAX.__dict__)
    deal = mech.deal(pricing=ODD, mediators=mech.panel[:1])
    before = reputation(storage, resource_provider)

    def checked() -> None:
        assert grown(storage, resource_provider, before)["resultsChecked"] == 1
        assert reputation(storage, resource_provider)["valuePaid"] == before["valuePaid"]  # nothing paid yet

    mech.settle_along(deal, path, COUNT, after_check=checked)
    assert mech.state(deal).is_terminal
    expected = {k: v * COST if k in VALUES else v for k, v in PATHS[path].items()}
    assert grown(storage, resource_provider, before) == expected


def test_value_paid_adds_up_over_deals_and_leaves_other_providers_alone(mech, controller, storage, job_creator,
                                                                        resource_provider, payee):
    mech.settings(**TAX.__dict__)
    mine = [mech.deal(pricing=ODD),
            mech.deal(pricing={"instruction_price": 2 * TOKEN, "payment_collateral": 9 * TOKEN})]
    before, before_other = reputation(storage, resource_provider), reputation(storage, payee)
    for deal, count in zip(mine, (COUNT, 4), strict=True):
        mech.submit(deal, count)
        controller.acceptResult(deal.as_tuple(), sender=job_creator)
    assert grown(storage, resource_provider, before) == {
        "dealsAgreed": 2, "resultsSubmitted": 2, "resultsAccepted": 2, "valuePaid": COST + 8 * TOKEN}
    assert grown(storage, payee, before_other) == {}  # reputation is the provider's own


def test_a_panel_of_three_accepting_verifies_the_job_cost(mech, controller, storage, resource_provider):
    mech.settings(**Settings(min_mediator_stake=10 * TOKEN).__dict__)
    deal = mech.deal(k=3, pricing=ODD)
    mech.submit(deal, COUNT)
    mech.check(deal)
    before = reputation(storage, resource_provider)
    members = mech.drawn(deal)
    mech.vote(deal, {members[0]: V.ACCEPT, members[1]: V.ACCEPT, members[2]: V.REJECT})
    mech.resolve(deal)
    assert mech.state(deal) == S.MEDIATION_ACCEPTED
    assert grown(storage, resource_provider, before) == {"mediationsPassed": 1, "valuePaid": COST,
                                                         "valueVerified": COST}


def test_an_audited_deal_accepted_by_its_panel_is_verified(mech, controller, storage, job_creator,
                                                           resource_provider):
    """A random audit (tests/contracts/test_audits.py): the job creator accepts, the draw sends the
    deal to mediation at the jackpot's cost; only the panel's Accept pays and verifies it."""
    mech.seed_jackpot(5 * TOKEN)
    mech.settings(**Settings(tax_bps=250, audit_bps=5_000, min_mediator_stake=10 * TOKEN).__dict__)
    deal = mech.submit_drawn(lambda: mech.deal(pricing=ODD), audited=True, count=COUNT)
    before = reputation(storage, resource_provider)
    receipt = controller.acceptResult(deal.as_tuple(), sender=job_creator)
    assert receipt.events.filter(controller.DealAudited) and mech.state(deal) == S.RESULTS_CHECKED
    assert grown(storage, resource_provider, before) == {"resultsChecked": 1}  # accepted, but not paid yet
    mech.chain.mine()
    (mediator,) = mech.drawn(deal)
    controller.mediationAcceptResult(deal.as_tuple(), sender=mediator)
    assert mech.state(deal) == S.MEDIATION_ACCEPTED
    assert grown(storage, resource_provider, before) == {"resultsChecked": 1, "mediationsPassed": 1,
                                                         "valuePaid": COST, "valueVerified": COST}


def _self_deal(mech, controller, puppet, deal, count):
    """The provider deals with itself: ``puppet`` is its own second address as job creator."""
    t = deal.as_tuple()
    controller.agree(t, sender=puppet)
    controller.agree(t, sender=mech.rp)
    controller.addResult(t, CID, count, sender=mech.rp)
    controller.acceptResult(t, sender=puppet)


def test_self_dealing_pays_exactly_the_tax_on_the_value_it_claims(mech, controller, storage, resource_provider,
                                                                  stranger):
    """The attack: a provider accepts its own results N times through a second address (``stranger``,
    its job creator). Its two addresses together lose exactly N x tax, which the jackpot and the
    treasury gain, and its valuePaid grows by exactly N x the job cost; with tiny jobs (tax 0 after
    the floor) its counters grow as much for nothing, and valuePaid by N wei."""
    n = 5
    mech.settings(**TAX.__dict__)
    tax, to_treasury, to_jackpot = tax_split(COST, TAX)
    assert tax == COST * 250 // 10_000 > 0

    deals = [mech.deal(pricing=ODD, job_creator=stranger) for _ in range(n)]
    before, rep = mech.books.snapshot(), reputation(storage, resource_provider)
    for deal in deals:
        _self_deal(mech, controller, stranger, deal, COUNT)
    moved = mech.books.delta(before)
    assert moved == {"stranger": -n * COST, "rp": n * (COST - tax), "jackpot": n * to_jackpot,
                     "treasury": n * to_treasury}
    assert moved["stranger"] + moved["rp"] == -n * tax  # what the attack costs the attacker, in LP
    assert grown(storage, resource_provider, rep) == {
        "dealsAgreed": n, "resultsSubmitted": n, "resultsAccepted": n, "valuePaid": n * COST}

    # Tiny jobs: 1 wei each, taxed 0 after the floor. The counters grow exactly as much, for free.
    tiny = [mech.deal(pricing={"instruction_price": 1, "payment_collateral": 1, "results_collateral_multiple": 1},
                      job_creator=stranger) for _ in range(n)]
    before, rep = mech.books.snapshot(), reputation(storage, resource_provider)
    for deal in tiny:
        _self_deal(mech, controller, stranger, deal, 1)
    moved = mech.books.delta(before)
    assert moved == {"stranger": -n, "rp": n}  # nothing lost: the attacker's LP only moved between its addresses
    assert grown(storage, resource_provider, rep) == {
        "dealsAgreed": n, "resultsSubmitted": n, "resultsAccepted": n, "valuePaid": n}


def test_self_verification_costs_the_tax_plus_the_fee_unless_the_mediators_are_its_own(mech, controller, storage,
                                                                                        resource_provider, stranger):
    """valueVerified through a self-dealt check: the attacker also pays the mediation fee to a
    staked mediator. The panel is drawn from the mediators the deal lists, which both parties
    choose: a self-dealer that lists only a mediator of its own (staked, so its capital is locked
    but not spent) gets the fee back, and pays only the tax (docs/protocol.md, Reputation)."""
    mech.settings(**Settings(tax_bps=250, treasury_share_bps=4_000, min_mediator_stake=10 * TOKEN).__dict__)
    tax, to_treasury, to_jackpot = tax_split(COST, TAX)
    fee = TOKEN
    for own_mediator in (False, True):
        deal = mech.deal(pricing=ODD, job_creator=stranger, mediators=mech.panel[:1] if own_mediator else None)
        t = deal.as_tuple()
        controller.agree(t, sender=stranger)
        controller.agree(t, sender=mech.rp)
        controller.addResult(t, CID, COUNT, sender=mech.rp)
        before, rep = mech.books.snapshot(), reputation(storage, resource_provider)
        controller.checkResult(t, sender=stranger)
        mech.chain.mine()
        (mediator,) = mech.drawn(deal)
        controller.mediationAcceptResult(t, sender=mediator)
        moved = mech.books.delta(before)
        label = mech.books.label(mediator)
        # (the snapshot was taken with both escrows in: the job creator's 5 + 3, the provider's 2 x cost)
        assert moved == {"stranger": 5 * TOKEN + 3 * TOKEN - COST - fee, "rp": COST - tax + 2 * COST, label: fee,
                         "escrow": -(5 * TOKEN + 3 * TOKEN + 2 * COST), "jackpot": to_jackpot,
                         "treasury": to_treasury}
        attacker = moved["stranger"] - (5 * TOKEN + 3 * TOKEN) + moved["rp"] - 2 * COST  # less the escrows back
        assert attacker == -tax - fee
        if own_mediator:  # the fee went to the attacker's own mediator: the net cost is the tax alone
            assert attacker + moved[label] == -tax
        assert grown(storage, resource_provider, rep) == {"resultsChecked": 1, "mediationsPassed": 1,
                                                          "valuePaid": COST, "valueVerified": COST}
