"""The one budget of the project's Hypothesis stateful fuzz (tests/contracts/test_*_fuzz.py).

``LILYPAD_FUZZ_EXAMPLES`` examples of ``LILYPAD_FUZZ_STEPS`` steps each. ``make test`` runs a small
budget and sets ``LILYPAD_FUZZ_DERANDOMIZE=1``: the examples are then the same on every machine and
every run, so the gate's checks that a run was not vacuous (it reached the deep states) cannot pass
on one machine and fail on the next by chance. ``make fuzz`` and ``make soak`` leave it unset and
explore fresh examples at a large budget.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["fuzz_examples", "stateful_settings"]


def fuzz_examples(default: int = 10) -> int:
    return int(os.environ.get("LILYPAD_FUZZ_EXAMPLES", str(default)))


def stateful_settings(default_examples: int = 10) -> settings:
    return settings(
        max_examples=fuzz_examples(default_examples),
        stateful_step_count=int(os.environ.get("LILYPAD_FUZZ_STEPS", "25")),
        deadline=None,
        derandomize=os.environ.get("LILYPAD_FUZZ_DERANDOMIZE", "") == "1",
        suppress_health_check=list(HealthCheck),
    )
