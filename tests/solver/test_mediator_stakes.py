"""MediatorStakes: the solver's cached view of the current protocol settings and the mediator
registry (pure: the reads are plain functions counting their calls, the clock a variable)."""

from __future__ import annotations

import pytest

from lilypad.chain.contracts import MediatorStake
from lilypad.protocol.settings import ProtocolSettings
from lilypad.solver.stakes import MediatorStakes

M1, M2, M3 = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20


class Chain:
    def __init__(self) -> None:
        self.minimum = 0
        self.version = 0
        self.stakes = {M1: MediatorStake(10, 0, None), M2: MediatorStake(9, 0, None),
                       M3: MediatorStake(10, 100, 100 + 67 * 86400)}
        self.down = False
        self.now = 0.0
        self.calls = 0

    def read_settings(self) -> tuple[int, ProtocolSettings]:
        return self._read(lambda: (self.version, ProtocolSettings(min_mediator_stake=self.minimum)))

    def read_stake(self, mediator: str) -> MediatorStake:
        return self._read(lambda: self.stakes.get(mediator, MediatorStake(0, 0, None)))

    def _read(self, fn):
        self.calls += 1
        if self.down:
            raise ConnectionError("the RPC is down")
        return fn()


@pytest.fixture
def chain() -> Chain:
    return Chain()


@pytest.fixture
def stakes(chain: Chain) -> MediatorStakes:
    return MediatorStakes(chain.read_settings, chain.read_stake, ttl=30, clock=lambda: chain.now)


def test_minimum_zero_admits_anyone_and_reads_only_the_settings(chain, stakes):
    assert all(stakes.eligible(m) for m in (M1, M2, M3, "0x" + "44" * 20))
    assert chain.calls == 1


def test_the_settings_version_is_read_with_the_minimum_and_cached_per_ttl(chain, stakes):
    assert stakes.settings_version() == 0
    chain.version, chain.minimum = 3, 10
    assert (stakes.settings_version(), stakes.min_stake()) == (0, 0)  # still the cached read
    chain.now += 30
    assert (stakes.settings_version(), stakes.min_stake()) == (3, 10)  # one read gives both
    assert chain.calls == 2


def test_minimum_above_zero_admits_only_staked_bonded_mediators_cached_per_ttl(chain, stakes):
    chain.minimum = 10
    assert [stakes.eligible(m) for m in (M1, M2, M3, "0x" + "44" * 20)] == [True, False, False, False]
    calls = chain.calls
    assert stakes.eligible(M1.upper().replace("0X", "0x")) and chain.calls == calls  # cached, any case
    chain.stakes[M2] = MediatorStake(10, 0, None)
    assert not stakes.eligible(M2)  # still the cached read
    chain.now += 30
    assert stakes.eligible(M2)  # re-read after the ttl


def test_a_failed_read_keeps_the_last_value_and_without_one_raises(chain, stakes):
    chain.minimum = 10
    assert stakes.eligible(M1)
    chain.down, chain.now = True, 100.0
    assert stakes.eligible(M1)
    with pytest.raises(ConnectionError):
        stakes.eligible(M2)
