"""Honest metering: what an instruction is, what a provider may claim (pure).

A job's ``instructionCount`` (what the provider is paid for, at the deal's
``instructionPrice``) is defined by the module's ``verification.metering``
(:class:`~lilypad.verification.spec.MeteringSpec`, whose ``claim`` and
``allowed`` call the functions here):

* unit ``job`` (the default): a fixed count per job, ``instructions`` (default 1);
  the mediator accepts up to exactly that count;
* unit ``second``: one instruction per started second of the container's
  running time (``ceil(duration_s)``, at least 1; ``RunResult.duration_s``
  runs from the container's start to its exit). The mediator re-runs the job
  and accepts up to its slowest run's count times ``1 + tolerancePercent/100``,
  rounded up, since machines differ in speed.

A claim above the allowance is treated like a wrong result: the provider is
slashed (:func:`lilypad.verification.verdicts.decide`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction
from typing import Literal

__all__ = ["MeteringUnit", "allowed_instructions", "claimed_instructions"]

MeteringUnit = Literal["job", "second"]


def claimed_instructions(unit: MeteringUnit, fixed: int, duration_s: float) -> int:
    """What an honest provider claims for a run of ``duration_s`` seconds: ``fixed``
    for unit ``job``, else one per started second (at least 1)."""
    if unit == "job":
        return fixed
    if not math.isfinite(duration_s) or duration_s < 0:
        raise ValueError(f"a run's duration must be a finite number of seconds >= 0, got {duration_s!r}")
    return max(1, math.ceil(duration_s))


def allowed_instructions(unit: MeteringUnit, fixed: int, tolerance_percent: float,
                         durations: Iterable[float]) -> int:
    """The most instructions the mediator accepts given its own runs' ``durations``:
    ``fixed`` for unit ``job``; for unit ``second`` the slowest run's claim times
    ``1 + tolerance_percent/100``, rounded up (computed exactly, in fractions)."""
    if unit == "job":
        return fixed
    counts = [claimed_instructions(unit, fixed, duration) for duration in durations]
    if not counts:
        raise ValueError("the allowance of a metered module needs at least one run of the mediator")
    if not math.isfinite(tolerance_percent) or tolerance_percent < 0:
        raise ValueError(f"tolerancePercent must be a finite number >= 0, got {tolerance_percent!r}")
    factor = 1 + Fraction(Decimal(repr(float(tolerance_percent)))) / 100
    return math.ceil(max(counts) * factor)
