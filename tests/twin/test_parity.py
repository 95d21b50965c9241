"""The fast model equals the contracts, deal for deal (issue 18, rule 2).

Two private chains (panels of one and of three mediators) with every mechanism on: tax with a
treasury share, random audits paid by the jackpot, catch rewards, staked mediators slashed for
silence or for voting with the minority. A seeded list of plans (every ending; honest,
dissenting and silent votes over up to three rounds) is played on each chain by
:class:`lilypad.twin.onchain.OnChainTwin`; for each deal, :func:`lilypad.twin.model.settle`
is given only what the chain decided (whether the accept was audited, who was drawn, the
votes) and must give exactly the measured token changes of every party, and the same pot
and stakes afterwards.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from lilypad.protocol.deal import Verdict
from lilypad.protocol.settings import ProtocolSettings
from lilypad.twin.model import Ending, Ledger, Terms, settle
from lilypad.twin.onchain import OnChainTwin, Plan, random_plans

LP = 10**18
SETTINGS = ProtocolSettings(tax_bps=500, treasury_share_bps=2_000, audit_bps=3_000, reward_bps=1_000,
                            min_mediator_stake=25 * LP, mediator_slash=7 * LP + 1)
#: Odd amounts, so every floor division of the contracts has a remainder to get right.
TERMS = Terms(instruction_price=LP + 7, payment_collateral=5 * LP + 3, results_collateral_multiple=3,
              mediation_fee=LP + 1, submit_collateral=2 * LP + 1, judge_collateral=LP // 3)
DEALS = 150


def _fixed_plans(k: int) -> list[Plan]:
    """Every path at least once, whatever the random plans draw."""
    A, R, N = Verdict.ACCEPT, Verdict.REJECT, Verdict.NON_DETERMINISTIC
    one = [(A,), (R,), (N,)]
    plans = [Plan(Ending.AGREE_TIMEOUT), Plan(Ending.SUBMIT_TIMEOUT), Plan(Ending.ACCEPT, 3),
             Plan(Ending.JUDGE_TIMEOUT, 2)]
    if k == 1:
        plans += [Plan(Ending.CHECK, 2, (v,)) for v in one]
        plans += [Plan(Ending.CHECK, 1, ((None,), (R,))), Plan(Ending.CHECK, 4, ((None,), (None,), (None,)))]
    else:
        plans += [Plan(Ending.CHECK, 2, ((A, A, A),)), Plan(Ending.CHECK, 2, ((R, R, A),)),
                  Plan(Ending.CHECK, 3, ((N, None, N),)), Plan(Ending.CHECK, 1, ((A, R, N), (R, R, None))),
                  Plan(Ending.CHECK, 1, ((None, None, None), (A, R, None), (A, N, R)))]
    return plans


@pytest.mark.parametrize("k", [1, 3])
def test_the_fast_model_pays_what_the_contracts_pay(k: int, tmp_path) -> None:
    rng = random.Random(1_800 + k)
    terms = replace(TERMS, k=k)
    seen: Counter = Counter()
    with OnChainTwin(SETTINGS, terms, root=tmp_path, stake=900 * LP) as twin:
        start = twin.snapshot()
        ledger = Ledger(jackpot=start["jackpot"], treasury=start["treasury"], stakes=twin.stakes(start))
        for n, plan in enumerate(_fixed_plans(k) + random_plans(terms, rng, DEALS)):
            listed = twin.listable()
            course, measured = twin.play(plan)
            modelled = settle(terms, SETTINGS, course, ledger, listed)
            assert modelled.as_dict() == measured.as_dict(), f"deal {n}: {plan} -> {course}"
            assert measured.total() == 0  # nothing created or lost
            after = twin.snapshot()  # read afresh: not the snapshot play() measured with
            assert (ledger.jackpot, ledger.treasury, ledger.stakes) == (after["jackpot"], after["treasury"],
                                                                         twin.stakes(after)), f"deal {n}"
            seen[measured.state] += 1
            seen["audited"] += course.audited
            seen["rounds>1"] += len(course.rounds) > 1
            seen["slashed"] += bool(measured.stakes)
    # The comparison covered every way a deal ends, audits, later rounds and slashing.
    assert set(seen) >= {"TIMEOUT_AGREE", "TIMEOUT_SUBMIT_RESULTS", "RESULTS_ACCEPTED", "TIMEOUT_JUDGE_RESULTS",
                         "MEDIATION_ACCEPTED", "MEDIATION_REJECTED", "MEDIATION_NON_DETERMINISTIC",
                         "TIMEOUT_MEDIATE_RESULTS"}, seen
    assert seen["audited"] and seen["rounds>1"] and seen["slashed"], seen


def test_agents_drive_the_contracts_and_a_lone_bribed_mediator_is_outvoted(tmp_path) -> None:
    """The on-chain engine played by a strategy's agents (votes by who is drawn, not by
    position): a job creator that checks every result and has bribed one of five listed
    mediators to reject honest work, against a panel of three. The bribed member is always
    outvoted: each deal costs the pair the slash whenever it is drawn, and nothing else differs
    from an honest job creator; every deal settles as the fast model says."""
    from lilypad.twin.onchain import play_strategy
    from lilypad.twin.strategies import Market, Strategy

    terms = replace(TERMS, k=3)
    market = Market(terms=terms, settings=SETTINGS, check_rate=1.0, colluders=1)
    with OnChainTwin(SETTINGS, terms, root=tmp_path, stake=900 * LP) as twin:
        played = play_strategy(twin, Strategy.COLLUDING_CREATOR, Strategy.HONEST_CREATOR, market, 6, seed=3)
        bribed = twin.mediators[0]
        stake_after = twin.stakes(twin.snapshot())[bribed]
    assert played.mismatches == ()
    assert played.mean <= 0  # never more than an honest job creator: every deal costs it the same or a slash
    # top_up() restores stakes before each deal, so the last deal's slash (if drawn) shows here.
    assert stake_after in (900 * LP, 900 * LP - SETTINGS.mediator_slash)
