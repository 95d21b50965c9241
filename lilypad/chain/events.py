"""Reading contract events in order, exactly where the last run stopped.

A daemon (solver, resource provider, mediator, bridge) follows the chain with
an :class:`EventPoller` over a :class:`LogCursor`:

    cursor = LogCursor(state_dir / "events.sqlite", "mediator", start_block=deployment.block_number)
    poller = EventPoller(contracts, ["MediationRequested"], cursor, confirmations=2)
    while True:
        for log in poller.poll():
            handle(log)          # must be idempotent
            poller.commit(log)   # only after handle() succeeded
        time.sleep(1)

**Delivery is at-least-once.** :meth:`EventPoller.poll` returns the logs
strictly after the cursor, in ``(block, log_index)`` order, and the cursor
moves past a log only when the caller :meth:`~EventPoller.commit`\\ s it after
handling it. A log that was returned but not committed (the handler failed,
the process died between handling and committing) is returned again by the
next poll, by this process or by a new one on the same cursor file; a
committed log never is. Handlers must therefore be idempotent: for lilypad
that comes naturally, since every contract action is guarded by the deal's
state (a repeated action reverts with ``WrongState``) and reads are pure.

Blocks the poller scanned without finding a matching log are skipped over
without a commit (there was nothing to handle in them), so an idle chain is
never scanned twice. ``confirmations`` holds back the newest blocks: only
logs in blocks at most ``head - confirmations`` are returned, which keeps a
re-organisation (or a load-balanced RPC endpoint whose nodes lag each other)
from showing a log that later disappears. If the chain's head falls below the
last block the cursor handled (a local chain restarted, a deep re-org),
:meth:`EventPoller.poll` raises :class:`~lilypad.exceptions.CursorAheadOfChainError`
rather than silently re-reading or skipping.

Logs are fetched with ``ape.types.LogFilter`` and
``chain.provider.get_contract_logs`` over explicit, inclusive block ranges of
at most ``page_size`` blocks. (ape's ``poll_logs(start_block=...)`` skips a
block and blocks on an idle chain, and ``ContractEvent.range`` repeats the head
block; neither is used.)
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lilypad.exceptions import CursorAheadOfChainError
from lilypad.service.state import open_sqlite

if TYPE_CHECKING:
    from ape.types import ContractLog
    from ethpm_types.abi import EventABI

    from lilypad.chain.contracts import LilypadContracts

__all__ = ["EventPoller", "LogCursor", "log_key"]


def log_key(log: Any) -> tuple[int, int]:
    """A log's position on the chain: ``(block number, log index in the block)``."""
    return int(log.block_number), int(log.log_index)


# --------------------------------------------------------------------------
# The cursor
# --------------------------------------------------------------------------


class LogCursor:
    """The position of the last handled log, persisted in SQLite.

    The position is ``(block, log_index)``: every log at or before it has been
    handled. ``log_index == -1`` means "nothing in ``block`` handled yet", so a
    new cursor starts at ``(start_block, -1)`` and the first log it lets
    through may be in ``start_block`` itself. One file may hold many cursors
    (table ``cursors(name TEXT PRIMARY KEY, block INTEGER, log_index INTEGER)``);
    each name must be used by one poller at a time. Writes are committed
    (durable: :func:`~lilypad.service.state.open_sqlite`) before
    :meth:`advance` returns.
    """

    def __init__(self, db_path: str | Path, name: str, *, start_block: int = 0) -> None:
        if start_block < 0:
            raise ValueError("start_block must be >= 0")
        self.db_path = Path(db_path)
        self.name = name
        self.start_block = start_block
        self._lock = threading.Lock()
        self._db = open_sqlite(self.db_path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS cursors("
            "name TEXT PRIMARY KEY, block INTEGER NOT NULL, log_index INTEGER NOT NULL)"
        )
        row = self._db.execute("SELECT block, log_index FROM cursors WHERE name = ?", (name,)).fetchone()
        self._position: tuple[int, int] = (int(row[0]), int(row[1])) if row else (start_block, -1)

    def __repr__(self) -> str:
        return f"<LogCursor {self.name!r} at {self._position} in {self.db_path}>"

    def __enter__(self) -> LogCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def position(self) -> tuple[int, int]:
        """``(block, log_index)`` of the last handled log (``log_index`` -1: none in ``block``)."""
        return self._position

    @property
    def last_handled_block(self) -> int:
        """The last block all of whose logs have been handled (``start_block - 1`` at first)."""
        block, index = self._position
        return block if index >= 0 else block - 1

    def advance(self, block: int, log_index: int) -> None:
        """Move to ``(block, log_index)`` and persist it. Never moves backwards."""
        new = (int(block), int(log_index))
        if new < self._position:
            raise ValueError(f"cursor {self.name!r} cannot move back from {self._position} to {new}")
        if new == self._position:
            return
        with self._lock:
            self._db.execute(
                "INSERT INTO cursors(name, block, log_index) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET block = excluded.block, log_index = excluded.log_index",
                (self.name, new[0], new[1]),
            )
        self._position = new

    def reset(self) -> None:
        """Forget the position: start again at ``(start_block, -1)`` (after a chain reset)."""
        with self._lock:
            self._db.execute("DELETE FROM cursors WHERE name = ?", (self.name,))
        self._position = (self.start_block, -1)

    def close(self) -> None:
        self._db.close()


# --------------------------------------------------------------------------
# The poller
# --------------------------------------------------------------------------


@dataclass
class _Batch:
    keys: list[tuple[int, int]]  # positions of the logs returned, in order
    committed: int  # how many of them have been committed
    scanned_to: int  # the last block the batch covers completely


class EventPoller:
    """Logs of some lilypad events, strictly after a :class:`LogCursor`, in order.

    ``event_abis`` are event names (``"AgreementStateChanged"``: every
    deployed contract that declares it), ape ``ContractEvent``\\ s
    (``contracts.storage.AgreementStateChanged``: that contract only) or
    ``EventABI``\\ s (any of the seven deployed contracts). See the module's
    docstring for the delivery guarantees.
    """

    def __init__(
        self,
        contracts: LilypadContracts,
        event_abis: Sequence[str | EventABI | Any],
        cursor: LogCursor,
        *,
        confirmations: int = 0,
        page_size: int = 2000,
    ) -> None:
        if confirmations < 0:
            raise ValueError("confirmations must be >= 0")
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        if not event_abis:
            raise ValueError("give at least one event")
        self.contracts = contracts
        self.cursor = cursor
        self.confirmations = confirmations
        self.page_size = page_size
        self.events, self.addresses = self._resolve(event_abis)
        self._batch: _Batch | None = None

    def _resolve(self, items: Sequence[Any]) -> tuple[list[EventABI], list[str]]:
        from eth_utils import to_checksum_address

        abis: dict[str, Any] = {}
        addresses: set[str] = set()
        everywhere = sorted(to_checksum_address(a) for a in self.contracts.deployment.contracts.values())
        for item in items:
            if isinstance(item, str):
                resolved = [(ev.abi, str(ev.contract.address)) for ev in self.contracts.find_events(item)]
            elif hasattr(item, "abi") and hasattr(item, "contract"):  # ape ContractEvent
                resolved = [(item.abi, str(item.contract.address))]
            elif hasattr(item, "selector") and getattr(item, "type", None) == "event":  # EventABI
                resolved = [(item, a) for a in everywhere]
            else:
                raise TypeError(f"not an event name, ContractEvent or EventABI: {item!r}")
            for abi, address in resolved:
                abis.setdefault(abi.selector, abi)
                addresses.add(to_checksum_address(address))
        return list(abis.values()), sorted(addresses)

    def _head(self) -> int:
        from ape import networks

        # ``eth_blockNumber`` straight from the provider: the cheapest question (a poll that finds
        # nothing new asks only this; ape's ``chain.blocks.head`` fetches and models the whole
        # block, most of an idle poller's CPU). Not ``chain.blocks.height``: ape answers 0 when
        # the RPC is unreachable, which would read as a chain reset (CursorAheadOfChainError);
        # make_request raises instead, a transient error the caller retries.
        number = networks.provider.make_request("eth_blockNumber", [])
        return number if isinstance(number, int) else int(number, 16)

    def _fetch(self, start: int, stop: int) -> list[ContractLog]:
        """Every matching log in blocks ``start..stop`` (inclusive), in chain order."""
        from ape import chain
        from ape.types import LogFilter
        from eth_utils import encode_hex, keccak

        selectors = [encode_hex(keccak(text=abi.selector)) for abi in self.events]
        log_filter = LogFilter(
            addresses=self.addresses,
            events=self.events,
            topic_filter=[selectors],
            start_block=start,
            stop_block=stop,
        )
        logs = list(chain.provider.get_contract_logs(log_filter))
        return sorted(logs, key=log_key)

    @property
    def safe_head(self) -> int:
        """The newest block whose logs may be returned: ``head - confirmations`` (may be negative)."""
        return self._head() - self.confirmations

    def poll(self) -> list[ContractLog]:
        """The next logs strictly after the cursor, in ``(block, log_index)`` order.

        Scans pages of ``page_size`` blocks from the cursor up to
        ``head - confirmations`` and returns the matching logs of the first
        page that has any (``[]`` at once when there is nothing new). Returned
        logs stay pending until :meth:`commit`\\ ted; polling again before
        committing them all returns the uncommitted ones again.
        """
        head = self._head()
        if head < self.cursor.last_handled_block:
            raise CursorAheadOfChainError(self.cursor.name, self.cursor.last_handled_block, head)
        position = self.cursor.position
        start = position[0]
        safe = head - self.confirmations
        self._batch = None
        page_start, scanned_to = start, start - 1
        while page_start <= safe:
            page_stop = min(safe, page_start + self.page_size - 1)
            logs = [log for log in self._fetch(page_start, page_stop) if log_key(log) > position]
            scanned_to = page_stop
            if logs:
                self._batch = _Batch(keys=[log_key(log) for log in logs], committed=0, scanned_to=scanned_to)
                return logs
            page_start = page_stop + 1
        if scanned_to >= start:
            # Nothing to handle up to scanned_to: skip those blocks for good.
            self.cursor.advance(scanned_to + 1, -1)
        return []

    def commit(self, log: Any) -> None:
        """Record ``log`` as handled; commit the logs of a poll in the order it returned them.

        Committing a log at or before the cursor again does nothing.
        Committing the last log of a poll also skips the rest of the blocks
        that poll scanned.
        """
        key = log_key(log)
        if key <= self.cursor.position:
            return
        batch = self._batch
        if batch is None or key not in batch.keys:
            raise ValueError(f"log at {key} was not returned by the last poll() (cursor at {self.cursor.position})")
        expected = batch.keys[batch.committed]
        if key != expected:
            raise ValueError(f"commit logs in the order poll() returned them: next is {expected}, got {key}")
        batch.committed += 1
        if batch.committed == len(batch.keys):
            self.cursor.advance(batch.scanned_to + 1, -1)
            self._batch = None
        else:
            self.cursor.advance(*key)

    @property
    def pending(self) -> int:
        """How many logs of the last poll are not committed yet."""
        return 0 if self._batch is None else len(self._batch.keys) - self._batch.committed
