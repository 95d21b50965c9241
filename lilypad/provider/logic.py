"""What a resource provider does next with a deal: pure decisions, no I/O.

:func:`decide` takes a :class:`DealSnapshot` (the deal's terms, its on-chain
state and agreement times, the job's module reference), the provider's
:class:`LocalJob` (what it has done so far, as persisted) and its
:class:`OfferTerms`, plus the current time, and returns a :class:`Decision`:

* ``AGREE``     - a new deal that matches our offer and runs an allowed module;
* ``REFUSE``    - a deal we will not take (the reason says why); never agreed;
* ``RUN``       - the deal is agreed and there is no result yet;
* ``UPLOAD``    - there is a result, not yet uploaded to the solver;
* ``ADD_RESULT``- the result is uploaded, post its CID on-chain;
* ``WAIT``      - nothing to do now (running, or the other side's move);
* ``TIMEOUT``   - a window has passed: call ``Decision.timeout`` (e.g.
  ``timeoutJudgeResult``: the job creator never judged; that pays us);
* ``DONE``      - the deal is over (terminal on-chain).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from lilypad.protocol.deal import TIMEOUT_FOR_STATE, AgreementState, Deal, DealPricing, DealTimeouts

__all__ = [
    "Action",
    "Decision",
    "DealSnapshot",
    "JobStatus",
    "LocalJob",
    "OfferTerms",
    "claimable_instructions",
    "decide",
    "refusal_reason",
    "timeout_window",
]


class Action(str, enum.Enum):
    AGREE = "agree"
    REFUSE = "refuse"
    RUN = "run"
    UPLOAD = "upload"
    ADD_RESULT = "add_result"
    WAIT = "wait"
    TIMEOUT = "timeout"
    DONE = "done"


class JobStatus(str, enum.Enum):
    """The provider's own progress with a deal (persisted)."""

    NEW = "new"  # seen, nothing done
    REFUSED = "refused"  # will never agree
    AGREED = "agreed"  # agree() sent
    RUNNING = "running"  # the module is running (not running after a restart: run again)
    RAN = "ran"  # result directory and CID on disk
    UPLOADED = "uploaded"  # the solver holds the result
    SUBMITTED = "submitted"  # addResult sent
    GAVE_UP = "gave_up"  # the run failed max_run_attempts times: left to the on-chain timeout
    DONE = "done"  # terminal on-chain


@dataclass(frozen=True)
class LocalJob:
    status: JobStatus = JobStatus.NEW
    result_cid: str | None = None
    result_dir: str | None = None
    running: bool = False  # a worker is running it in this process now
    instructions: int = 1  # the run's metered instruction count (what addResult claims)


def claimable_instructions(metered: int, deal: Deal) -> int:
    """What ``addResult`` may claim for a run metered at ``metered`` instructions:
    at least 1, and no more than the deal's payment collateral pays for (the
    controller refuses a job cost above it; the rest of the work goes unpaid)."""
    cap = deal.pricing.payment_collateral // max(1, deal.pricing.instruction_price)
    return max(1, min(int(metered), cap))


@dataclass(frozen=True)
class DealSnapshot:
    """One deal as the provider sees it now. Times are Unix seconds (0: not yet)."""

    deal: Deal
    state: AgreementState
    module_ref: str | None = None
    resource_provider_agreed: bool = False
    created_at: int = 0
    agreed_at: int = 0
    results_submitted_at: int = 0
    mediation_requested_at: int = 0


@dataclass(frozen=True)
class OfferTerms:
    """What the provider offered: the deals it takes."""

    address: str
    solver: str
    pricing: DealPricing
    timeouts: DealTimeouts
    mediators: frozenset[str]
    modules: tuple[str, ...] = ()  # empty: any module
    min_consortium_size: int = 1

    @classmethod
    def build(cls, address: str, solver: str, pricing: DealPricing, timeouts: DealTimeouts,
              mediators: Iterable[str], modules: Iterable[str] = (), min_consortium_size: int = 1) -> OfferTerms:
        return cls(address.lower(), solver.lower(), pricing, timeouts,
                   frozenset(m.lower() for m in mediators), tuple(modules), min_consortium_size)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""
    timeout: str | None = None  # the controller function for Action.TIMEOUT
    extra: dict[str, str] = field(default_factory=dict)


def refusal_reason(snapshot: DealSnapshot, terms: OfferTerms) -> str | None:
    """Why we would not agree to this deal (``None``: it matches our offer)."""
    from lilypad.protocol.allowlist import module_allowed
    from lilypad.protocol.offers import timeouts_acceptable

    deal = snapshot.deal
    m = deal.members
    if m.resource_provider.lower() != terms.address:
        return "we are not the deal's resource provider"
    if m.solver.lower() != terms.solver:
        return f"the deal names solver {m.solver}, not ours"
    if deal.pricing != terms.pricing:
        return "the deal's pricing is not our offer's"
    if not m.mediators:
        return "the deal has no mediators"
    untrusted = [x for x in m.mediators if x.lower() not in terms.mediators]
    if untrusted:
        return f"untrusted mediators {', '.join(untrusted)}"
    if not timeouts_acceptable(deal.timeouts, terms.timeouts):
        return "the deal's timeouts are outside what we accept"
    if deal.protocol.consortium_size < terms.min_consortium_size:
        return (f"the deal's mediator panel of {deal.protocol.consortium_size} is below our minimum of "
                f"{terms.min_consortium_size}")
    if snapshot.module_ref is None:
        return "the deal's module is unknown"
    if terms.modules and not module_allowed(terms.modules, snapshot.module_ref):
        return f"module {snapshot.module_ref!r} is not in our allowlist"
    return None


def timeout_window(snapshot: DealSnapshot) -> tuple[int, int] | None:
    """``(start, window)`` of the current state's timeout (``None``: none)."""
    t = snapshot.deal.timeouts
    return {
        AgreementState.DEAL_NEGOTIATING: (snapshot.created_at, t.agree),
        AgreementState.DEAL_AGREED: (snapshot.agreed_at, t.submit_results),
        AgreementState.RESULTS_SUBMITTED: (snapshot.results_submitted_at, t.judge_results),
        AgreementState.RESULTS_CHECKED: (snapshot.mediation_requested_at, snapshot.deal.mediation_round_window),
    }.get(snapshot.state)


def _expired(snapshot: DealSnapshot, now: float) -> bool:
    window = timeout_window(snapshot)
    if window is None or not window[0]:
        return False
    start, length = window
    return now > start + length


def decide(snapshot: DealSnapshot, local: LocalJob, terms: OfferTerms, now: float) -> Decision:
    """The provider's next step with one deal (see the module docstring)."""
    state = snapshot.state
    if state.is_terminal:
        return Decision(Action.DONE, f"on-chain state {state.name}")
    if local.status == JobStatus.REFUSED:
        return Decision(Action.WAIT, "refused earlier")

    if state in (AgreementState.NONE, AgreementState.DEAL_NEGOTIATING):
        if snapshot.resource_provider_agreed:
            if state == AgreementState.DEAL_NEGOTIATING and _expired(snapshot, now):
                return Decision(Action.TIMEOUT, "the job creator never agreed", TIMEOUT_FOR_STATE[state])
            return Decision(Action.WAIT, "waiting for the job creator to agree")
        reason = refusal_reason(snapshot, terms)
        if reason is not None:
            return Decision(Action.REFUSE, reason)
        return Decision(Action.AGREE, "the deal matches our offer")

    if state == AgreementState.DEAL_AGREED:
        if local.running:
            return Decision(Action.WAIT, "the job is running")
        if local.status == JobStatus.GAVE_UP:
            return Decision(Action.WAIT, "gave up running the job; waiting for the submit-results timeout")
        if local.status == JobStatus.UPLOADED and local.result_cid:
            return Decision(Action.ADD_RESULT, "the result is uploaded")
        if local.status == JobStatus.SUBMITTED and local.result_cid:
            # addResult was sent but the chain does not show it (lost, or the
            # process died before it was mined): send it again.
            return Decision(Action.ADD_RESULT, "the result is not on-chain yet")
        if local.status == JobStatus.RAN and local.result_cid:
            return Decision(Action.UPLOAD, "the result is not uploaded yet")
        return Decision(Action.RUN, "the deal is agreed and there is no result")

    if state == AgreementState.RESULTS_SUBMITTED:
        if _expired(snapshot, now):
            return Decision(Action.TIMEOUT, "the job creator never judged the result", TIMEOUT_FOR_STATE[state])
        return Decision(Action.WAIT, "waiting for the job creator to judge the result")

    if state == AgreementState.RESULTS_CHECKED:
        if _expired(snapshot, now):
            return Decision(Action.TIMEOUT, "the mediator never decided", TIMEOUT_FOR_STATE[state])
        return Decision(Action.WAIT, "waiting for mediation")

    return Decision(Action.WAIT, f"unexpected state {state.name}")
