"""The relayer's pure rules: reconciling with the chain's job, and backoff."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lilypad.jobcreator.bridge.logic import ACTIVE_STATES, FAULT_POINTS, BridgeState, backoff_delay, reconcile
from lilypad.protocol.contract_jobs import ContractJob, JobOptions

ADDRESS = "0x" + "11" * 20


def job(state: int = 1, deal: bytes = bytes(32)) -> ContractJob:
    return ContractJob(id=1, caller=ADDRESS, payee=ADDRESS, module="cowsay:v0.0.1", inputs=("Message=hi",),
                       options=JobOptions(4 * 10**18, 10**17, 3600, 500_000), state=state, attempts=0,
                       held=4 * 10**18, relayer=ADDRESS, deal_id=deal, created_at=0)


@pytest.mark.parametrize("local", list(BridgeState))
def test_a_completed_job_is_delivered_whatever_we_thought(local):
    expected = None if local == BridgeState.DELIVERED else BridgeState.DELIVERED
    assert reconcile(local, job(state=2)) == expected


@pytest.mark.parametrize("local", list(BridgeState))
def test_a_job_failed_on_chain_is_failed_locally(local):
    expected = None if local == BridgeState.FAILED else BridgeState.FAILED
    assert reconcile(local, job(state=3)) == expected


@pytest.mark.parametrize("local", [BridgeState.SEEN, BridgeState.OFFER_POSTED])
def test_a_live_deal_is_followed_whoever_agreed_it(local):
    assert reconcile(local, job(deal=b"\x01" * 32)) == BridgeState.DEAL
    assert reconcile(BridgeState.DEAL, job(deal=b"\x01" * 32)) is None


def test_a_deal_that_ended_without_a_result_frees_the_job_for_the_next_attempt():
    assert reconcile(BridgeState.DEAL, job()) == BridgeState.SEEN
    assert reconcile(BridgeState.SEEN, job()) is None
    assert reconcile(BridgeState.OFFER_POSTED, job()) is None


def test_a_job_the_chain_does_not_know_is_refused():
    with pytest.raises(ValueError, match="chain reset"):
        reconcile(BridgeState.SEEN, None)


def test_active_states_are_the_non_terminal_ones():
    assert set(ACTIVE_STATES) == {s for s in BridgeState if s not in (BridgeState.DELIVERED, BridgeState.FAILED)}


@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=2**32))
def test_backoff_grows_and_is_capped(attempt, seed):
    delay = backoff_delay(attempt, base=0.5, cap=30.0, jitter=random.Random(seed))
    plain = min(30.0, 0.5 * 2 ** (attempt - 1))
    assert plain <= delay <= plain * 1.25


def test_no_backoff_before_the_first_failure():
    assert backoff_delay(0) == 0.0


def test_fault_points_cover_every_step():
    assert FAULT_POINTS == ("after-seen", "after-offer-posted", "after-agree", "after-judge", "after-complete")
