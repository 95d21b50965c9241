"""The fast model: the contracts' money rules as pure Python integer arithmetic.

:func:`settle` computes, for one deal whose course is known (:class:`DealCourse`: how it ended,
whether it was audited, who was drawn in each mediation round and how each member voted), every
party's change of tokens, the mediators' stakes and the pot (jackpot, treasury), with the same
floor divisions as ``LilypadController``. It is trusted only because
``tests/twin/test_parity.py`` checks it against the on-chain engine
(:mod:`lilypad.twin.onchain`), deal for deal, on every path.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from lilypad.protocol.deal import Verdict
from lilypad.protocol.settings import ProtocolSettings

__all__ = ["BPS", "MAX_ROUNDS", "DealCourse", "Ending", "Ledger", "Payoff", "Terms", "settle"]

BPS = 10_000
#: LilypadMediation.MAX_ROUNDS: rounds of mediation before a deal without a majority is refunded.
MAX_ROUNDS = 3


class Ending(str, Enum):
    """How a deal's course ends before any mediation."""

    AGREE_TIMEOUT = "agree_timeout"  # only the job creator agreed; the window passed
    SUBMIT_TIMEOUT = "submit_timeout"  # both agreed, no result in time
    ACCEPT = "accept"  # the job creator accepts the result (an audit may send it to mediation)
    JUDGE_TIMEOUT = "judge_timeout"  # nobody judged in time (an audit may send it to mediation)
    CHECK = "check"  # the job creator pays the fee and sends the result to mediation


@dataclass(frozen=True)
class Terms:
    """A deal's money terms (LP base units) and its panel size."""

    instruction_price: int
    payment_collateral: int
    results_collateral_multiple: int
    mediation_fee: int
    submit_collateral: int
    judge_collateral: int
    k: int = 1


@dataclass(frozen=True)
class DealCourse:
    """What happened to one deal. ``rounds``: for each mediation round, the drawn members in
    draw order with each one's revealed verdict (``None``: it never voted); empty when the
    deal was not mediated. ``audited``: an accept or judge timeout the audit draw sent to
    mediation (the fee then comes from the jackpot)."""

    ending: Ending
    instructions: int = 1
    audited: bool = False
    rounds: tuple[tuple[tuple[str, Verdict | None], ...], ...] = ()

    @property
    def mediated(self) -> bool:
        return self.ending is Ending.CHECK or self.audited


@dataclass
class Ledger:
    """The protocol's state a deal's payoffs depend on: the pot and each mediator's stake
    (and which mediators a deal may list)."""

    jackpot: int = 0
    treasury: int = 0
    stakes: dict[str, int] = field(default_factory=dict)


@dataclass
class Payoff:
    """Token changes of one deal: job creator, provider, each mediator's balance and stake,
    the jackpot and the treasury. They sum to zero (money is conserved)."""

    job_creator: int = 0
    provider: int = 0
    mediators: Counter = field(default_factory=Counter)
    stakes: Counter = field(default_factory=Counter)
    jackpot: int = 0
    treasury: int = 0
    state: str = ""

    def total(self) -> int:
        return (self.job_creator + self.provider + sum(self.mediators.values()) + sum(self.stakes.values())
                + self.jackpot + self.treasury)

    def as_dict(self) -> dict[str, int | str]:
        out: dict[str, int | str] = {"job_creator": self.job_creator, "provider": self.provider,
                                     "jackpot": self.jackpot, "treasury": self.treasury, "state": self.state}
        out.update({f"mediator:{m}": v for m, v in self.mediators.items() if v})
        out.update({f"stake:{m}": v for m, v in self.stakes.items() if v})
        return out


def settle(terms: Terms, settings: ProtocolSettings, course: DealCourse, ledger: Ledger, listed: tuple[str, ...],
           *, tax_exempt: bool = False) -> Payoff:
    """The payoffs of ``course`` under ``terms`` and ``settings``; updates ``ledger`` (pot and
    stakes) as the contracts would. ``listed``: the deal's mediators (who may be drawn)."""
    out = Payoff()
    job_cost = terms.instruction_price * course.instructions
    results_collateral = job_cost * terms.results_collateral_multiple
    if course.ending is Ending.AGREE_TIMEOUT:
        out.state = "TIMEOUT_AGREE"
        return out
    if course.ending is Ending.SUBMIT_TIMEOUT:
        out.job_creator, out.provider = terms.submit_collateral, -terms.submit_collateral
        out.state = "TIMEOUT_SUBMIT_RESULTS"
        return out
    if not course.mediated:
        judge_to_provider = course.ending is Ending.JUDGE_TIMEOUT
        _paid(out, terms, settings, job_cost, judge_to_provider, tax_exempt)
        out.state = "TIMEOUT_JUDGE_RESULTS" if judge_to_provider else "RESULTS_ACCEPTED"
        _apply(ledger, out)
        return out
    return _mediated(out, terms, settings, course, ledger, listed, job_cost, results_collateral, tax_exempt)


def _paid(out: Payoff, terms: Terms, settings: ProtocolSettings, job_cost: int, judge_to_provider: bool,
          tax_exempt: bool) -> None:
    """LilypadController._settlePaid: the provider is paid the job cost less the tax."""
    tax = 0 if tax_exempt else job_cost * settings.tax_bps // BPS
    to_treasury = tax * settings.treasury_share_bps // BPS
    out.treasury += to_treasury
    out.jackpot += tax - to_treasury
    out.job_creator -= job_cost + (terms.judge_collateral if judge_to_provider else 0)
    out.provider += job_cost - tax + (terms.judge_collateral if judge_to_provider else 0)


def _share(out: Payoff, winners: list[str], amount: int, slashed: int) -> None:
    """LilypadController._shareAmongMediators: the winners share ``amount`` and half the
    slashed stakes; the rest and the indivisible remainder go to the jackpot."""
    shared = amount + slashed // 2
    each = shared // len(winners)
    for w in winners:
        out.mediators[w] += each
    out.jackpot += slashed - slashed // 2 + shared - each * len(winners)


def _mediated(out: Payoff, terms: Terms, settings: ProtocolSettings, course: DealCourse, ledger: Ledger,
              listed: tuple[str, ...], job_cost: int, results_collateral: int, tax_exempt: bool) -> Payoff:
    fee = terms.mediation_fee
    if course.audited:  # the fee moves from the jackpot into the deal's escrow
        out.jackpot -= fee
        jackpot_now = ledger.jackpot - fee
    else:
        out.job_creator -= fee
        jackpot_now = ledger.jackpot
    stakes = dict(ledger.stakes)
    slashed_on_deal: set[str] = set()
    for number, members in enumerate(course.rounds, start=1):
        counts = Counter(v for _, v in members if v is not None)
        majority = next((v for v in (Verdict.ACCEPT, Verdict.REJECT, Verdict.NON_DETERMINISTIC)
                         if counts[v] * 2 > terms.k), None)
        winners = [m for m, v in members if v is not None and v == majority]
        offenders = [m for m, v in members if m not in slashed_on_deal and (v is None or majority is not None)
                     and not (v is not None and v == majority)]
        slashed = 0
        for m in offenders:
            slashed_on_deal.add(m)
            taken = min(settings.mediator_slash, stakes.get(m, 0))
            stakes[m] = stakes.get(m, 0) - taken
            out.stakes[m] -= taken
            slashed += taken
        if majority is not None:
            if majority is Verdict.REJECT:
                reward = jackpot_now * settings.reward_bps // BPS
                to_checker = 0 if course.audited else reward // 2
                out.jackpot -= reward
                # its escrow back (the fee excepted) plus the provider's results collateral
                out.job_creator += results_collateral + to_checker
                out.provider -= results_collateral
                _share(out, winners, fee + reward - to_checker, slashed)
                out.state = "MEDIATION_REJECTED"
            else:
                _paid(out, terms, settings, job_cost, majority is Verdict.NON_DETERMINISTIC, tax_exempt)
                _share(out, winners, fee, slashed)
                out.state = "MEDIATION_ACCEPTED" if majority is Verdict.ACCEPT else "MEDIATION_NON_DETERMINISTIC"
            break
        eligible = [m for m in listed if m not in slashed_on_deal
                    and (settings.min_mediator_stake == 0 or stakes.get(m, 0) >= settings.min_mediator_stake)]
        if number < MAX_ROUNDS and len(eligible) >= terms.k:
            out.jackpot += slashed  # a new round; the slashed stakes go to the jackpot
            jackpot_now += slashed
            continue
        # The last round without a majority: everybody gets back what it escrowed.
        if not course.audited:
            out.job_creator += fee
        else:
            out.jackpot += fee
        out.jackpot += slashed
        out.state = "TIMEOUT_MEDIATE_RESULTS"
        break
    else:
        raise ValueError("a mediated course must end in a verdict or a refund within its rounds")
    _apply(ledger, out)
    return out


def _apply(ledger: Ledger, out: Payoff) -> None:
    ledger.jackpot += out.jackpot
    ledger.treasury += out.treasury
    for m, delta in out.stakes.items():
        ledger.stakes[m] = ledger.stakes.get(m, 0) + delta
