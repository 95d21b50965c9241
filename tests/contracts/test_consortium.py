"""A consortium of k mediators (k = 3, 5, 7) judging a checked result by commit-reveal.

Each drawn member commits keccak256(dealId, round, itself, verdict, resultCid, salt) within the
mediation window, reveals in the next one (early once all have committed), and anyone resolves
the round: the verdict revealed by more than half of the panel settles the deal; silent members
and, with a majority, the minority lose ``mediatorSlash`` of their stake, once per deal (half to
the majority, half and any remainder to the jackpot; all to the jackpot without a majority). A
round without a majority is followed by a fresh draw that excludes the slashed, up to
MAX_ROUNDS = 3; after the last, or when too few eligible mediators are left, everybody gets back
what they escrowed. Every test asserts every holder's change exactly.

What each k guarantees: the deal gets the verdict of the majority of the k members drawn, so a
result is judged correctly exactly when more than k/2 of the drawn members are honest. k = 1
trusts one drawn mediator; k = 3 survives one dishonest member but not two (both shown below);
drawing from n listed mediators of which c collude, the panel is captured with the
hypergeometric chance of drawing more than k/2 colluders (c = 2 of n = 7: 2/7 at k = 1, 1/7 at
k = 3, 0 at k = 5). Slashing makes each capture attempt that loses cost the colluders their
stakes; it cannot help when they win.
"""

from __future__ import annotations

from math import comb

import ape
import pytest

from mechanisms_support import CID, GARBAGE, TOKEN, Settings, commitment, mediator_share, tax_split

from lilypad.protocol.deal import AgreementState as S
from lilypad.protocol.deal import Verdict as V

SETTINGS = Settings(tax_bps=250, treasury_share_bps=4_000, reward_bps=2_000, min_mediator_stake=10 * TOKEN,
                    mediator_slash=5 * TOKEN + 1)  # odd: the majority's half and the jackpot's differ by one
SLASH = SETTINGS.mediator_slash
FEE = TOKEN
COST = 3 * TOKEN  # 3 instructions at 1 LP
RC = 2 * COST  # the provider's results collateral
JC_ESCROW = 5 * TOKEN + 3 * TOKEN + FEE  # payment + judging collateral + the fee of its check


def _checked(mech, *, k=3, cid=CID, mediators=None, seed=0):
    """A deal under SETTINGS with a panel of k, its result (``cid``) checked by the job creator."""
    if seed:
        mech.seed_jackpot(seed)
    mech.settings(**SETTINGS.__dict__)
    deal = mech.deal(k=k, mediators=mediators)
    mech.submit(deal, 3, cid)
    mech.check(deal)
    return deal


def _paid(tax_on=COST):
    """What an accepted deal pays beside the mediators (from a snapshot taken after the check)."""
    tax, to_treasury, to_jackpot = tax_split(tax_on, SETTINGS)
    return {"jc": JC_ESCROW - FEE - COST, "rp": COST - tax + RC, "escrow": -(JC_ESCROW + RC),
            "treasury": to_treasury}, to_jackpot


def test_what_each_panel_size_guarantees_against_two_colluders_of_seven():
    def captured(k, n=7, c=2):
        return sum(comb(c, x) * comb(n - c, k - x) for x in range(k // 2 + 1, k + 1)) / comb(n, k)

    assert (captured(1), captured(3), captured(5)) == (2 / 7, 1 / 7, 0.0)


def test_an_honest_panel_accepts_and_shares_the_fee_equally_the_dust_to_the_jackpot(mech, controller, mediation):
    deal = _checked(mech)
    members = mech.drawn(deal)
    assert len({m.address for m in members}) == 3
    before = mech.books.snapshot()
    salts = {}
    for i, m in enumerate(members):
        salts[m.address], _ = mech.commit(deal, m, V.ACCEPT)
        if i == 0:  # the first commit fixes the panel on-chain
            panel, fixed = mech.panel_of(deal)
            assert panel.assigned and fixed == members
    for m in members:
        with ape.reverts(controller.TimeoutNotExpired):  # not everyone has revealed yet
            mech.resolve(deal, wait=False)
        receipt = mech.reveal(deal, m, V.ACCEPT, salts[m.address])
        (event,) = receipt.events.filter(mediation.VerdictRevealed)
        assert (event.mediator, event.round, event.verdict, bytes(event.resultCid)) == (m.address, 1, V.ACCEPT, CID)
    mech.resolve(deal, wait=False)  # all revealed: no need to wait for the windows
    assert mech.state(deal) == S.MEDIATION_ACCEPTED
    each, dust = mediator_share(FEE, 0, 3)
    assert (each, dust) == (FEE // 3, 1)
    paid, to_jackpot = _paid()
    assert mech.books.delta(before) == {**paid, "jackpot": to_jackpot + dust,
                                        **{mech.books.label(m): each for m in members}}
    for m in members:
        vote = mediation.getVote(deal.deal_id, m)
        assert (vote.verdict, vote.round, vote.slashed) == (V.ACCEPT, 1, False)


def test_two_honest_members_of_three_reject_garbage_and_the_colluder_is_slashed(mech, controller, mediation,
                                                                               mediator_registry):
    deal = _checked(mech, cid=GARBAGE, seed=4 * TOKEN + 1)
    colluder, *honest = mech.drawn(deal)
    before = mech.books.snapshot()
    mech.vote(deal, {colluder: V.ACCEPT, honest[0]: V.REJECT, honest[1]: V.REJECT}, GARBAGE)
    receipt = mech.resolve(deal, wait=False)
    assert mech.state(deal) == S.MEDIATION_REJECTED
    (penalty,) = receipt.events.filter(controller.MediatorPenalised)
    assert (penalty.mediator, penalty.slashed) == (colluder.address, SLASH)
    assert receipt.events.filter(mediator_registry.MediatorSlashed)[0].stakeLeft == 100 * TOKEN - SLASH
    reward = before["jackpot"] * SETTINGS.reward_bps // 10_000
    to_checker = reward // 2
    each, dust = mediator_share(FEE + reward - to_checker, SLASH, 2)
    # the job creator: everything it escrowed but the fee, the provider's results collateral, half the
    # reward; the majority: the fee, the other half of the reward and half the slash
    assert mech.books.delta(before) == {
        "jc": JC_ESCROW - FEE + RC + to_checker, "escrow": -(JC_ESCROW + RC), "jackpot": -reward + dust,
        f"stake {mech.books.label(colluder)}": -SLASH, **{mech.books.label(m): each for m in honest}}
    assert dust == SLASH - SLASH // 2 + (FEE + reward - to_checker + SLASH // 2) % 2
    assert [mediation.getVote(deal.deal_id, m).slashed for m in (colluder, *honest)] == [True, False, False]


def test_two_colluders_of_three_win_k3_is_safe_only_with_an_honest_majority_drawn(mech, controller):
    """Documented limit: two of three drawn members colluding with the provider accept its garbage,
    the provider is paid, and the honest member is slashed as the minority."""
    deal = _checked(mech, cid=GARBAGE)
    *colluders, honest = mech.drawn(deal)
    before = mech.books.snapshot()
    mech.vote(deal, {colluders[0]: V.ACCEPT, colluders[1]: V.ACCEPT, honest: V.REJECT}, GARBAGE)
    mech.resolve(deal, wait=False)
    assert mech.state(deal) == S.MEDIATION_ACCEPTED
    each, dust = mediator_share(FEE, SLASH, 2)
    paid, to_jackpot = _paid()
    assert mech.books.delta(before) == {**paid, "jackpot": to_jackpot + dust,
                                        f"stake {mech.books.label(honest)}": -SLASH,
                                        **{mech.books.label(m): each for m in colluders}}


def test_a_member_that_commits_but_never_reveals_is_slashed(mech, controller):
    deal = _checked(mech)
    silent, *voters = mech.drawn(deal)
    before = mech.books.snapshot()
    mech.vote(deal, {silent: None, voters[0]: V.ACCEPT, voters[1]: V.ACCEPT})
    with ape.reverts(controller.TimeoutNotExpired):  # one member has not revealed: wait for the reveal window
        mech.resolve(deal, wait=False)
    mech.advance(deal.timeouts.mediate_results)
    with ape.reverts(controller.TimeoutNotExpired):  # the commit window is over, the reveal window is not
        mech.resolve(deal, wait=False)
    mech.resolve(deal)
    assert mech.state(deal) == S.MEDIATION_ACCEPTED
    each, dust = mediator_share(FEE, SLASH, 2)
    paid, to_jackpot = _paid()
    assert mech.books.delta(before) == {**paid, "jackpot": to_jackpot + dust,
                                        f"stake {mech.books.label(silent)}": -SLASH,
                                        **{mech.books.label(m): each for m in voters}}


def test_a_copied_commitment_cannot_be_revealed_and_its_copier_is_slashed(mech, controller, mediation):
    """The commitment binds the committer's address: a member that commits another's hash can
    reveal nothing, neither before nor after the original is revealed, and counts as silent."""
    deal = _checked(mech, cid=GARBAGE)
    original, copier, other = mech.drawn(deal)
    salt, h = mech.commit(deal, original, V.REJECT, GARBAGE)
    controller.commitVerdict(deal.as_tuple(), h, sender=copier)
    assert bytes(mediation.getVote(deal.deal_id, copier).commitment) == h
    other_salt, _ = mech.commit(deal, other, V.REJECT, GARBAGE)
    with ape.reverts(mediation.CommitmentMismatch):
        mech.reveal(deal, copier, V.REJECT, salt, GARBAGE)
    mech.reveal(deal, original, V.REJECT, salt, GARBAGE)  # now public: the verdict, the CID and the salt
    for verdict in V.ACCEPT, V.REJECT, V.NON_DETERMINISTIC:
        with ape.reverts(mediation.CommitmentMismatch):
            mech.reveal(deal, copier, verdict, salt, GARBAGE)
    mech.reveal(deal, other, V.REJECT, other_salt, GARBAGE)
    before = mech.books.snapshot()
    mech.resolve(deal)
    assert mech.state(deal) == S.MEDIATION_REJECTED
    each, dust = mediator_share(FEE, SLASH, 2)  # no reward: the jackpot holds only this run's nothing
    assert before["jackpot"] == 0
    assert mech.books.delta(before) == {"jc": JC_ESCROW - FEE + RC, "escrow": -(JC_ESCROW + RC), "jackpot": dust,
                                        f"stake {mech.books.label(copier)}": -SLASH,
                                        **{mech.books.label(m): each for m in (original, other)}}


def test_a_revealed_verdict_cannot_be_adopted_after_the_reveal(mech, controller, mediation):
    """A member that committed its own verdict cannot switch to another's once revealed: only its
    own committed opening reveals."""
    deal = _checked(mech, cid=GARBAGE)
    first, follower, other = mech.drawn(deal)
    salt, _ = mech.commit(deal, first, V.REJECT, GARBAGE)
    follower_salt, _ = mech.commit(deal, follower, V.ACCEPT, GARBAGE)
    other_salt, _ = mech.commit(deal, other, V.REJECT, GARBAGE)
    mech.reveal(deal, first, V.REJECT, salt, GARBAGE)
    for attempt in ((V.REJECT, salt), (V.REJECT, follower_salt)):
        with ape.reverts(mediation.CommitmentMismatch):
            mech.reveal(deal, follower, attempt[0], attempt[1], GARBAGE)
    mech.reveal(deal, follower, V.ACCEPT, follower_salt, GARBAGE)
    with ape.reverts(mediation.AlreadyRevealed):
        mech.reveal(deal, follower, V.ACCEPT, follower_salt, GARBAGE)
    mech.reveal(deal, other, V.REJECT, other_salt, GARBAGE)
    mech.resolve(deal, wait=False)
    assert mech.state(deal) == S.MEDIATION_REJECTED
    assert [mediation.getVote(deal.deal_id, m).slashed for m in (first, follower, other)] == [False, True, False]


def test_the_commit_and_reveal_windows(mech, controller, mediation, job_creator, stranger):
    deal = _checked(mech)
    a, b, c = mech.drawn(deal)
    outsider = next(m for m in mech.panel if m not in (a, b, c))
    t = deal.as_tuple()
    for verdict_call in (controller.mediationAcceptResult, controller.mediationRejectResult,
                         controller.mediationNonDeterministic):
        with ape.reverts(controller.WrongConsortium):  # a panel of 3 votes; nobody gives a direct verdict
            verdict_call(t, sender=a)
    for who in (outsider, job_creator, stranger):
        with ape.reverts(mediation.NotOnPanel):
            controller.commitVerdict(t, commitment(deal.deal_id, 1, who.address, V.ACCEPT, CID, b"\1" * 32),
                                     sender=who)
    salt_a, _ = mech.commit(deal, a, V.ACCEPT)
    with ape.reverts(mediation.AlreadyCommitted):
        mech.commit(deal, a, V.REJECT)
    with ape.reverts(controller.RevealNotOpen):  # b and c have not committed, the commit window is open
        mech.reveal(deal, a, V.ACCEPT, salt_a)
    salt_b, _ = mech.commit(deal, b, V.ACCEPT)
    with ape.reverts(controller.RevealNotOpen):
        mech.reveal(deal, b, V.ACCEPT, salt_b)
    mech.advance(deal.timeouts.mediate_results)  # the commit window ends without c
    with ape.reverts(controller.WindowClosed):
        mech.commit(deal, c, V.ACCEPT)
    with ape.reverts(mediation.InvalidVerdict):
        controller.revealVerdict(t, int(V.NONE), CID, salt_a, sender=a)
    mech.reveal(deal, a, V.ACCEPT, salt_a)  # the reveal window is open
    with ape.reverts(mediation.NotCommitted):
        mech.reveal(deal, c, V.ACCEPT, salt_a)
    mech.advance(deal.timeouts.mediate_results)
    with ape.reverts(controller.WindowClosed):  # and closed one window later
        mech.reveal(deal, b, V.ACCEPT, salt_b)
    before = mech.books.snapshot()
    mech.resolve(deal, wait=False)
    # a's Accept alone is not a majority of 3: b (committed, never revealed) and c (silent) are slashed
    # to the jackpot and a new panel is drawn
    panel, _ = mech.panel_of(deal)
    assert (panel.round, panel.assigned, mech.state(deal)) == (2, False, S.RESULTS_CHECKED)
    assert mech.books.delta(before) == {"jackpot": 2 * SLASH, f"stake {mech.books.label(b)}": -SLASH,
                                        f"stake {mech.books.label(c)}": -SLASH}


def test_rounds_without_a_majority_redraw_without_the_slashed_then_refund(mech, controller, mediation):
    deal = _checked(mech)
    start = mech.books.snapshot()
    slashed: set[str] = set()

    # Round 1: nobody acts. All three slashed, all to the jackpot; a fresh panel is drawn.
    first = mech.drawn(deal)
    receipt = mech.resolve(deal)
    assert [e.round for e in receipt.events.filter(mediation.MediationRequested)] == [2]
    slashed |= {m.address for m in first}

    # Round 2: drawn from the four never slashed; three different verdicts: no majority, nobody slashed.
    second = mech.drawn(deal)
    assert not slashed & {m.address for m in second}
    before = mech.books.snapshot()
    mech.vote(deal, dict(zip(second, (V.ACCEPT, V.REJECT, V.NON_DETERMINISTIC), strict=True)))
    mech.resolve(deal, wait=False)
    assert mech.books.delta(before) == {}
    assert mech.panel_of(deal)[0].round == 3

    # Round 3 (the last): again from the same four; silent. Slashed (never twice), then all refunded.
    third = mech.drawn(deal)
    assert not slashed & {m.address for m in third}
    before = mech.books.snapshot()
    mech.resolve(deal)
    assert mech.state(deal) == S.TIMEOUT_MEDIATE_RESULTS
    assert mech.books.delta(before) == {"jc": JC_ESCROW, "rp": RC, "escrow": -(JC_ESCROW + RC),
                                        "jackpot": 3 * SLASH,
                                        **{f"stake {mech.books.label(m)}": -SLASH for m in third}}
    slashed |= {m.address for m in third}
    total = mech.books.delta(start)
    assert total == {"jc": JC_ESCROW, "rp": RC, "escrow": -(JC_ESCROW + RC), "jackpot": 6 * SLASH,
                     **{f"stake {mech.books.label(m)}": -SLASH for m in mech.panel if m.address in slashed}}
    assert len(slashed) == 6
    assert sum(mediation.getVote(deal.deal_id, m).slashed for m in mech.panel) == 6
    with ape.reverts(controller.WrongState):
        mech.resolve(deal)


def test_too_few_eligible_mediators_left_refunds_at_once(mech, controller):
    deal = _checked(mech, mediators=mech.panel[:5])
    members = mech.drawn(deal)
    before = mech.books.snapshot()
    mech.resolve(deal)  # three silent: slashed; two eligible left for a panel of three
    assert mech.state(deal) == S.TIMEOUT_MEDIATE_RESULTS
    assert mech.panel_of(deal)[0].round == 1
    assert mech.books.delta(before) == {"jc": JC_ESCROW, "rp": RC, "escrow": -(JC_ESCROW + RC),
                                        "jackpot": 3 * SLASH,
                                        **{f"stake {mech.books.label(m)}": -SLASH for m in members}}


@pytest.mark.parametrize("k", [5, 7])
def test_a_larger_panel_settles_non_deterministic_by_majority(mech, controller, k):
    deal = _checked(mech, k=k)
    members = mech.drawn(deal)
    majority, minority, silent = members[:k // 2 + 1], members[k // 2 + 1:-1], members[-1]
    before = mech.books.snapshot()
    mech.vote(deal, {**{m: V.NON_DETERMINISTIC for m in majority}, **{m: V.REJECT for m in minority},
                     silent: None})
    mech.resolve(deal)
    assert mech.state(deal) == S.MEDIATION_NON_DETERMINISTIC
    offenders = [*minority, silent]
    each, dust = mediator_share(FEE, SLASH * len(offenders), len(majority))
    tax, to_treasury, to_jackpot = tax_split(COST, SETTINGS)
    judge = 3 * TOKEN  # the job creator's judging collateral goes to the provider: the job is at fault
    assert mech.books.delta(before) == {
        "jc": JC_ESCROW - FEE - COST - judge, "rp": COST - tax + RC + judge, "escrow": -(JC_ESCROW + RC),
        "treasury": to_treasury, "jackpot": to_jackpot + dust,
        **{mech.books.label(m): each for m in majority},
        **{f"stake {mech.books.label(m)}": -SLASH for m in offenders}}
