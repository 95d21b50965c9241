"""The mediator's verdict (lilypad.verification.verdicts.decide), as a table."""

from __future__ import annotations

import pytest

from lilypad.verification.spec import VerificationSpec
from lilypad.verification.verdicts import Verdict, decide, needs_provider_files

A, R, N = Verdict.ACCEPT, Verdict.REJECT, Verdict.NON_DETERMINISTIC


@pytest.mark.parametrize(("reruns_agree", "provider_agrees", "claimed", "allowed", "verdict"), [
    (True, True, 1, 1, A),
    (True, True, 5, 8, A),
    (True, False, 1, 1, R),
    (False, True, 1, 1, N),
    (False, False, 1, 1, N),
    (True, True, 9, 8, R),     # over-claimed: rejected even though the result is right
    (False, False, 9, 8, R),   # over-claimed beats non-determinism
    (False, True, 2, 1, R),
])
def test_decide(reruns_agree: bool, provider_agrees: bool, claimed: int, allowed: int, verdict: Verdict) -> None:
    judgement = decide(reruns_agree=reruns_agree, provider_agrees=provider_agrees,
                       claimed_instructions=claimed, allowed_instructions=allowed)
    assert judgement.verdict is verdict
    if claimed > allowed:
        assert judgement.reason == f"claimed {claimed} instructions, the mediator measured at most {allowed}"


def test_verdict_values_are_wire_strings() -> None:
    assert [v.value for v in Verdict] == ["accept", "reject", "non_deterministic"]
    assert Verdict("non_deterministic") is N


@pytest.mark.parametrize(("comparator", "needs"), [
    ({}, False),
    ({"type": "exact"}, False),
    ({"type": "exact", "ignore": ["outputs/time.txt"]}, True),
    ({"type": "numeric", "files": ["outputs/*.json"]}, True),
    ({"type": "image", "files": ["outputs/*.png"]}, True),
    ({"type": "verifier", "context": "verifier"}, True),
])
def test_needs_provider_files(comparator: dict[str, object], needs: bool) -> None:
    assert needs_provider_files(VerificationSpec.model_validate({"comparator": comparator})) is needs
