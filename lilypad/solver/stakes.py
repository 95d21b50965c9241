"""What a new deal is made under: the current protocol settings and the registry's stakes, cached.

Every deal the solver builds names the controller's current settings version
(``deal.protocol.settings_version``: the first ``agree`` reverts on any other)
and, while that version's ``minMediatorStake`` is above 0, only mediators
registered with at least the minimum and not unbonding (the first ``agree``
reverts otherwise too). :class:`MediatorStakes` reads the current version and
its settings together (once per ``ttl``) and each mediator's stake at most
once per ``ttl`` seconds, when a match round asks about it; while the minimum
is 0 every mediator may be named and no stake is read. A read that fails keeps
the last value known; with none known the error propagates and the round is
retried. A settings change reaches the deals built at most ``ttl`` seconds
later; a deal built in between names the old version and its agree reverts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from lilypad.chain.mediation import MediatorStake
from lilypad.protocol.settings import ProtocolSettings

__all__ = ["DEFAULT_STAKE_TTL", "MediatorStakes"]

#: Seconds a read of the settings or of a stake is reused.
DEFAULT_STAKE_TTL = 30.0


class MediatorStakes:
    """``eligible(mediator)``: whether a new deal may name ``mediator`` (any case);
    ``settings_version()``: the version a new deal must name.

    ``read_settings()`` returns ``(version, settings)`` of the controller's
    current settings; ``read_stake(mediator)`` a :class:`MediatorStake`.
    """

    def __init__(self, read_settings: Callable[[], tuple[int, ProtocolSettings]],
                 read_stake: Callable[[str], MediatorStake], *,
                 ttl: float = DEFAULT_STAKE_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self._read_settings = read_settings
        self._read_stake = read_stake
        self.ttl = ttl
        self._clock = clock
        self._settings: tuple[float, tuple[int, ProtocolSettings]] | None = None
        self._stakes: dict[str, tuple[float, MediatorStake]] = {}
        self._lock = threading.Lock()
        self.reads = 0

    @classmethod
    def from_contracts(cls, contracts: Any, *, lock: Any = None, ttl: float = DEFAULT_STAKE_TTL) -> MediatorStakes:
        """Read through :class:`~lilypad.chain.contracts.LilypadContracts` holding the chain lock."""
        from lilypad.solver.watcher import chain_call

        return cls(lambda: chain_call(contracts.current_protocol_settings, lock=lock),
                   lambda m: chain_call(contracts.mediator_stake, m, lock=lock), ttl=ttl)

    def current(self) -> tuple[int, ProtocolSettings]:
        """``(version, settings)`` new deals are made under (cached)."""
        with self._lock:
            self._settings = self._fresh(self._settings, self._read_settings)
            return self._settings[1]

    def settings_version(self) -> int:
        return self.current()[0]

    def min_stake(self) -> int:
        return self.current()[1].min_mediator_stake

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
