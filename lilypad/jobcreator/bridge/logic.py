"""The bridge's rules, pure: a job's local states, how they line up with the
chain, what a finished deal means for the job, and retry timing.

A smart-contract job moves through these local states (kept in SQLite by
:class:`~lilypad.jobcreator.bridge.store.BridgeJobStore`, keyed by the on-chain job id)::

    seen -> funds_taken -> offer_posted -> deal_agreed [-> checking] -> results -> delivered
      \\________________\\_______________\\______________\\____________\\--> failed

Every transition is taken only after the chain (or the solver) says the step
happened, and every step first asks the chain whether it already happened:
the on-chain job's state (``Added``, ``FundsTaken``, ``Completed``,
``Failed``) and the deal's agreement are the truth, the local row is a
bookmark. :func:`reconcile` is that rule for the job's own state; the daemon
applies the same idea to the deal (``agree`` only if the bridge has not
agreed yet, ``acceptResult`` only while results are submitted).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from lilypad.protocol.deal import AgreementState, JobState

__all__ = [
    "ACTIVE_STATES",
    "FAULT_POINTS",
    "BridgeState",
    "DealVerdict",
    "backoff_delay",
    "deal_verdict",
    "offer_nonce",
    "reconcile",
]


class BridgeState(str, enum.Enum):
    """A job's local state (see the module docstring)."""

    SEEN = "seen"
    FUNDS_TAKEN = "funds_taken"
    OFFER_POSTED = "offer_posted"
    DEAL_AGREED = "deal_agreed"
    CHECKING = "checking"
    RESULTS = "results"
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (BridgeState.DELIVERED, BridgeState.FAILED)


#: States the daemon still works on.
ACTIVE_STATES = tuple(s for s in BridgeState if not s.is_terminal)


def reconcile(local: BridgeState, chain: JobState) -> BridgeState | None:
    """The local state the job must move to given its on-chain state, or
    ``None`` when the local state stands.

    * the chain finished the job (``Completed``/``Failed``: delivered, failed by
      us before a crash, or timed out by anyone): the local state follows;
    * the chain has the funds but we still say ``seen``: ``takeFunds`` was
      mined and we crashed before writing it down;
    * ``None`` on-chain for a job we saw: the chain was reset under us (a
      local devnet restarted); the daemon refuses to go on rather than guess.
    """
    if chain == JobState.COMPLETED:
        return None if local == BridgeState.DELIVERED else BridgeState.DELIVERED
    if chain == JobState.FAILED:
        return None if local == BridgeState.FAILED else BridgeState.FAILED
    if chain == JobState.FUNDS_TAKEN and local == BridgeState.SEEN:
        return BridgeState.FUNDS_TAKEN
    if chain == JobState.ADDED and local not in (BridgeState.SEEN, BridgeState.FAILED):
        raise ValueError(f"the chain says the job's funds were never taken, but it is locally {local.value!r}")
    if chain == JobState.NONE:
        raise ValueError("the chain has no such job (was the chain reset?)")
    return None


@dataclass(frozen=True)
class DealVerdict:
    """What a terminal deal means for the job: deliver its result, or fail with ``reason``."""

    deliver: bool
    reason: str


_DEAL_DELIVERIES = {
    AgreementState.RESULTS_ACCEPTED: "result accepted",
    AgreementState.MEDIATION_ACCEPTED: "the mediator confirmed the result",
    AgreementState.MEDIATION_NON_DETERMINISTIC: (
        "the mediator found the job non-deterministic (its own runs disagreed); the result was paid for"
    ),
}

_DEAL_FAILURES = {
    AgreementState.MEDIATION_REJECTED: "the mediator rejected the provider's result",
    AgreementState.TIMEOUT_AGREE: "the resource provider did not agree to the deal in time",
    AgreementState.TIMEOUT_SUBMIT_RESULTS: "the resource provider did not submit results in time",
    AgreementState.TIMEOUT_JUDGE_RESULTS: "the result was not judged in time",
    AgreementState.TIMEOUT_MEDIATE_RESULTS: "the mediator did not decide in time",
}


def deal_verdict(state: AgreementState) -> DealVerdict | None:
    """``None`` while the deal is open; otherwise deliver (accepted, by us or
    by mediation, or paid for after the mediator found the job non-deterministic)
    or fail with the reason the client contract is told."""
    delivered = _DEAL_DELIVERIES.get(state)
    if delivered is not None:
        return DealVerdict(True, delivered)
    reason = _DEAL_FAILURES.get(state)
    return None if reason is None else DealVerdict(False, reason)


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0,
                  jitter: random.Random | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): exponential from
    ``base``, at most ``cap``, with up to 25% random jitter so many jobs that
    failed together do not retry together."""
    if attempt < 1:
        return 0.0
    delay = min(cap, base * (2 ** (attempt - 1)))
    rng = jitter or random
    return delay * (1.0 + 0.25 * rng.random())


def offer_nonce(chain_id: int, job_creator: str, job_id: int, attempt: int) -> bytes:
    """The job offer's nonce for ``attempt`` of on-chain job ``job_id``: derived,
    not random, so an offer posted just before a crash is recognised (same
    nonce, same id) instead of being posted twice."""
    from eth_utils import keccak, to_canonical_address

    return keccak(b"lilypad-bridge-offer" + chain_id.to_bytes(32, "big") + to_canonical_address(job_creator)
                  + job_id.to_bytes(32, "big") + attempt.to_bytes(32, "big"))


#: Where the test-only ``LILYPAD_BRIDGE_FAULT`` can crash the daemon: each is
#: "the step's effect happened (on-chain or at the solver) but is not yet
#: written down locally", the worst moment to die.
FAULT_POINTS = (
    "after-seen",          # the job row is written, the event's cursor is not advanced
    "after-take-funds",    # takeFunds mined, local state still 'seen'
    "after-offer-posted",  # the solver has the offer, local state still 'funds_taken'
    "after-agree",         # agree mined, local state still 'offer_posted'
    "after-accept",        # acceptResult mined, local state still 'deal_agreed'
    "before-callback",     # about to send submitResults
    "after-callback",      # submitResults mined, local state still 'results'
)
