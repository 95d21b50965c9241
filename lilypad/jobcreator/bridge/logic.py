"""The relayer's rules, pure: a job's local states, how they line up with the chain, and retry
timing.

A smart-contract job moves through these local states (kept in SQLite by
:class:`~lilypad.jobcreator.bridge.store.BridgeJobStore`, keyed by the on-chain job id)::

    seen -> offer_posted -> deal -> delivered
      \\_____________\\__________\\--> failed          (a failed deal: back to seen, next attempt)

The chain is the truth and the local row a bookmark: the job creator contract holds the
deposit, binds each deal to the job (its nonce), delivers the result it reads from storage and
settles the payee's change, so a relayer only carries messages - posts the job's (unsigned)
offer to the solver, agrees to the matched deal, judges and completes - and any step another
relayer took first simply reverts or is seen on the next read. :func:`reconcile` maps the
chain's job to the local state.
"""

from __future__ import annotations

import enum
import random

from lilypad.protocol.contract_jobs import ContractJob

__all__ = [
    "ACTIVE_STATES",
    "FAULT_POINTS",
    "BridgeState",
    "backoff_delay",
    "reconcile",
]


class BridgeState(str, enum.Enum):
    """A job's local state (see the module docstring)."""

    SEEN = "seen"
    OFFER_POSTED = "offer_posted"
    DEAL = "deal"
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (BridgeState.DELIVERED, BridgeState.FAILED)


#: States the daemon still works on.
ACTIVE_STATES = tuple(s for s in BridgeState if not s.is_terminal)


def reconcile(local: BridgeState, job: ContractJob | None) -> BridgeState | None:
    """The local state the job must move to given the chain's ``job``, or ``None`` when the
    local state stands: the chain ended it (completed: delivered; failed), it follows a live
    deal, or it waits for one (a failed deal frees it for the next attempt). A job the chain
    does not have means the chain was reset under us: refused rather than guessed."""
    if job is None:
        raise ValueError("the chain has no such job (was the chain reset?)")
    if job.state == 2:
        return None if local == BridgeState.DELIVERED else BridgeState.DELIVERED
    if job.state == 3:
        return None if local == BridgeState.FAILED else BridgeState.FAILED
    if job.live_deal is not None:
        return None if local == BridgeState.DEAL else BridgeState.DEAL
    if local == BridgeState.DEAL:
        return BridgeState.SEEN  # its deal ended without a result: the next attempt
    return None


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


#: Where the test-only ``LILYPAD_BRIDGE_FAULT`` can crash the daemon: each is
#: "the step's effect happened (on-chain or at the solver) but is not yet
#: written down locally", the worst moment to die.
FAULT_POINTS = (
    "after-seen",          # the job row is written, the event's cursor is not advanced
    "after-offer-posted",  # the solver has the offer, local state still 'seen'
    "after-agree",         # the contract's agree mined, local state still 'offer_posted'
    "after-judge",         # judge mined (and perhaps the job completed), local state still 'deal'
    "after-complete",      # complete mined, local state still 'deal'
)
