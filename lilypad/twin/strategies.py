"""Agents' strategies as courses of deals, for the fast model.

A :class:`Market` is one parameter set (terms, check rate, protocol settings, panel size, how
many listed mediators collude or are lazy). :func:`simulate` draws one deal's course for a
provider strategy (and the job creator's and mediators' behaviour) and settles it with
:func:`lilypad.twin.model.settle`, returning the profit of the strategy's owner: the
provider's token change less the work it did (``work_share`` of the job cost for an honest
run; nothing for a fake result or no result), plus, for a colluding pair, the colluding
mediator's fees and stake change. Gas is not counted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from enum import Enum

from lilypad.protocol.deal import Verdict
from lilypad.protocol.settings import ProtocolSettings
from lilypad.twin.model import MAX_ROUNDS, DealCourse, Ending, Ledger, Terms, settle

__all__ = ["Market", "Strategy", "simulate"]

LP = 10**18


class Strategy(str, Enum):
    """Whose profit is measured, and how that agent behaves."""

    HONEST = "honest provider"
    FAKE_RESULT = "provider: fake result"
    INFLATE = "provider: inflated instruction count (x2)"
    LAZY = "provider: no result (timeout)"
    COLLUDING_PAIR = "provider + bribed mediator: fake result"
    CHECK_NON_DETERMINISTIC = "job creator: non-deterministic job, then check"
    REFUSE_TO_JUDGE = "job creator: let the judging window run out"
    COLLUDING_CREATOR = "job creator + bribed mediator: reject honest work"
    HONEST_CREATOR = "honest job creator"
    LAZY_MEDIATOR = "mediator: never votes"
    HONEST_MEDIATOR = "honest mediator"


@dataclass(frozen=True)
class Market:
    """One parameter set of the twin."""

    terms: Terms = field(default_factory=lambda: Terms(instruction_price=LP, payment_collateral=2 * LP,
                                                       results_collateral_multiple=2, mediation_fee=LP,
                                                       submit_collateral=1, judge_collateral=1))
    settings: ProtocolSettings = field(default_factory=ProtocolSettings)
    check_rate: float = 0.0
    listed: int = 5  # mediators a deal lists
    stake: int = 100 * LP
    jackpot: int = 100 * LP
    work_share: float = 0.5  # an honest run's cost, as a share of the job cost
    instructions: int = 1

    def with_(self, **changes: object) -> Market:
        return replace(self, **changes)  # type: ignore[arg-type]


def _mediators(market: Market) -> tuple[str, ...]:
    return tuple(f"m{i}" for i in range(market.listed))


def _course(market: Market, rng: random.Random, *, ending: Ending, instructions: int, correct: bool,
            deterministic: bool, colluder_votes: Verdict | None, lazy_member: bool) -> DealCourse:
    """Draw whether the deal is checked or audited, and its panels' votes."""
    if ending in (Ending.AGREE_TIMEOUT, Ending.SUBMIT_TIMEOUT):
        return DealCourse(ending)
    s, terms = market.settings, market.terms
    audited = False
    if ending is not Ending.CHECK:
        audited = s.audit_bps > 0 and market.jackpot >= terms.mediation_fee and rng.random() * 10_000 < s.audit_bps
        if not audited:
            return DealCourse(ending, instructions)
    honest = Verdict.NON_DETERMINISTIC if not deterministic else (Verdict.ACCEPT if correct else Verdict.REJECT)
    listed = list(_mediators(market))
    slashed: set[str] = set()
    rounds = []
    for _ in range(MAX_ROUNDS):
        pool = [m for m in listed if m not in slashed]
        if len(pool) < terms.k:
            break
        members = rng.sample(pool, terms.k)
        votes: list[tuple[str, Verdict | None]] = []
        for m in members:
            if m == "m0" and colluder_votes is not None:
                votes.append((m, colluder_votes))
            elif m == "m0" and lazy_member:
                votes.append((m, None))
            else:
                votes.append((m, honest))
        rounds.append(tuple(votes))
        counts = {v: sum(1 for _, x in votes if x == v) for v in (Verdict.ACCEPT, Verdict.REJECT,
                                                                 Verdict.NON_DETERMINISTIC)}
        majority = next((v for v, n in counts.items() if n * 2 > terms.k), None)
        if majority is not None:
            break
        slashed |= {m for m, v in votes if v is None}
    return DealCourse(ending, instructions, audited=audited, rounds=tuple(rounds))


def simulate(strategy: Strategy, market: Market, rng: random.Random) -> int:
    """One deal: the profit (LP base units) of the agent playing ``strategy``."""
    terms, s = market.terms, market.settings
    n = market.instructions
    job_cost = terms.instruction_price * n
    checked = rng.random() < market.check_rate
    ending = Ending.CHECK if checked else Ending.ACCEPT
    correct, deterministic, colluder, lazy = True, True, None, False
    claimed, work = n, int(market.work_share * job_cost)
    if strategy is Strategy.FAKE_RESULT or strategy is Strategy.COLLUDING_PAIR:
        correct, work = False, 0
        colluder = Verdict.ACCEPT if strategy is Strategy.COLLUDING_PAIR else None
    elif strategy is Strategy.INFLATE:
        correct, claimed = False, 2 * n
        if claimed * terms.instruction_price > terms.payment_collateral:
            claimed = terms.payment_collateral // terms.instruction_price
    elif strategy is Strategy.LAZY:
        ending, work = Ending.SUBMIT_TIMEOUT, 0
    elif strategy is Strategy.CHECK_NON_DETERMINISTIC:
        ending, deterministic = Ending.CHECK, False
    elif strategy is Strategy.REFUSE_TO_JUDGE:
        ending = Ending.JUDGE_TIMEOUT
    elif strategy is Strategy.COLLUDING_CREATOR:
        ending, colluder = Ending.CHECK, Verdict.REJECT
    elif strategy is Strategy.LAZY_MEDIATOR:
        lazy = True
    course = _course(market, rng, ending=ending, instructions=claimed, correct=correct,
                     deterministic=deterministic, colluder_votes=colluder, lazy_member=lazy)
    ledger = Ledger(jackpot=market.jackpot, stakes=dict.fromkeys(_mediators(market), market.stake))
    out = settle(terms, s, course, ledger, _mediators(market))
    if strategy in (Strategy.HONEST, Strategy.FAKE_RESULT, Strategy.INFLATE, Strategy.LAZY):
        profit = out.provider - work
    elif strategy is Strategy.COLLUDING_PAIR:
        profit = out.provider - work + out.mediators["m0"] + out.stakes["m0"]
    elif strategy is Strategy.COLLUDING_CREATOR:
        profit = out.job_creator + out.mediators["m0"] + out.stakes["m0"]
    elif strategy in (Strategy.LAZY_MEDIATOR, Strategy.HONEST_MEDIATOR):
        profit = out.mediators["m0"] + out.stakes["m0"]
    else:  # the job creator's strategies
        profit = out.job_creator
    return profit
