"""The mediator draw and the panel of one (k = 1), with exact amounts.

The draw uses the hash of a block sealed after the check; once a member's call or anyone's
``assignMediator`` fixes it, it never changes. If nobody fixes it within the 256 blocks the EVM
remembers hashes for, nothing is computed from a predictable fallback: the next ``assign`` draws
afresh from a later block. A silent mediator is slashed and replaced by a fresh draw, so the
provider is still paid for honest work. ``k`` must be odd, at most 7 and at most the number of
mediators listed. (A mediator listed twice is refused: tests/contracts/test_mediator_registry.py.)
"""

from __future__ import annotations

import ape
import pytest
from ape.exceptions import ContractLogicError

from mechanisms_support import CID, TOKEN, Settings, tax_split

from lilypad.chain.mediation import Panel
from lilypad.protocol.deal import AgreementState as S
from lilypad.protocol.deal import Verdict

SETTINGS = Settings(tax_bps=250, treasury_share_bps=4_000, min_mediator_stake=10 * TOKEN,
                    mediator_slash=5 * TOKEN + 1)
SLASH = SETTINGS.mediator_slash
FEE, COST = TOKEN, 3 * TOKEN
RC = 2 * COST
JC_ESCROW = 5 * TOKEN + 3 * TOKEN + FEE
FORGET = 300  # blocks: more than the 256 whose hashes the EVM keeps


def _checked(mech, *, k=1, mediators=None):
    mech.settings(**SETTINGS.__dict__)
    deal = mech.deal(k=k, mediators=mediators)
    mech.submit(deal, 3, CID)
    mech.check(deal)
    return deal


def _accepted(members_paid: dict[str, int], dust: int = 0) -> dict[str, int]:
    tax, to_treasury, to_jackpot = tax_split(COST, SETTINGS)
    return {"jc": JC_ESCROW - FEE - COST, "rp": COST - tax + RC, "escrow": -(JC_ESCROW + RC),
            "treasury": to_treasury, "jackpot": to_jackpot + dust, **members_paid}


def test_a_silent_mediator_is_slashed_and_replaced_and_the_provider_is_paid(mech, controller, mediation):
    deal = _checked(mech)
    (silent,) = mech.drawn(deal)
    before = mech.books.snapshot()
    with ape.reverts(controller.TimeoutNotExpired):
        mech.resolve(deal, wait=False)
    receipt = mech.resolve(deal)  # the window has passed without a verdict
    (penalty,) = receipt.events.filter(controller.MediatorPenalised)
    assert (penalty.mediator, penalty.slashed) == (silent.address, SLASH)
    assert [e.round for e in receipt.events.filter(mediation.MediationRequested)] == [2]
    assert mech.state(deal) == S.RESULTS_CHECKED
    (fresh,) = mech.drawn(deal)
    assert fresh != silent  # a slashed mediator is never drawn again for this deal
    for late in (silent, mech.jc, mech.rp):
        with ape.reverts(controller.NotChosenMediator):
            controller.mediationAcceptResult(deal.as_tuple(), sender=late)
    controller.mediationAcceptResult(deal.as_tuple(), sender=fresh)
    assert mech.state(deal) == S.MEDIATION_ACCEPTED
    # the slash went to the jackpot when the round ended without a verdict; the new mediator earns the fee
    expected = _accepted({mech.books.label(fresh): FEE})
    expected["jackpot"] += SLASH
    assert mech.books.delta(before) == {**expected, f"stake {mech.books.label(silent)}": -SLASH}


@pytest.mark.parametrize("k,listed", [(0, 3), (2, 3), (4, 7), (6, 7), (8, 7), (9, 7), (3, 2), (5, 3), (7, 6)])
def test_a_panel_must_be_odd_at_most_seven_and_at_most_the_mediators_listed(mech, controller, job_creator,
                                                                           resource_provider, k, listed):
    mech.settings(**SETTINGS.__dict__)
    deal = mech.deal(mediators=mech.panel[:listed])
    terms = (*deal.as_tuple()[:4], (k, deal.protocol.settings_version))  # the SDK refuses to build these
    before = mech.books.snapshot()
    for party in (job_creator, resource_provider):
        with ape.reverts(controller.InvalidDeal,
                         reason="consortium size not odd, 1..7 and at most the mediators listed"):
            controller.agree(terms, sender=party)
    assert mech.books.delta(before) == {}  # nothing escrowed


@pytest.mark.parametrize("k,listed", [(1, 1), (3, 3), (7, 7)])
def test_a_panel_of_every_listed_mediator_is_accepted(mech, k, listed):
    mech.settings(**SETTINGS.__dict__)
    deal = mech.deal(k=k, mediators=mech.panel[:listed])
    mech.agree(deal)
    assert mech.state(deal) == S.DEAL_AGREED


def test_a_panel_of_one_gives_its_verdict_directly(mech, controller, mediation):
    deal = _checked(mech)
    (member,) = mech.drawn(deal)
    with ape.reverts(controller.WrongConsortium):
        controller.commitVerdict(deal.as_tuple(), b"\1" * 32, sender=member)
    with ape.reverts(controller.WrongConsortium):
        controller.revealVerdict(deal.as_tuple(), 1, CID, b"\1" * 32, sender=member)
    before = mech.books.snapshot()
    receipt = controller.mediationAcceptResult(deal.as_tuple(), sender=member)
    assert [list(e.members) for e in receipt.events.filter(mediation.PanelAssigned)] == [[member.address]]
    assert mech.books.delta(before) == _accepted({mech.books.label(member): FEE})


def test_a_forgotten_draw_is_redrawn_from_a_later_block(mech, controller, mediation, chain, stranger):
    """Nobody fixed the draw within 256 blocks: its mediator is forgotten, not recomputed from a
    fallback anybody could predict. Its verdict is refused; ``assignMediator`` draws anew from the
    block that includes it (unknown when sent), and waiting again only repeats that."""
    deal = _checked(mech)
    (forgotten,) = mech.drawn(deal)
    chain.mine(FORGET)
    with ape.reverts(mediation.DrawExpired):
        mech.drawn(deal)
    with ape.reverts(controller.DrawNotFixed):  # its verdict would need the draw fixed: it is not
        controller.mediationAcceptResult(deal.as_tuple(), sender=forgotten)
    draws = []
    for _ in range(10):  # until the fresh draw differs (each draw is one of seven)
        receipt = controller.assignMediator(deal.as_tuple(), sender=stranger)
        (redrawn,) = receipt.events.filter(mediation.PanelRedrawn)
        assert (redrawn.round, redrawn.drawBlock) == (1, receipt.block_number)
        assert not receipt.events.filter(mediation.PanelAssigned)
        assert mech.panel_of(deal)[0].drawBlock == receipt.block_number
        (fresh,) = mech.drawn(deal)
        draws.append(fresh)
        if fresh != forgotten:
            break
        chain.mine(FORGET)
    assert fresh != forgotten, draws
    with ape.reverts(controller.NotChosenMediator):
        controller.mediationAcceptResult(deal.as_tuple(), sender=forgotten)
    before = mech.books.snapshot()
    controller.mediationAcceptResult(deal.as_tuple(), sender=fresh)
    assert mech.state(deal) == S.MEDIATION_ACCEPTED
    assert mech.books.delta(before) == _accepted({mech.books.label(fresh): FEE})


@pytest.mark.parametrize("k", [1, 3])
def test_an_assigned_panel_never_changes(mech, controller, mediation, chain, stranger, k):
    deal = _checked(mech, k=k)
    drawn = mech.drawn(deal)
    receipt = controller.assignMediator(deal.as_tuple(), sender=stranger)
    (assigned,) = receipt.events.filter(mediation.PanelAssigned)
    assert list(assigned.members) == [m.address for m in drawn]
    chain.mine(FORGET)  # the draw block's hash is forgotten: the fixed panel stays
    assert mech.drawn(deal) == drawn == mech.panel_of(deal)[1]
    again = controller.assignMediator(deal.as_tuple(), sender=stranger)
    assert not again.events.filter(mediation.PanelRedrawn) and not again.events.filter(mediation.PanelAssigned)
    assert mech.panel_of(deal)[1] == drawn
    if k == 1:
        controller.mediationAcceptResult(deal.as_tuple(), sender=drawn[0])
    else:
        mech.vote(deal, dict.fromkeys(drawn, Verdict.ACCEPT))
        mech.resolve(deal, wait=False)
    assert mech.state(deal) == S.MEDIATION_ACCEPTED


def test_a_silent_mediator_is_slashed_only_if_its_draw_was_fixed_within_256_blocks(mech, controller, mediation,
                                                                                 chain, resource_provider):
    """Documents a limit of the no-fallback rule: a silent mediator whose draw nobody fixed before
    its hash was forgotten cannot be identified, so it is not slashed; the round is spent and
    redrawn. A provider that wants a silent mediator slashed (and its work judged) fixes the draw
    itself with ``assignMediator`` as soon as the check's block is sealed."""
    unfixed = _checked(mech)
    fixed = mech.deal()
    mech.submit(fixed, 3, CID)
    mech.check(fixed)
    (fixed_member,) = mech.drawn(fixed)
    controller.assignMediator(fixed.as_tuple(), sender=resource_provider)
    chain.mine(FORGET)
    before = mech.books.snapshot()
    receipt = mech.resolve(unfixed)
    assert receipt.events.filter(mediation.PanelRedrawn) and not receipt.events.filter(controller.MediatorPenalised)
    assert mech.panel_of(unfixed)[0].round == 2
    assert mech.books.delta(before) == {}
    mech.resolve(fixed, wait=False)
    assert mech.books.delta(before) == {f"stake {mech.books.label(fixed_member)}": -SLASH, "jackpot": SLASH}


def test_an_unbonding_mediator_cannot_freeze_a_checked_deal(mech, controller, mediation, mediator_registry):
    """Liveness: funds in a checked deal must always come out. A deal lists exactly three mediators
    for a panel of three; after the check, before anyone fixes the draw, one of them asks to unbond
    (or is slashed below the minimum on another deal): it no longer counts as staked, so fewer than
    three are eligible. The mediation timeout must still settle the deal (docs: "too few eligible
    mediators: everybody gets back what they escrowed"), not revert for ever."""
    deal = _checked(mech, k=3, mediators=mech.panel[:3])
    before = mech.books.snapshot()
    mediator_registry.requestUnbond(sender=mech.panel[0])
    mech.advance(2 * deal.timeouts.mediate_results)
    controller.assignMediator(deal.as_tuple(), sender=mech.rp)  # nobody can fix a draw of three any more ...
    panel = Panel.from_chain(mediation.getPanel(deal.deal_id))
    assert not panel.assigned and panel.members == ()  # ... the call fixes nothing (and does not revert)
    try:
        mech.resolve(deal, wait=False)
    except ContractLogicError as err:  # ... and then the deal can never end
        pytest.fail(f"the checked deal is frozen with its escrow: timeoutMediateResult reverts ({err})")
    assert mech.state(deal) == S.TIMEOUT_MEDIATE_RESULTS
    delta = mech.books.delta(before)
    assert {k: delta.get(k, 0) for k in ("jc", "rp", "escrow")} == {
        "jc": JC_ESCROW, "rp": RC, "escrow": -(JC_ESCROW + RC)}

