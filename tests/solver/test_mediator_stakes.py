"""MediatorStakes: the solver's cached view of the mediator registry (pure: the reads are
plain functions counting their calls, the clock a variable)."""

from __future__ import annotations

import pytest

from lilypad.chain.contracts import MediatorStake
from lilypad.solver.stakes import MediatorStakes

M1, M2, M3 = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20


class Chain:
    def __init__(self) -> None:
        self.minimum = 0
        self.stakes = {M1: MediatorStake(10, 0, None), M2: MediatorStake(9, 0, None),
                       M3: MediatorStake(10, 100, 100 + 37 * 86400)}
        self.down = False
        self.now = 0.0
        self.calls = 0

    def read_min(self) -> int:
        return self._read(lambda: self.minimum)

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
    return MediatorStakes(chain.read_min, chain.read_stake, ttl=30, clock=lambda: chain.now)


def test_minimum_zero_admits_anyone_and_reads_only_the_minimum(chain, stakes):
    assert all(stakes.eligible(m) for m in (M1, M2, M3, "0x" + "44" * 20))
    assert chain.calls == 1


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
