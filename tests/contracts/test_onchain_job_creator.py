"""LilypadOnChainJobCreator: runJob, funds, results callback, failure and refunds."""

from __future__ import annotations

import ape
import pytest

from lilypad.protocol.deal import JobState

TOKEN = 10**18
DEPOSIT = 4 * TOKEN
MAX = 2**256 - 1


@pytest.fixture
def client(project, controller, deployer, job_manager):
    return project.ExampleClient.deploy(controller, sender=deployer)


@pytest.fixture
def ready_payee(token, job_manager, payee, client):
    """The documented flow: approve the job creator, authorise the client contract."""
    token.approve(job_manager, DEPOSIT * 10, sender=payee)
    job_manager.setCallerAllowance(client, MAX, sender=payee)
    return payee


def test_discovery_calls(controller, job_manager, token):
    assert controller.getJobCreatorAddress() == job_manager.address
    assert job_manager.getTokenAddress() == token.address
    assert job_manager.getControllerAddress() == controller.address
    assert job_manager.getRequiredDeposit() == DEPOSIT


def test_client_runs_job_and_receives_results_once(job_manager, token, client, ready_payee, bridge, stranger):
    receipt = client.runCowsay("moo", sender=ready_payee)
    event = receipt.events.filter(job_manager.JobAdded)[0]
    assert event.calling_contract == client.address and event.payee == ready_payee.address
    assert event.module == "cowsay:v0.0.1" and list(event.inputs) == ["Message=moo"]
    job_id = event.id
    assert JobState(job_manager.getJob(job_id).state) == JobState.ADDED

    payee0, bridge0 = token.balanceOf(ready_payee), token.balanceOf(bridge)
    with ape.reverts(job_manager.AccessControlUnauthorizedAccount):
        job_manager.takeFunds(job_id, sender=stranger)
    job_manager.takeFunds(job_id, sender=bridge)
    assert token.balanceOf(ready_payee) == payee0 - DEPOSIT
    assert token.balanceOf(job_manager) == DEPOSIT

    with ape.reverts(job_manager.AccessControlUnauthorizedAccount):
        job_manager.submitResults(job_id, "0xdeal", "bafyfake", sender=stranger)
    receipt = job_manager.submitResults(job_id, "0xdeal", "bafyresult", sender=bridge)
    assert client.results(job_id) == "bafyresult"
    assert receipt.events.filter(client.CowsayResult)[0].dealId == "0xdeal"
    assert JobState(job_manager.getJob(job_id).state) == JobState.COMPLETED
    assert token.balanceOf(bridge) == bridge0 + DEPOSIT
    assert token.balanceOf(job_manager) == 0
    with ape.reverts(job_manager.WrongJobState):  # exactly once
        job_manager.submitResults(job_id, "0xdeal", "bafyother", sender=bridge)
    with ape.reverts(client.NotJobManager):  # nobody else can overwrite the result
        client.submitResults(job_id, "0xdeal", "bafyevil", sender=stranger)


def test_a_caller_cannot_spend_a_payee_who_did_not_authorise_it(project, job_manager, token, payee, deployer,
                                                                stranger):
    token.approve(job_manager, MAX, sender=payee)  # approval alone is not enough
    other = project.ExampleClient.deploy(job_manager.getControllerAddress(), sender=deployer)
    with ape.reverts(job_manager.CallerNotAuthorised):
        other.runCowsay("spend someone else's tokens", sender=stranger)
    with ape.reverts(job_manager.CallerNotAuthorised):
        job_manager.runJob("cowsay:v0.0.1", [], payee, sender=stranger)


def test_caller_allowance_is_spent(job_manager, token, client, payee):
    token.approve(job_manager, MAX, sender=payee)
    job_manager.setCallerAllowance(client, DEPOSIT, sender=payee)
    client.runCowsay("one", sender=payee)
    assert job_manager.getCallerAllowance(payee, client) == 0
    with ape.reverts(job_manager.CallerNotAuthorised):
        client.runCowsay("two", sender=payee)


def test_run_job_requires_allowance_and_sane_inputs(job_manager, token, client, payee):
    job_manager.setCallerAllowance(client, MAX, sender=payee)
    with ape.reverts(job_manager.InsufficientAllowance):
        client.runCowsay("moo", sender=payee)
    with ape.reverts(job_manager.InvalidJob, reason="module must be 1-256 bytes"):
        job_manager.runJob("", [], payee, sender=payee)
    with ape.reverts(job_manager.InvalidJob, reason="more than 64 inputs"):
        job_manager.runJob("cowsay:v0.0.1", ["A=b"] * 65, payee, sender=payee)


def test_legacy_client_written_for_the_published_interface_works_unchanged(project, job_manager, token,
                                                                           deployer, bridge):
    legacy = project.LegacyClient.deploy(job_manager, sender=deployer)
    token.mint(legacy, DEPOSIT, sender=deployer)
    legacy.approve(token, job_manager, DEPOSIT, sender=deployer)
    receipt = legacy.runCowsay("hello", sender=deployer)
    job_id = receipt.events.filter(job_manager.JobAdded)[0].id
    job_manager.takeFunds(job_id, sender=bridge)
    job_manager.submitResults(job_id, "0xdeal", "bafylegacy", sender=bridge)
    assert legacy.results(job_id) == "bafylegacy"


def test_fail_job_refunds_payee_and_notifies_client(job_manager, token, client, ready_payee, bridge):
    job_id = client.runCowsay("moo", sender=ready_payee).events.filter(job_manager.JobAdded)[0].id
    before = token.balanceOf(ready_payee)
    job_manager.takeFunds(job_id, sender=bridge)
    receipt = job_manager.failJob(job_id, "no provider before the deadline", sender=bridge)
    assert token.balanceOf(ready_payee) == before
    assert client.failures(job_id) == "no provider before the deadline"
    event = receipt.events.filter(job_manager.JobFailed)[0]
    assert event.refunded == DEPOSIT and event.notified
    with ape.reverts(job_manager.WrongJobState):
        job_manager.failJob(job_id, "again", sender=bridge)


def test_revoked_allowance_ends_through_the_failure_path(job_manager, token, client, ready_payee, bridge):
    job_id = client.runCowsay("moo", sender=ready_payee).events.filter(job_manager.JobAdded)[0].id
    token.approve(job_manager, 0, sender=ready_payee)
    with ape.reverts():
        job_manager.takeFunds(job_id, sender=bridge)
    receipt = job_manager.failJob(job_id, "insufficient allowance", sender=bridge)
    assert receipt.events.filter(job_manager.JobFailed)[0].refunded == 0
    assert JobState(job_manager.getJob(job_id).state) == JobState.FAILED


def test_anyone_can_time_out_an_abandoned_job(job_manager, token, client, ready_payee, bridge, stranger, chain):
    job_id = client.runCowsay("moo", sender=ready_payee).events.filter(job_manager.JobAdded)[0].id
    job_manager.takeFunds(job_id, sender=bridge)
    before = token.balanceOf(ready_payee)
    with ape.reverts(job_manager.JobNotExpired):
        job_manager.timeoutJob(job_id, sender=stranger)
    chain.mine(timestamp=chain.pending_timestamp + 2 * 3600)
    job_manager.timeoutJob(job_id, sender=stranger)
    assert token.balanceOf(ready_payee) == before + DEPOSIT


@pytest.mark.parametrize("kind", ["RevertingClient", "GasGuzzlerClient"])
def test_hostile_client_callback_fails_job_refunds_and_cannot_take_all_gas(project, job_manager, token,
                                                                           deployer, payee, bridge, kind):
    hostile = getattr(project, kind).deploy(job_manager, sender=deployer)
    token.approve(job_manager, MAX, sender=payee)
    job_manager.setCallerAllowance(hostile, MAX, sender=payee)
    job_id = hostile.run(payee, sender=payee).events.filter(job_manager.JobAdded)[0].id
    job_manager.takeFunds(job_id, sender=bridge)
    before = token.balanceOf(payee)
    receipt = job_manager.submitResults(job_id, "0xdeal", "bafyx", sender=bridge, gas=3_000_000)
    assert JobState(job_manager.getJob(job_id).state) == JobState.FAILED
    assert token.balanceOf(payee) == before + DEPOSIT
    assert receipt.events.filter(job_manager.JobCompleted)[0].callbackSucceeded == 0
    # two bounded callbacks (results, then the failure notice) at 500k gas each, at most
    assert receipt.gas_used < 1_300_000
