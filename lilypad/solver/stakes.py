"""Which mediators a new deal may name: the registry's stakes, cached for the matcher.

While the controller's ``minMediatorStake`` is 0 every mediator may be named and
only the minimum is read (once per ``ttl``). Above 0, the first ``agree`` of a
deal reverts unless every mediator it names is registered with at least the
minimum and not unbonding, so the solver matches only such mediators: each
mediator's stake is read at most once per ``ttl`` seconds, when a match round
asks about it. A read that fails keeps the last value known; with none known
the error propagates and the round is retried.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from lilypad.chain.contracts import MediatorStake

__all__ = ["DEFAULT_STAKE_TTL", "MediatorStakes"]

#: Seconds a read of the minimum or of a stake is reused.
DEFAULT_STAKE_TTL = 30.0


class MediatorStakes:
    """``eligible(mediator)``: whether a new deal may name ``mediator`` (any case)."""

    def __init__(self, read_min: Callable[[], int], read_stake: Callable[[str], MediatorStake], *,
                 ttl: float = DEFAULT_STAKE_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self._read_min = read_min
        self._read_stake = read_stake
        self.ttl = ttl
        self._clock = clock
        self._min: tuple[float, int] | None = None
        self._stakes: dict[str, tuple[float, MediatorStake]] = {}
        self._lock = threading.Lock()
        self.reads = 0

    @classmethod
    def from_contracts(cls, contracts: Any, *, lock: Any = None, ttl: float = DEFAULT_STAKE_TTL) -> MediatorStakes:
        """Read through :class:`~lilypad.chain.contracts.LilypadContracts` holding the chain lock."""
        from lilypad.solver.watcher import chain_call

        return cls(lambda: chain_call(contracts.min_mediator_stake, lock=lock),
                   lambda m: chain_call(contracts.mediator_stake, m, lock=lock), ttl=ttl)

    def min_stake(self) -> int:
        with self._lock:
            self._min = self._fresh(self._min, self._read_min)
            return self._min[1]

    def eligible(self, mediator: str) -> bool:
        minimum = self.min_stake()
        if minimum == 0:
            return True
        key = mediator.lower()
        with self._lock:
            entry = self._fresh(self._stakes.get(key), lambda: self._read_stake(key))
            self._stakes[key] = entry
        return entry[1].qualifies(minimum)

    def _fresh(self, entry: tuple[float, Any] | None, read: Callable[[], Any]) -> tuple[float, Any]:
        now = self._clock()
        if entry is not None and now - entry[0] < self.ttl:
            return entry
        try:
            value = read()
        except Exception:
            if entry is None:
                raise
            return entry  # the chain is unreachable: keep the last value known
        self.reads += 1
        return (now, value)
