"""LilypadOnChainJobCreator (issue 19): the contract is the deal's job creator, the result
comes from the chain, the payee pays what the job cost and gets its change, anyone relays.

Every test drives the real contracts on ape's chain: a client contract written against the
documented interface, a relayer that is just another account, the provider agreeing and
submitting through the controller. Balances are asserted exactly.
"""

from __future__ import annotations

import ape
import pytest

from lilypad.protocol.cid import digest_to_cid
from lilypad.protocol.deal import AgreementState, JobState

TOKEN = 10**18
DEPOSIT = 4 * TOKEN  # the default maximum payment
FEE = TOKEN // 10  # the default relayer fee
MAX = 2**256 - 1
DIGEST = bytes.fromhex("ab" * 32)
#: Cheap enough for the default deposit: 2 LP of payment collateral, 1 wei of judging collateral.
PRICING = {"instruction_price": TOKEN, "payment_collateral": 2 * TOKEN, "mediation_fee": TOKEN}
TIMEOUTS = {"judge_results_collateral": 1, "submit_results_collateral": TOKEN}


@pytest.fixture
def client(project, controller, deployer, job_manager):
    return project.ExampleClient.deploy(controller, sender=deployer)


@pytest.fixture
def ready_payee(token, job_manager, payee, client):
    """The documented flow: approve the job creator, authorise the client contract."""
    token.approve(job_manager, MAX, sender=payee)
    job_manager.setCallerAllowance(client, MAX, sender=payee)
    return payee


@pytest.fixture
def relayer(stranger):
    return stranger


@pytest.fixture
def job(client, job_manager, ready_payee):
    """A cowsay job run by the client with the default options: (id, options)."""
    receipt = client.runCowsay("moo", sender=ready_payee)
    event = receipt.events.filter(job_manager.JobAdded)[0]
    options = receipt.events.filter(job_manager.JobTerms)[0].options
    return event.id, tuple(options)


@pytest.fixture
def bound_deal(make_deal, job_manager):
    """A deal for job ``id`` at ``attempt``: the job creator contract as its job creator and
    the job's nonce."""

    def make(job_id: int, attempt: int = 0, **kw):
        pricing = {**PRICING, **kw.pop("pricing", {})}
        timeouts = {**TIMEOUTS, **kw.pop("timeouts", {})}
        deal = make_deal(job_creator=job_manager.address, pricing=pricing, timeouts=timeouts, **kw)
        return deal.model_copy(update={"nonce": bytes(job_manager.dealNonce(job_id, attempt))})

    return make


def _result(controller, resource_provider, deal, count=1):
    controller.agree(deal.as_tuple(), sender=resource_provider)
    controller.addResult(deal.as_tuple(), DIGEST, count, sender=resource_provider)


def test_discovery_and_defaults(controller, job_manager, token, deployer):
    assert controller.getJobCreatorAddress() == job_manager.address
    assert job_manager.getTokenAddress() == token.address
    assert job_manager.getControllerAddress() == controller.address
    assert job_manager.getRequiredDeposit() == DEPOSIT
    assert tuple(job_manager.getDefaults())[:2] == (DEPOSIT, FEE)
    # The address payees approve is set once: nobody can swap it under them.
    with ape.reverts(controller.JobCreatorAddressFixed):
        controller.setJobCreatorAddress(deployer, sender=deployer)


def test_one_callback_with_the_chains_result_and_the_change_returned(
        controller, job_manager, token, client, ready_payee, relayer, resource_provider, bound_deal, job, balances):
    job_id, options = job
    assert JobState(job_manager.getJob(job_id).state) == JobState.OPEN
    assert token.balanceOf(job_manager) == DEPOSIT  # the deposit is in escrow from runJob on
    deal = bound_deal(job_id)
    payee0, relayer0, provider0 = balances(ready_payee, relayer, resource_provider)
    job_manager.agree(job_id, options, deal.as_tuple(), sender=relayer)
    _result(controller, resource_provider, deal, count=1)
    receipt = job_manager.judge(job_id, options, deal.as_tuple(), sender=relayer)

    cid = digest_to_cid(DIGEST)
    assert client.results(job_id) == cid  # the CID stored on-chain, and nothing else
    delivered = receipt.events.filter(client.CowsayResult)
    assert len(delivered) == 1 and delivered[0].dealId == "0x" + deal.deal_id.hex()
    completed = receipt.events.filter(job_manager.JobCompleted)[0]
    assert completed.dataId == cid and completed.callbackSucceeded
    # The payee paid the job cost (1 instruction at 1 LP) and the relayer's fee; the rest came back.
    assert balances(ready_payee, relayer, resource_provider) == [
        payee0 + DEPOSIT - TOKEN - FEE, relayer0 + FEE, provider0 + TOKEN]
    assert token.balanceOf(job_manager) == 0
    assert JobState(job_manager.getJob(job_id).state) == JobState.COMPLETED


def test_the_delivered_texts_are_the_cid_and_deal_id_python_computes(
        controller, job_manager, client, ready_payee, relayer, resource_provider, bound_deal):
    """The contract writes the CID (base32) and the deal id (hex) itself, byte by byte: every
    base32 digit and every hex digit, the edges (all but one bit zero, all one bits; an all-zero digest is no result) and a digest whose
    last 3 bits are set (the padded last digit)."""
    every_digit = bytes.fromhex("00443214c74254b635cf84653a56d7c675be77df00443214c74254b635cf8465")
    assert set(digest_to_cid(every_digit)[8:]) == set("abcdefghijklmnopqrstuvwxyz234567")
    digests = [every_digit, bytes(31) + b"\x01", b"\xff" * 32, bytes(range(32)), bytes(31) + b"\x07", b"\x80" + bytes(31)]
    for digest in digests:
        receipt = client.runCowsay("moo", sender=ready_payee)
        job_id = receipt.events.filter(job_manager.JobAdded)[0].id
        options = tuple(receipt.events.filter(job_manager.JobTerms)[0].options)
        deal = bound_deal(job_id)
        job_manager.agree(job_id, options, deal.as_tuple(), sender=relayer)
        controller.agree(deal.as_tuple(), sender=resource_provider)
        controller.addResult(deal.as_tuple(), digest, 1, sender=resource_provider)
        receipt = job_manager.judge(job_id, options, deal.as_tuple(), sender=relayer)
        (delivered,) = receipt.events.filter(client.CowsayResult)
        assert delivered.dataId == digest_to_cid(digest) == client.results(job_id), digest.hex()
        assert delivered.dealId == "0x" + deal.deal_id.hex()


def test_no_role_can_deliver_another_result(
        controller, job_manager, client, ready_payee, relayer, deployer, resource_provider, bound_deal, job,
        make_deal, stranger):
    job_id, options = job
    # The old bridge entry point delivers nothing, for anyone.
    for who in (deployer, relayer):
        with ape.reverts(job_manager.ResultsComeFromTheChain):
            job_manager.submitResults(job_id, "0xdeal", "bafyfake", sender=who)
    # A deal that is not bound to the job (another nonce, another job creator) is refused.
    unbound = bound_deal(job_id).model_copy(update={"nonce": b"\x01" * 32})
    with ape.reverts(job_manager.DealNotBound):
        job_manager.agree(job_id, options, unbound.as_tuple(), sender=relayer)
    foreign = make_deal(pricing=PRICING, timeouts=TIMEOUTS).model_copy(
        update={"nonce": bytes(job_manager.dealNonce(job_id, 0))})
    with ape.reverts(job_manager.DealNotBound):
        job_manager.agree(job_id, options, foreign.as_tuple(), sender=relayer)
    deal = bound_deal(job_id)
    job_manager.agree(job_id, options, deal.as_tuple(), sender=relayer)
    _result(controller, resource_provider, deal)
    # Judging with other terms (say, a deal whose result the relayer chose) is refused.
    other = bound_deal(job_id, pricing={"instruction_price": TOKEN // 2})
    with ape.reverts(job_manager.DealNotBound):
        job_manager.judge(job_id, options, other.as_tuple(), sender=relayer)
    # Nobody but the job creator contract reaches the client's callback.
    with ape.reverts(client.NotJobManager):
        client.submitResults(job_id, "0xdeal", "bafyevil", sender=stranger)


def test_two_relayers_race_and_the_job_completes_exactly_once(
        controller, job_manager, token, client, ready_payee, relayer, job_creator, resource_provider, bound_deal,
        job, balances):
    job_id, options = job
    other_relayer = job_creator
    deal = bound_deal(job_id)
    job_manager.agree(job_id, options, deal.as_tuple(), sender=relayer)
    with ape.reverts(job_manager.DealLive):  # the second relayer's agree reverts, costing the client nothing
        job_manager.agree(job_id, options, deal.as_tuple(), sender=other_relayer)
    _result(controller, resource_provider, deal)
    payee0, first0, second0 = balances(ready_payee, relayer, other_relayer)
    job_manager.judge(job_id, options, deal.as_tuple(), sender=other_relayer)  # anyone may judge
    for step in (lambda who: job_manager.judge(job_id, options, deal.as_tuple(), sender=who),
                 lambda who: job_manager.complete(job_id, options, sender=who)):
        with ape.reverts(job_manager.WrongJobState):
            step(relayer)
    # The fee goes to the relayer that agreed the deal which delivered, not to whoever judged.
    assert balances(ready_payee, relayer, other_relayer) == [payee0 + DEPOSIT - TOKEN - FEE, first0 + FEE, second0]
    assert client.results(job_id) == digest_to_cid(DIGEST)


def test_a_reverting_callback_does_not_refund_a_delivered_result(
        project, controller, job_manager, token, payee, relayer, resource_provider, bound_deal, deployer, balances):
    hostile = project.RevertingClient.deploy(job_manager, sender=deployer)
    token.approve(job_manager, MAX, sender=payee)
    job_manager.setCallerAllowance(hostile, MAX, sender=payee)
    receipt = hostile.run(payee, sender=payee)
    job_id = receipt.events.filter(job_manager.JobAdded)[0].id
    options = tuple(receipt.events.filter(job_manager.JobTerms)[0].options)
    deal = bound_deal(job_id)
    payee0 = token.balanceOf(payee)
    job_manager.agree(job_id, options, deal.as_tuple(), sender=relayer)
    _result(controller, resource_provider, deal)
    receipt = job_manager.judge(job_id, options, deal.as_tuple(), sender=relayer)
    assert not receipt.events.filter(job_manager.JobCompleted)[0].callbackSucceeded
    # The result is public; the client pays for it all the same.
    assert token.balanceOf(payee) == payee0 + DEPOSIT - TOKEN - FEE
    assert JobState(job_manager.getJob(job_id).state) == JobState.COMPLETED


def test_a_job_cannot_be_timed_out_while_its_deal_is_live(
        controller, job_manager, ready_payee, relayer, resource_provider, bound_deal, job, advance):
    job_id, options = job
    deal = bound_deal(job_id)
    job_manager.agree(job_id, options, deal.as_tuple(), sender=relayer)
    _result(controller, resource_provider, deal)
    advance(options[2] + 1)  # past the job's timeout
    with ape.reverts(job_manager.DealLive):
        job_manager.timeoutJob(job_id, options, sender=ready_payee)
    with ape.reverts(job_manager.DealLive):
        job_manager.cancelJob(job_id, options, sender=ready_payee)


def test_a_provider_that_never_delivers_pays_the_payee_and_the_job_is_retried(
        controller, job_manager, token, ready_payee, relayer, resource_provider, bound_deal, job, advance,
        balances):
    job_id, options = job
    deal = bound_deal(job_id)
    job_manager.agree(job_id, options, deal.as_tuple(), sender=relayer)
    controller.agree(deal.as_tuple(), sender=resource_provider)
    advance(deal.timeouts.submit_results + 1)
    controller.timeoutSubmitResult(deal.as_tuple(), sender=relayer)
    job_manager.complete(job_id, options, sender=relayer)
    j = job_manager.getJob(job_id)
    # The provider's submit collateral now belongs to the job; the job is open for a second deal.
    assert (JobState(j.state), j.attempts, j.held) == (JobState.OPEN, 1, DEPOSIT + TOKEN)
    with ape.reverts(job_manager.DealNotBound):  # the first deal's nonce is spent
        job_manager.agree(job_id, options, deal.as_tuple(), sender=relayer)
    payee0 = token.balanceOf(ready_payee)
    job_manager.cancelJob(job_id, options, sender=ready_payee)
    assert token.balanceOf(ready_payee) == payee0 + DEPOSIT + TOKEN
    assert token.balanceOf(job_manager) == 0


def test_a_rejected_result_refunds_the_payee_with_the_providers_collateral(
        project, controller, storage, job_manager, token, client, payee, relayer, resource_provider, bound_deal, mediators,
        balances, deployer):
    # A client that asks for every result to be checked.
    token.approve(job_manager, MAX, sender=payee)
    options = (DEPOSIT, FEE, 3600, 500_000, 10_000, "0x" + "00" * 20)
    receipt = job_manager.runJobWithOptions("cowsay:v0.0.1", ["Message=moo"], payee, options, sender=payee)
    job_id = receipt.events.filter(job_manager.JobAdded)[0].id
    deal = bound_deal(job_id, mediators=[mediators[0]])
    job_manager.agree(job_id, options, deal.as_tuple(), sender=relayer)
    _result(controller, resource_provider, deal)
    job_manager.judge(job_id, options, deal.as_tuple(), sender=relayer)  # checked: the fee from the deposit
    assert AgreementState(storage.getAgreement(deal.deal_id).state) == AgreementState.RESULTS_CHECKED
    controller.assignMediator(deal.as_tuple(), sender=relayer)
    controller.mediationRejectResult(deal.as_tuple(), sender=mediators[0])
    payee0 = token.balanceOf(payee)
    job_manager.complete(job_id, options, sender=relayer)
    assert JobState(job_manager.getJob(job_id).state) == JobState.OPEN  # free for another provider
    job_manager.cancelJob(job_id, options, sender=payee)
    # Deposit, less the mediation fee, plus the provider's results collateral (2 x the 1 LP job cost).
    assert token.balanceOf(payee) == payee0 + DEPOSIT - TOKEN + 2 * TOKEN
    assert token.balanceOf(job_manager) == 0


def test_a_job_costs_at_most_its_maximum_and_goes_only_to_its_target(
        job_manager, token, payee, relayer, bound_deal, accounts, resource_provider):
    token.approve(job_manager, MAX, sender=payee)
    target = accounts[5]
    options = (3 * TOKEN, FEE, 3600, 500_000, 0, target.address)
    receipt = job_manager.runJobWithOptions("cowsay:v0.0.1", [], payee, options, sender=payee)
    job_id = receipt.events.filter(job_manager.JobAdded)[0].id
    assert token.balanceOf(job_manager) == 3 * TOKEN
    dear = bound_deal(job_id, resource_provider=target, pricing={"payment_collateral": 3 * TOKEN})
    with ape.reverts(job_manager.DealTooExpensive):  # 3 LP + 1 wei + the relayer fee > 3 LP
        job_manager.agree(job_id, options, dear.as_tuple(), sender=relayer)
    elsewhere = bound_deal(job_id, resource_provider=resource_provider)
    with ape.reverts(job_manager.NotTargetProvider):
        job_manager.agree(job_id, options, elsewhere.as_tuple(), sender=relayer)


def test_no_role_touches_a_job_in_flight(job_manager, token, deployer, ready_payee, client, job, advance,
                                         stranger):
    job_id, options = job
    # A job's options are its own: other options (a longer timeout, more callback gas) are refused.
    longer = (*options[:2], 2**32 - 1, *options[3:])
    with ape.reverts(job_manager.WrongOptions):
        job_manager.timeoutJob(job_id, longer, sender=stranger)
    # Options out of bounds are refused outright.
    for bad in ((DEPOSIT, FEE, 2**32 - 1, 500_000, 0, "0x" + "00" * 20),
                (DEPOSIT, FEE, 3600, 2**32 - 1, 0, "0x" + "00" * 20),
                (DEPOSIT, DEPOSIT + 1, 3600, 500_000, 0, "0x" + "00" * 20)):
        with ape.reverts(job_manager.InvalidOptions):
            job_manager.runJobWithOptions("cowsay:v0.0.1", [], ready_payee, bad, sender=ready_payee)
    # The admin's new defaults wait out the delay and never apply to a job already made.
    raised = (100 * DEPOSIT, FEE, 3600, 500_000, 0, "0x" + "00" * 20)
    with ape.reverts(job_manager.AccessControlUnauthorizedAccount):
        job_manager.proposeDefaults(raised, sender=stranger)
    job_manager.proposeDefaults(raised, sender=deployer)
    with ape.reverts(job_manager.DefaultsNotReady):
        job_manager.applyDefaults(sender=stranger)
    advance(2 * 24 * 3600 + 1)
    job_manager.applyDefaults(sender=stranger)
    assert job_manager.getRequiredDeposit() == 100 * DEPOSIT
    payee0 = token.balanceOf(ready_payee)
    job_manager.timeoutJob(job_id, options, sender=stranger)  # the old job ends on its own terms
    assert token.balanceOf(ready_payee) == payee0 + DEPOSIT


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


def test_the_bounded_example_client_pays_at_most_its_maximum(
        project, controller, job_manager, token, payee, relayer, resource_provider, bound_deal, deployer, balances):
    bounded = project.ExampleBoundedClient.deploy(controller, sender=deployer)
    token.approve(job_manager, MAX, sender=payee)
    job_manager.setCallerAllowance(bounded, MAX, sender=payee)
    payee0 = token.balanceOf(payee)
    receipt = bounded.run("cowsay:v0.0.1", ["Message=bounded"], 3 * TOKEN, 0, resource_provider, sender=payee)
    job_id = receipt.events.filter(job_manager.JobAdded)[0].id
    options = tuple(receipt.events.filter(job_manager.JobTerms)[0].options)
    assert options[0] == 3 * TOKEN and options[5].lower() == resource_provider.address.lower()
    assert token.balanceOf(payee) == payee0 - 3 * TOKEN  # the maximum, in escrow
    deal = bound_deal(job_id, resource_provider=resource_provider)
    job_manager.agree(job_id, options, deal.as_tuple(), sender=relayer)
    _result(controller, resource_provider, deal, count=2)  # two instructions: 2 LP
    job_manager.judge(job_id, options, deal.as_tuple(), sender=relayer)
    assert bounded.results(job_id) == digest_to_cid(DIGEST)
    assert token.balanceOf(payee) == payee0 - 2 * TOKEN - FEE  # what it cost, and not a wei more
