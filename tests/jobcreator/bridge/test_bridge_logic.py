"""The bridge's pure rules: reconciling with the chain, deal verdicts, backoff, offer nonces."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lilypad.jobcreator.bridge.logic import (
    ACTIVE_STATES,
    FAULT_POINTS,
    BridgeState,
    backoff_delay,
    deal_verdict,
    offer_nonce,
    reconcile,
)
from lilypad.protocol.deal import AgreementState, JobState

BRIDGE = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"


@pytest.mark.parametrize("local", list(BridgeState))
def test_a_completed_job_is_delivered_whatever_we_thought(local):
    expected = None if local == BridgeState.DELIVERED else BridgeState.DELIVERED
    assert reconcile(local, JobState.COMPLETED) == expected


@pytest.mark.parametrize("local", list(BridgeState))
def test_a_job_failed_on_chain_is_failed_locally(local):
    expected = None if local == BridgeState.FAILED else BridgeState.FAILED
    assert reconcile(local, JobState.FAILED) == expected


def test_funds_taken_before_a_crash_moves_seen_forward():
    assert reconcile(BridgeState.SEEN, JobState.FUNDS_TAKEN) == BridgeState.FUNDS_TAKEN
    for local in (BridgeState.FUNDS_TAKEN, BridgeState.OFFER_POSTED, BridgeState.DEAL_AGREED, BridgeState.RESULTS):
        assert reconcile(local, JobState.FUNDS_TAKEN) is None


def test_a_seen_job_waits_for_its_funds():
    assert reconcile(BridgeState.SEEN, JobState.ADDED) is None


@pytest.mark.parametrize("local", [BridgeState.FUNDS_TAKEN, BridgeState.OFFER_POSTED, BridgeState.RESULTS])
def test_local_progress_the_chain_never_saw_is_refused(local):
    with pytest.raises(ValueError, match="never taken"):
        reconcile(local, JobState.ADDED)


def test_a_job_the_chain_does_not_know_is_refused():
    with pytest.raises(ValueError, match="chain reset"):
        reconcile(BridgeState.SEEN, JobState.NONE)


def test_active_states_are_the_non_terminal_ones():
    assert set(ACTIVE_STATES) == {s for s in BridgeState if s not in (BridgeState.DELIVERED, BridgeState.FAILED)}


def test_deal_verdicts():
    assert deal_verdict(AgreementState.DEAL_AGREED) is None
    assert deal_verdict(AgreementState.RESULTS_SUBMITTED) is None
    assert deal_verdict(AgreementState.RESULTS_CHECKED) is None
    assert deal_verdict(AgreementState.RESULTS_ACCEPTED).deliver
    assert deal_verdict(AgreementState.MEDIATION_ACCEPTED).deliver
    rejected = deal_verdict(AgreementState.MEDIATION_REJECTED)
    assert not rejected.deliver and "rejected" in rejected.reason
    non_deterministic = deal_verdict(AgreementState.MEDIATION_NON_DETERMINISTIC)
    assert non_deterministic.deliver and "non-deterministic" in non_deterministic.reason
    for state in (AgreementState.TIMEOUT_AGREE, AgreementState.TIMEOUT_SUBMIT_RESULTS,
                  AgreementState.TIMEOUT_JUDGE_RESULTS, AgreementState.TIMEOUT_MEDIATE_RESULTS):
        verdict = deal_verdict(state)
        assert verdict is not None and not verdict.deliver and "in time" in verdict.reason


@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=2**32))
def test_backoff_grows_and_is_capped(attempt, seed):
    delay = backoff_delay(attempt, base=0.5, cap=30.0, jitter=random.Random(seed))
    plain = min(30.0, 0.5 * 2 ** (attempt - 1))
    assert plain <= delay <= plain * 1.25


def test_no_backoff_before_the_first_failure():
    assert backoff_delay(0) == 0.0


def test_offer_nonces_are_derived_and_distinct():
    a = offer_nonce(31337, BRIDGE, 1, 0)
    assert a == offer_nonce(31337, BRIDGE, 1, 0)  # the same after a restart
    others = {offer_nonce(31337, BRIDGE, 2, 0), offer_nonce(31337, BRIDGE, 1, 1), offer_nonce(1, BRIDGE, 1, 0),
              offer_nonce(31337, "0x" + "11" * 20, 1, 0)}
    assert len(a) == 32 and a not in others and len(others) == 4


def test_fault_points_cover_every_step():
    assert FAULT_POINTS == ("after-seen", "after-take-funds", "after-offer-posted", "after-agree", "after-accept",
                            "before-callback", "after-callback")
