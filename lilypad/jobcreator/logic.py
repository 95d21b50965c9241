"""The job creator's decisions, as pure functions (no chain, no HTTP, no clock).

A run of ``lilypad run`` goes through these :class:`Stage`\\ s::

    offer posted -> matched -> agreed -> running -> results submitted
        -> downloading -> (accepted | checked) -> done | failed

:func:`stage_of` derives the stage from what the solver says about the job
offer (its ``state`` and ``deal_id``) and what the chain says about the deal
(:class:`~lilypad.protocol.deal.AgreementState` and whether the job creator
agreed). :class:`StageTracker` turns successive observations into one progress
line per change.

The other rules:

* :func:`deal_problems` - whether the deal the solver built is the one the job
  offer asked for (never agree to anything else);
* :func:`should_mediate` - ``--mediate`` always, ``--mediation-chance N`` with
  probability N % drawn with :mod:`secrets`;
* :func:`judge` - accept the result, or send it to mediation (and why);
* :func:`interrupt_plan` - what Ctrl-C does at each stage: cancel the offer
  while it is unmatched, otherwise leave the deal to its on-chain timeouts and
  say what they do with the money;
* :func:`outcome_of` - what a terminal on-chain state means for the job creator.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lilypad.protocol.deal import AgreementState, Deal
from lilypad.protocol.offers import JobOffer

__all__ = [
    "InterruptPlan",
    "Outcome",
    "Stage",
    "StageTracker",
    "Verdict",
    "deal_problems",
    "format_tokens",
    "interrupt_plan",
    "judge",
    "overbilling",
    "outcome_of",
    "should_mediate",
    "stage_of",
]


class Stage(str, enum.Enum):
    """Where a run is."""

    PREPARING = "preparing"
    OFFER_POSTED = "offer posted"
    MATCHED = "matched"
    AGREED = "agreed"
    RUNNING = "running"
    RESULTS_SUBMITTED = "results submitted"
    DOWNLOADING = "downloading"
    CHECKED = "checked"
    ACCEPTED = "accepted"
    DONE = "done"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (Stage.DONE, Stage.FAILED)


_ORDER = list(Stage)

#: On-chain states in which the job creator's job is over with a result it paid
#: for (a non-deterministic job's result is one of its possible outputs: the
#: provider's work was not wrong, so the run ends with it).
_SUCCESS = frozenset({AgreementState.RESULTS_ACCEPTED, AgreementState.MEDIATION_ACCEPTED,
                      AgreementState.MEDIATION_NON_DETERMINISTIC})


def stage_of(
    offer_state: str | None,
    deal_id: str | None,
    chain_state: AgreementState | None = None,
    *,
    job_creator_agreed: bool = False,
    downloading: bool = False,
) -> Stage:
    """The stage of a run from the solver's view of the job offer
    (``offer_state``: ``open``, ``matched``, ``expired``, ``cancelled``; its
    ``deal_id``) and the chain's view of the deal (``chain_state``,
    ``job_creator_agreed``). ``downloading`` is the run's own flag while it
    fetches a submitted result."""
    if chain_state is not None and chain_state != AgreementState.NONE:
        if chain_state in _SUCCESS:
            return Stage.DONE
        if chain_state.is_terminal:
            return Stage.FAILED
        if chain_state == AgreementState.RESULTS_CHECKED:
            return Stage.CHECKED
        if chain_state == AgreementState.RESULTS_SUBMITTED:
            return Stage.DOWNLOADING if downloading else Stage.RESULTS_SUBMITTED
        if chain_state == AgreementState.DEAL_AGREED:
            return Stage.RUNNING
        # DEAL_NEGOTIATING: one side agreed
        return Stage.AGREED if job_creator_agreed else Stage.MATCHED
    if deal_id:
        return Stage.MATCHED
    if offer_state is None:
        return Stage.PREPARING
    if offer_state == "open":
        return Stage.OFFER_POSTED
    if offer_state == "matched":
        return Stage.MATCHED
    return Stage.FAILED  # expired, cancelled


class StageTracker:
    """Remembers the last stage and says when it changed (for progress lines)."""

    def __init__(self) -> None:
        self.stage = Stage.PREPARING
        self.history: list[Stage] = [Stage.PREPARING]

    def update(self, stage: Stage) -> bool:
        """Record ``stage``; True when it differs from the last one."""
        if stage == self.stage:
            return False
        self.stage = stage
        self.history.append(stage)
        return True


# --------------------------------------------------------------------------
# The deal the solver proposes
# --------------------------------------------------------------------------


def deal_problems(deal: Deal, offer: JobOffer, *, deal_id: str | None = None,
                  provider: str | None = None) -> list[str]:
    """What is wrong with ``deal`` as the deal for ``offer`` (empty: agree to it).

    The solver cannot forge offers, but it builds the deal: its job creator
    and solver must be the offer's, its mediators ones the offer trusts, its
    prices within the offer's limits, its timeouts and mediator panel size
    the offer's, its provider
    the offer's target (if any), and ``deal_id`` (the solver's claim) its id.
    ``provider``, when given, is the provider of the resource offer matched.
    """
    problems: list[str] = []
    m = deal.members
    if m.job_creator.lower() != offer.job_creator.lower():
        problems.append(f"job creator {m.job_creator} is not {offer.job_creator}")
    if m.solver.lower() != offer.solver.lower():
        problems.append(f"solver {m.solver} is not {offer.solver}")
    if m.resource_provider.lower() in (offer.job_creator.lower(), offer.solver.lower()):
        problems.append("the resource provider is the job creator or the solver")
    if offer.target is not None and m.resource_provider.lower() != offer.target.lower():
        problems.append(f"resource provider {m.resource_provider} is not the target {offer.target}")
    if provider is not None and m.resource_provider.lower() != provider.lower():
        problems.append(f"resource provider {m.resource_provider} is not the matched offer's {provider}")
    trusted = {a.lower() for a in offer.mediators}
    if not m.mediators:
        problems.append("the deal has no mediator")
    untrusted = [a for a in m.mediators if a.lower() not in trusted]
    if untrusted:
        problems.append(f"mediators not trusted by the offer: {', '.join(untrusted)}")
    parties = {m.job_creator.lower(), m.resource_provider.lower()}
    if any(a.lower() in parties for a in m.mediators):
        problems.append("a party of the deal is also its mediator")
    if len({a.lower() for a in m.mediators}) != len(m.mediators):
        problems.append("a mediator is listed twice (it would weight the draw)")
    p, limit = deal.pricing, offer.pricing
    if p.instruction_price > limit.instruction_price:
        problems.append(f"instruction price {p.instruction_price} is over the limit {limit.instruction_price}")
    if p.payment_collateral > limit.payment_collateral:
        problems.append(f"payment collateral {p.payment_collateral} is over the limit {limit.payment_collateral}")
    if p.mediation_fee > limit.mediation_fee:
        problems.append(f"mediation fee {p.mediation_fee} is over the limit {limit.mediation_fee}")
    if p.results_collateral_multiple < limit.results_collateral_multiple:
        problems.append(
            f"results-collateral multiple {p.results_collateral_multiple} is below {limit.results_collateral_multiple}"
        )
    if deal.timeouts != offer.timeouts:
        problems.append("the deal's timeouts are not the offer's")
    if deal.protocol.consortium_size != offer.consortium_size:
        problems.append(f"the deal's mediator panel of {deal.protocol.consortium_size} is not the offer's "
                        f"{offer.consortium_size}")
    if deal_id is not None and deal_id.lower() != "0x" + deal.deal_id.hex():
        problems.append(f"the deal id {deal_id} is not the id of its terms (0x{deal.deal_id.hex()})")
    return problems


# --------------------------------------------------------------------------
# Judging results
# --------------------------------------------------------------------------


def should_mediate(always: bool, chance_percent: int, *, draw: Callable[[int], int] = secrets.randbelow) -> bool:
    """Whether to send a good result to mediation anyway: always with
    ``--mediate``, otherwise with probability ``chance_percent`` % (0..100),
    drawn with ``draw(100)`` (default :func:`secrets.randbelow`)."""
    if not 0 <= chance_percent <= 100:
        raise ValueError("the mediation chance is a percentage, 0 to 100")
    if always or chance_percent >= 100:
        return True
    if chance_percent <= 0:
        return False
    return draw(100) < chance_percent


@dataclass(frozen=True)
class Verdict:
    """``accept`` the result, or send it to mediation; ``reason`` for the user."""

    accept: bool
    reason: str


def overbilling(claimed: int, metering: Any) -> str | None:
    """Why ``claimed`` instructions are more than the module's ``verification.metering``
    (a :class:`~lilypad.verification.MeteringSpec`) says is due, as far as a job
    creator can tell without re-running the job: a fixed count per job (unit
    ``job``) is known in advance; a measured one (unit ``second``) only the
    mediator's own runs can bound. ``None``: not known to be overbilled."""
    if metering is not None and metering.unit == "job" and claimed > metering.instructions:
        return (f"the provider claims {claimed} instructions, the module is metered at "
                f"{metering.instructions} per job")
    return None


def judge(verified: bool, problem: str | None, *, mediate: bool, overbilled: str | None = None) -> Verdict:
    """Accept only a result whose download matched the CID recorded on-chain
    (``verified``), whose instruction count is not known to be inflated
    (``overbilled``, from :func:`overbilling`) and that is not picked for
    mediation; otherwise check it. ``problem`` says why verification failed."""
    if not verified:
        why = problem or "the result could not be verified"
        return Verdict(False, f"not accepting: {why}; asking a mediator to check the result")
    if overbilled:
        return Verdict(False, f"not accepting: {overbilled}; asking a mediator to check the result")
    if mediate:
        return Verdict(False, "the result matches the on-chain CID; sending it to mediation as asked")
    return Verdict(True, "the result matches the CID recorded on-chain; accepting it")


# --------------------------------------------------------------------------
# Ctrl-C
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class InterruptPlan:
    """What to do when the user interrupts: ``cancel_offer`` or leave things
    as they are; ``message`` tells the user what happens next."""

    cancel_offer: bool
    message: str


def format_tokens(amount: int, decimals: int = 18) -> str:
    """``amount`` base units as LP, without trailing zeros (``1500000000000000000`` -> ``1.5 LP``)."""
    whole, frac = divmod(int(amount), 10**decimals)
    text = str(whole) if not frac else f"{whole}.{str(frac).rjust(decimals, '0').rstrip('0')}"
    return f"{text} LP"


def interrupt_plan(stage: Stage, *, deal: Deal | None = None, deal_id: str | None = None,
                   timeout_at: int | None = None) -> InterruptPlan:
    """What Ctrl-C at ``stage`` does. Before a match the offer is cancelled;
    once matched nothing can be cancelled and the deal runs to its on-chain
    end: ``timeout_at`` is when the current state's timeout may be called."""
    when = f" (from block time {timeout_at})" if timeout_at else ""
    did = deal_id or "the deal"
    status = f" Follow it with `lilypad status {did}`." if deal_id else ""
    if stage in (Stage.PREPARING,):
        return InterruptPlan(False, "nothing was posted or escrowed.")
    if stage == Stage.OFFER_POSTED:
        return InterruptPlan(True, "cancelling the unmatched job offer; nothing was escrowed.")
    if stage == Stage.MATCHED:
        return InterruptPlan(
            False,
            f"{did} is matched but you have not agreed to it, so nothing of yours is escrowed; "
            f"it ends by the agree timeout{when}.{status}",
        )
    deposit = f" ({format_tokens(deal.job_creator_deposit)})" if deal is not None else ""
    if stage in (Stage.AGREED, Stage.RUNNING):
        return InterruptPlan(
            False,
            f"{did} stays on-chain: your deposit{deposit} is escrowed until the provider submits "
            f"results, or the on-chain timeout{when} refunds it (anyone may call it).{status} "
            f"Once results are in, `lilypad fetch {did}` downloads and verifies them.",
        )
    if stage in (Stage.RESULTS_SUBMITTED, Stage.DOWNLOADING, Stage.ACCEPTED):
        return InterruptPlan(
            False,
            f"results for {did} are submitted but not judged; if nobody accepts or checks them before "
            f"the judge-results timeout{when}, the provider may end the deal and is paid from your "
            f"deposit{deposit}. `lilypad fetch {did}` downloads and verifies them.{status}",
        )
    if stage == Stage.CHECKED:
        return InterruptPlan(
            False,
            f"{did} is with a mediator; the verdict (or the mediation timeout{when}) settles it "
            f"without you.{status}",
        )
    return InterruptPlan(False, f"{did} is already finished.{status}")


# --------------------------------------------------------------------------
# Endings
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """A terminal deal as the job creator sees it."""

    success: bool
    message: str


_OUTCOMES = {
    AgreementState.RESULTS_ACCEPTED: Outcome(True, "result accepted; the provider was paid"),
    AgreementState.MEDIATION_ACCEPTED: Outcome(True, "the mediator found the result correct; the provider was paid"),
    AgreementState.MEDIATION_REJECTED: Outcome(
        False, "the mediator rejected the result; your collateral was refunded and the provider's stake slashed"
    ),
    AgreementState.MEDIATION_NON_DETERMINISTIC: Outcome(
        True,
        "the mediator found the job non-deterministic (its own runs disagreed), which is the job's fault, not "
        "the provider's: the provider was paid, your mediation fee went to the mediator and your judging "
        "collateral to the provider; the result you have is one of the job's possible outputs",
    ),
    AgreementState.TIMEOUT_AGREE: Outcome(False, "the deal timed out before both sides agreed; deposits refunded"),
    AgreementState.TIMEOUT_SUBMIT_RESULTS: Outcome(
        False, "the provider did not submit results in time; your deposit was refunded"
    ),
    AgreementState.TIMEOUT_JUDGE_RESULTS: Outcome(
        False, "the results were not judged in time; the provider was paid from the judging collateral"
    ),
    AgreementState.TIMEOUT_MEDIATE_RESULTS: Outcome(
        False, "the mediator did not decide in time; deposits were refunded"
    ),
}


def outcome_of(state: AgreementState) -> Outcome | None:
    """What a terminal ``state`` means for the job creator; ``None`` while open."""
    return _OUTCOMES.get(state)
