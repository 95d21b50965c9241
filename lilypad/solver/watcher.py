"""Following the chain for the solver: :class:`ChainWatcher` and :class:`TimeoutKeeper`.

:class:`ChainWatcher` polls ``LilypadStorage``'s ``AgreementStateChanged``
and ``ResultStored`` logs with an :class:`~lilypad.chain.events.EventPoller`
over a persisted :class:`~lilypad.chain.events.LogCursor`: every ``interval``
seconds, or, while a :class:`~lilypad.service.heads.HeadWaker` is subscribed to
the node's new blocks (``lilypad solver`` starts one), on each new block (at most
one poll per :data:`WATCH_MIN_INTERVAL`, as often as it polled before) and every
``idle_interval`` seconds. For each log of a deal the solver knows it reads the deal's *current* agreement (state and
timestamps) and result CID from the chain and records them with
:meth:`SolverCore.on_chain_state <lilypad.solver.service.SolverCore.on_chain_state>`,
then commits the log. Delivery is at-least-once (a log handled but not
committed when the process died comes again); handling is idempotent because
it always records what the chain says *now*, never a state taken from an old
log, so a repeated log cannot move a deal backwards. Logs of deals the solver
never made are committed without a read.

:class:`TimeoutKeeper` asks the core every ``interval`` seconds for the deals
(when it has any a timeout can end: :meth:`SolverCore.may_time_out
<lilypad.solver.service.SolverCore.may_time_out>`) whose on-chain window has passed at the chain's head time
(:meth:`SolverCore.overdue_deals <lilypad.solver.service.SolverCore.overdue_deals>`)
and calls the matching controller timeout with the solver's account. A revert
(somebody else already timed the deal out, or it moved on) is logged and
skipped; either way the deal's current agreement is recorded in the core, so
it is not tried again.

Both are :class:`~lilypad.service.loop.ServiceLoop`\\ s run in a daemon thread
(:meth:`start` / :meth:`stop`, or as context managers; a failed round is
logged and retried after the interval) inside an ape network context the caller keeps open (see
:func:`lilypad.chain.connected`). ape's network state is process-global and
not made for concurrent use, so every chain interaction of these threads
holds ``lock`` (default :data:`CHAIN_LOCK`, which other threads of the
process, e.g. the HTTP app's ``onchain_result`` and ``head_block``, should
hold too: see :func:`chain_call`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lilypad.exceptions import CursorAheadOfChainError
from lilypad.protocol.deal import AgreementState
from lilypad.service.loop import ServiceLoop
from lilypad.solver.store import AgreementTimes

if TYPE_CHECKING:
    from lilypad.chain.contracts import Agreement, LilypadContracts
    from lilypad.solver.service import SolverCore

__all__ = [
    "CHAIN_LOCK",
    "DEFAULT_CURSOR_NAME",
    "WATCHED_EVENTS",
    "ChainWatcher",
    "TimeoutKeeper",
    "agreement_times",
    "chain_call",
    "chain_time",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Guards every ape call made by the solver's threads (ape's state is process-global).
CHAIN_LOCK = threading.RLock()
#: The storage events the watcher follows.
WATCHED_EVENTS = ("AgreementStateChanged", "ResultStored")
DEFAULT_CURSOR_NAME = "solver-watcher"
#: The chain watcher's wait between polls while the node's new blocks wake it (seconds).
DEFAULT_WATCH_IDLE_INTERVAL = 10.0
#: The least time between two of the watcher's polls (blocks can come faster under load).
WATCH_MIN_INTERVAL = 0.25


def chain_call(fn: Callable[..., T], *args: Any, lock: Any = None, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` holding ``lock`` (default :data:`CHAIN_LOCK`)."""
    with lock if lock is not None else CHAIN_LOCK:
        return fn(*args, **kwargs)


def chain_time() -> int:
    """The head block's timestamp (the time the contracts' windows are judged by)."""
    from ape import chain

    return int(chain.blocks.head.timestamp)


def agreement_times(agreement: Agreement) -> AgreementTimes:
    """The core's view of an on-chain agreement's timestamps (0 on-chain: not yet)."""
    return AgreementTimes(
        created_at=agreement.created_at or None,
        agreed_at=agreement.agreed_at or None,
        results_submitted_at=agreement.results_submitted_at or None,
        mediation_requested_at=agreement.mediation_requested_at or None,
    )


def _deal_hex(value: Any) -> str:
    raw = bytes(value) if not isinstance(value, str) else bytes.fromhex(value.removeprefix("0x"))
    return "0x" + raw.hex()


class _ChainLoop(ServiceLoop):
    """The service loop in a daemon thread, its failed rounds logged as text:
    one line when the chain is unreachable, the traceback otherwise."""

    def round_failed(self, exc: Exception) -> None:
        from lilypad.chain.tx import is_transient

        if is_transient(exc):  # the RPC (or the network to it) is down: one line, not a traceback
            log.warning("%s: round failed, the chain is unreachable (%s: %s); retrying in %.1fs",
                        self.name, type(exc).__name__, exc, self.interval)
        else:
            log.error("%s: round failed", self.name, exc_info=exc)


class ChainWatcher(_ChainLoop):
    """Feeds the core the on-chain state of its deals (see the module docstring).

    ``cursor_db`` is the SQLite file of the :class:`~lilypad.chain.events.LogCursor`
    (cursor ``name``); a new cursor starts at the deployment's block.
    ``confirmations`` holds back the newest blocks. ``handled`` counts the
    logs recorded in the core (logs of unknown deals are only committed,
    counted in ``skipped``).
    """

    name = "solver-chain-watcher"

    def __init__(
        self,
        contracts: LilypadContracts,
        core: SolverCore,
        cursor_db: str | Path,
        *,
        confirmations: int = 0,
        interval: float = 1.0,
        idle_interval: float = DEFAULT_WATCH_IDLE_INTERVAL,
        name: str = DEFAULT_CURSOR_NAME,
        start_block: int | None = None,
        lock: Any = None,
    ) -> None:
        from lilypad.chain.events import EventPoller, LogCursor

        # Woken on every new block while a HeadWaker is subscribed: then nothing is in flight
        # between two blocks, and a poll every ``idle_interval`` only guards a missed head.
        super().__init__(interval, idle_interval=idle_interval, min_interval=WATCH_MIN_INTERVAL)
        self.busy = lambda: False
        self.contracts = contracts
        self.core = core
        self.lock = lock if lock is not None else CHAIN_LOCK
        start = contracts.deployment.block_number if start_block is None else start_block
        self.cursor = LogCursor(cursor_db, name, start_block=max(0, int(start)))
        self.poller = EventPoller(contracts, [getattr(contracts.storage, e) for e in WATCHED_EVENTS], self.cursor,
                                  confirmations=confirmations)
        self.handled = 0
        self.skipped = 0
        self.polls = 0
        self._behind_reported = False

    def close(self) -> None:
        """Stop and close the cursor's database."""
        self.stop()
        self.cursor.close()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def handle(self, log_: Any) -> bool:
        """Record the current on-chain state of ``log_``'s deal in the core;
        ``False`` for a deal the solver does not know."""
        deal_id = _deal_hex(log_.dealId)
        if self.core.store.deal(deal_id) is None:
            return False
        agreement = chain_call(self.contracts.agreement, deal_id, lock=self.lock)
        if agreement.state == AgreementState.NONE:  # only a re-organised chain can say so
            return True
        result_cid, _ = chain_call(self.contracts.result, deal_id, lock=self.lock)
        self.core.on_chain_state(deal_id, agreement.state, result_cid, times=agreement_times(agreement))
        log.info("deal %s: %s on-chain (log %s:%s)", deal_id, agreement.state.name, log_.block_number,
                 log_.log_index)
        return True

    def step(self) -> int:
        """Poll once and handle (and commit) what came; the number of logs
        committed (handled or skipped). A failed handler leaves its log
        uncommitted: it comes again next poll."""
        try:
            logs = chain_call(self.poller.poll, lock=self.lock)
        except CursorAheadOfChainError as exc:
            if not self._behind_reported:
                log.error("chain watcher stopped following: %s", exc)
                self._behind_reported = True
            return 0
        self._behind_reported = False
        self.polls += 1
        count = 0
        for log_ in logs:
            if self.handle(log_):
                self.handled += 1
            else:
                self.skipped += 1
            self.poller.commit(log_)
            count += 1
        return count

    def drain(self, max_polls: int = 1000) -> int:
        """Poll until nothing is new (synchronously, without the thread); the
        number of logs committed."""
        total = 0
        for _ in range(max_polls):
            count = self.step()
            if count == 0:
                break
            total += count
        return total


class TimeoutKeeper(_ChainLoop):
    """Drives overdue deals to their on-chain timeout with ``account`` (see the
    module docstring). ``clock()`` is the chain time (default: the head
    block's timestamp). ``sent`` counts the timeouts that went through,
    ``reverted`` those someone else (or a state change) beat us to."""

    name = "solver-timeout-keeper"

    def __init__(
        self,
        contracts: LilypadContracts,
        core: SolverCore,
        account: Any,
        *,
        interval: float = 3.0,
        clock: Callable[[], int] | None = None,
        lock: Any = None,
    ) -> None:
        super().__init__(interval)
        self.contracts = contracts
        self.core = core
        self.account = account
        self.clock = clock or chain_time
        self.lock = lock if lock is not None else CHAIN_LOCK
        self.sent = 0
        self.reverted = 0

    def _refresh(self, deal_id: str) -> None:
        agreement = chain_call(self.contracts.agreement, deal_id, lock=self.lock)
        if agreement.state != AgreementState.NONE:
            result_cid, _ = chain_call(self.contracts.result, deal_id, lock=self.lock)
            self.core.on_chain_state(deal_id, agreement.state, result_cid, times=agreement_times(agreement))

    def step(self) -> list[str]:
        """One round: time out every overdue deal; the ids of the deals timed out by us."""
        from ape.exceptions import ContractLogicError

        if not self.core.may_time_out():
            return []
        now = chain_call(self.clock, lock=self.lock)
        done = []
        for record, function in self.core.overdue_deals(now):
            try:
                chain_call(self.contracts.timeout, record.deal, self.account, lock=self.lock)
            except (ContractLogicError, ValueError) as exc:  # beaten to it, or no longer in that state
                self.reverted += 1
                log.info("deal %s: %s not sent (%s: %s)", record.deal_id, function, type(exc).__name__, exc)
            except Exception:
                log.exception("deal %s: %s failed", record.deal_id, function)
                continue
            else:
                self.sent += 1
                done.append(record.deal_id)
                log.info("deal %s: %s sent", record.deal_id, function)
            try:
                self._refresh(record.deal_id)
            except Exception:
                log.exception("deal %s: reading the agreement after %s failed", record.deal_id, function)
        return done
