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
from lilypad.twin.model import MAX_ROUNDS, DealCourse, Ending, Ledger, Payoff, Terms, settle

__all__ = ["Behaviour", "Market", "Strategy", "behaviour", "owner_profit", "simulate"]

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
    colluders: int = 1  # listed mediators bribed by (or as lazy as) the strategy's owner: m0, m1, ...

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
    bribed = set(listed[:market.colluders])
    slashed: set[str] = set()
    rounds = []
    for _ in range(MAX_ROUNDS):
        pool = [m for m in listed if m not in slashed]
        if len(pool) < terms.k:
            break
        members = rng.sample(pool, terms.k)
        votes: list[tuple[str, Verdict | None]] = []
        for m in members:
            if m in bribed and colluder_votes is not None:
                votes.append((m, colluder_votes))
            elif m in bribed and lazy_member:
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


@dataclass(frozen=True)
class Behaviour:
    """What the agents do in one deal: how it ends before mediation, the instructions claimed,
    whether the result is right and deterministic, how the bribed mediators vote (``None``:
    as honest ones) or whether they stay silent, and the work the provider did (LP)."""

    ending: Ending
    claimed: int
    correct: bool
    deterministic: bool
    bribed_vote: Verdict | None
    lazy: bool
    work: int

    @property
    def honest_vote(self) -> Verdict:
        """What an honest mediator who re-ran the job says."""
        if not self.deterministic:
            return Verdict.NON_DETERMINISTIC
        return Verdict.ACCEPT if self.correct else Verdict.REJECT


def behaviour(strategy: Strategy, market: Market, rng: random.Random) -> Behaviour:
    """The agents' choices for one deal of ``strategy`` (the job creator checks at the
    market's rate); the chain (or the fast model's draw) decides audits and panels."""
    terms = market.terms
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
    elif strategy is Strategy.REFUSE_TO_JUDGE:  # instead of accepting (it checks as often as an honest one)
        ending = Ending.CHECK if checked else Ending.JUDGE_TIMEOUT
    elif strategy is Strategy.COLLUDING_CREATOR:
        ending, colluder = Ending.CHECK, Verdict.REJECT
    elif strategy is Strategy.LAZY_MEDIATOR:
        lazy = True
    return Behaviour(ending, claimed, correct, deterministic, colluder, lazy, work)


def owner_profit(strategy: Strategy, out: Payoff, work: int, bribed: tuple[str, ...]) -> int:
    """The profit of ``strategy``'s owner from a deal's payoffs: a provider's token change less
    its ``work``; a job creator's token change; plus the ``bribed`` mediators' fees and stake
    changes for a colluding strategy (a mediator strategy: its own)."""
    mediators = sum(out.mediators[m] + out.stakes[m] for m in bribed)
    if strategy in (Strategy.HONEST, Strategy.FAKE_RESULT, Strategy.INFLATE, Strategy.LAZY):
        return out.provider - work
    if strategy is Strategy.COLLUDING_PAIR:
        return out.provider - work + mediators
    if strategy is Strategy.COLLUDING_CREATOR:
        return out.job_creator + mediators
    if strategy in (Strategy.LAZY_MEDIATOR, Strategy.HONEST_MEDIATOR):
        return mediators
    return out.job_creator  # the job creator's strategies


def simulate(strategy: Strategy, market: Market, rng: random.Random) -> int:
    """One deal in the fast model: the profit (LP base units) of the agent playing ``strategy``."""
    b = behaviour(strategy, market, rng)
    course = _course(market, rng, ending=b.ending, instructions=b.claimed, correct=b.correct,
                     deterministic=b.deterministic, colluder_votes=b.bribed_vote, lazy_member=b.lazy)
    ledger = Ledger(jackpot=market.jackpot, stakes=dict.fromkeys(_mediators(market), market.stake))
    out = settle(market.terms, market.settings, course, ledger, _mediators(market))
    return owner_profit(strategy, out, b.work, _mediators(market)[:market.colluders])
