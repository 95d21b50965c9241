"""The mediator's panel decisions (pure): lilypad.mediator.panel.next_action."""

from __future__ import annotations

import pytest

from lilypad.mediator.panel import PanelAction, PanelView, chain_verdict, next_action
from lilypad.protocol.deal import Verdict

ME = "0x" + "a" * 40
OTHER = "0x" + "b" * 40
THIRD = "0x" + "c" * 40


def panel(size=3, *, members=(ME, OTHER, THIRD), assigned=True, commits=0, reveals=0, round=1):
    return PanelView(round=round, size=size, commits=commits, reveals=reveals, assigned=assigned, audited=False,
                     members=tuple(members[:size]), draw_block=10)


def act(p, *, judged=True, committed=None, revealed=None, now=100.0, start=50.0, window=100.0):
    return next_action(p, ME, judged=judged, committed_round=committed, revealed_round=revealed, now=now,
                       round_started_at=start, window=window)


def test_unassigned_panel_is_fixed_first():
    assert act(panel(assigned=False, members=())) is PanelAction.ASSIGN


def test_not_on_the_panel():
    assert act(panel(members=(OTHER, THIRD, "0x" + "d" * 40))) is PanelAction.NOT_CHOSEN


def test_member_address_case_does_not_matter():
    assert act(panel(members=(ME.upper().replace("0X", "0x"), OTHER, THIRD))) is not PanelAction.NOT_CHOSEN


def test_judges_before_anything_else():
    assert act(panel(), judged=False) is PanelAction.JUDGE


def test_single_mediator_gives_its_verdict_inside_the_window_only():
    one = panel(size=1)
    assert act(one, now=149.0) is PanelAction.VERDICT
    assert act(one, now=150.0) is PanelAction.WAIT  # window closed: only the round's resolve is left


def test_commit_then_reveal_then_resolve():
    assert act(panel(), now=60.0) is PanelAction.COMMIT
    assert act(panel(), now=150.0) is PanelAction.WAIT  # too late to commit this round
    # committed; reveal waits for the others or for the commit window's end
    assert act(panel(commits=1), committed=1, now=60.0) is PanelAction.WAIT
    assert act(panel(commits=3), committed=1, now=60.0) is PanelAction.REVEAL
    assert act(panel(commits=1), committed=1, now=150.0) is PanelAction.REVEAL
    assert act(panel(commits=1), committed=1, now=250.0) is PanelAction.WAIT  # reveal window closed
    # revealed; resolve once everyone revealed or the reveal window closed
    assert act(panel(commits=3, reveals=2), committed=1, revealed=1, now=160.0) is PanelAction.WAIT
    assert act(panel(commits=3, reveals=3), committed=1, revealed=1, now=60.0) is PanelAction.RESOLVE
    assert act(panel(commits=3, reveals=2), committed=1, revealed=1, now=250.0) is PanelAction.RESOLVE


def test_a_new_round_needs_a_new_commit():
    # committed and revealed in round 1; round 2 drew it again
    assert act(panel(round=2), committed=1, revealed=1, now=60.0) is PanelAction.COMMIT
    assert act(panel(round=2, commits=3), committed=2, revealed=1, now=60.0) is PanelAction.REVEAL


@pytest.mark.parametrize(("text", "verdict"), [("accept", Verdict.ACCEPT), ("reject", Verdict.REJECT),
                                               ("non_deterministic", Verdict.NON_DETERMINISTIC)])
def test_chain_verdicts(text, verdict):
    assert chain_verdict(text) is verdict


def test_unknown_verdict_is_refused():
    with pytest.raises(KeyError):
        chain_verdict("maybe")


def test_commitment_binds_every_field():
    from lilypad.mediator.panel import commitment

    base = dict(deal_id=b"\x01" * 32, round=1, mediator=ME, verdict=Verdict.ACCEPT, result_cid=b"\x02" * 32,
                salt=b"\x03" * 32)
    c = commitment(**base)
    assert len(c) == 32
    for key, other in [("deal_id", b"\x04" * 32), ("round", 2), ("mediator", OTHER), ("verdict", Verdict.REJECT),
                       ("result_cid", b"\x05" * 32), ("salt", b"\x06" * 32)]:
        assert commitment(**{**base, key: other}) != c, key
