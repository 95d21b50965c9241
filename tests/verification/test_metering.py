"""What an instruction is (lilypad.verification.metering, MeteringSpec): claims and allowances."""

from __future__ import annotations

import math

import pytest

from lilypad.verification.metering import allowed_instructions, claimed_instructions
from lilypad.verification.spec import MeteringSpec


def metering(**data: object) -> MeteringSpec:
    return MeteringSpec.model_validate(data)


def test_default_is_one_instruction_per_job() -> None:
    spec = metering()
    assert (spec.unit, spec.instructions) == ("job", 1)
    assert spec.claim(0.2) == spec.claim(500.0) == 1
    assert spec.allowed([0.1, 900.0]) == 1


def test_a_fixed_count_per_job() -> None:
    spec = metering(unit="job", instructions=250)
    assert spec.claim(3.7) == 250
    assert spec.allowed([1.0, 2.0]) == 250


@pytest.mark.parametrize(("duration", "claim"), [(0.0, 1), (0.3, 1), (1.0, 1), (1.0001, 2), (59.2, 60)])
def test_one_instruction_per_started_second(duration: float, claim: int) -> None:
    assert metering(unit="second").claim(duration) == claim


@pytest.mark.parametrize(("percent", "durations", "allowed"), [
    (None, [2.2, 3.9], 8),     # default 100 %: slowest 4 s -> 8
    (200, [0.5, 0.7], 3),      # 1 s -> 3
    (0, [4.0, 2.0], 4),        # no slack
    (10, [10.0], 11),
    (12.5, [3.0], 4),          # 3 x 1.125 = 3.375 -> 4
    (50, [1.0, 5.0], 8),       # 7.5 -> 8
])
def test_allowance_is_the_slowest_run_with_tolerance_rounded_up(percent: float | None, durations: list[float],
                                                                 allowed: int) -> None:
    spec = metering(unit="second", **({} if percent is None else {"tolerancePercent": percent}))
    assert spec.allowed(durations) == allowed
    assert allowed_instructions("second", 1, spec.tolerance_percent, durations) == allowed


def test_an_honest_provider_slower_within_tolerance_is_allowed() -> None:
    spec = metering(unit="second", tolerancePercent=200)
    mediator = [1.4, 1.9]
    assert spec.claim(5.8) <= spec.allowed(mediator) < spec.claim(6.1)


def test_bad_durations_and_empty_runs_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        claimed_instructions("second", 1, math.nan)
    with pytest.raises(ValueError, match="finite"):
        claimed_instructions("second", 1, -1.0)
    with pytest.raises(ValueError, match="at least one run"):
        metering(unit="second").allowed([])
