"""LilypadContracts: every protocol action through the wrappers, with exact balances."""

from __future__ import annotations

import ape
import pytest
from ape.exceptions import ContractLogicError
from eth_abi import encode
from eth_utils import keccak

from lilypad.chain.contracts import Agreement, Escrow, LilypadContracts, Panel, Pot, Reputation
from lilypad.chain.tx import is_custom_error
from lilypad.exceptions import ChainError
from lilypad.protocol.cid import cid_to_digest
from lilypad.protocol.deal import AgreementState
from lilypad.protocol.settings import ProtocolSettings

TOKEN = 10**18
MAX = 2**256 - 1
RESULT = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"


def test_wrappers_point_at_the_deployment(contracts, deployment, deployed):
    _, instances = deployed
    for key, instance in instances.items():
        assert getattr(contracts, key).address == instance.address == deployment.contracts[key]
    assert contracts.controller.getPaymentsAddress() == contracts.payments.address
    assert contracts.addresses == deployment.contracts


def test_happy_path_pays_exactly(contracts, make_deal, job_creator, resource_provider, chain):
    deal = make_deal()
    jc0, rp0 = contracts.balance_of(job_creator), contracts.balance_of(resource_provider)
    assert contracts.agreement(deal) == Agreement(AgreementState.NONE, False, False, 0, 0, 0, 0, 0, 0)
    assert contracts.result(deal) == (None, 0)

    assert contracts.ensure_allowance(job_creator, deal.job_creator_deposit) is not None
    assert contracts.ensure_allowance(resource_provider, deal.resource_provider_deposit) is not None
    contracts.agree(deal, job_creator)
    a = contracts.agreement(deal)
    assert a.state == AgreementState.DEAL_NEGOTIATING and a.job_creator_agreed and not a.resource_provider_agreed
    assert a.timeout_at(deal) == a.created_at + 100
    receipt = contracts.agree(deal, resource_provider)
    a = contracts.agreement(deal.deal_id)
    assert a.state == AgreementState.DEAL_AGREED and a.job_creator_agreed and a.resource_provider_agreed
    assert a.agreed_at == chain.blocks[receipt.block_number].timestamp
    assert a.timeout_at(deal) == a.agreed_at + 200
    # job creator escrows payment collateral 5 + judge collateral 3; provider submit collateral 2
    assert contracts.escrow(deal) == Escrow(job_creator=8 * TOKEN, resource_provider=2 * TOKEN, settled=False)
    assert contracts.balance_of(job_creator) == jc0 - 8 * TOKEN
    assert contracts.balance_of(resource_provider) == rp0 - 2 * TOKEN
    assert contracts.balance_of(contracts.payments) == 10 * TOKEN
    # the allowances were exactly used up
    assert contracts.allowance(job_creator) == 0 and contracts.allowance(resource_provider) == 0

    # results collateral = 2 x (1 x 2 instructions) = 4: 2 more than the submit collateral
    contracts.ensure_allowance(resource_provider, 2 * TOKEN)
    receipt = contracts.add_result(deal, RESULT, 2, resource_provider)
    assert contracts.state(deal) == AgreementState.RESULTS_SUBMITTED
    assert contracts.result(deal) == (RESULT, 2)
    assert bytes(contracts.storage.getResult(deal.deal_id).dataCid) == cid_to_digest(RESULT)
    assert receipt.events.filter(contracts.controller.ResultAdded)[0].dataCid == cid_to_digest(RESULT)
    assert contracts.agreement(deal).results_block == receipt.block_number
    assert contracts.escrow(deal) == Escrow(8 * TOKEN, 4 * TOKEN, False)
    assert contracts.balance_of(resource_provider) == rp0 - 4 * TOKEN
    # reads pinned to the block before addResult still see the old figures
    before = receipt.block_number - 1
    assert contracts.escrow(deal, block_id=before) == Escrow(8 * TOKEN, 2 * TOKEN, False)
    assert contracts.balance_of(resource_provider, block_id=before) == rp0 - 2 * TOKEN
    assert contracts.balance_of(resource_provider, block_id=receipt.block_number) == rp0 - 4 * TOKEN
    assert contracts.agreement(deal).instruction_count == 2

    contracts.accept_result(deal, job_creator)
    assert contracts.state(deal) == AgreementState.RESULTS_ACCEPTED
    assert contracts.agreement(deal).timeout_at(deal) is None
    # the provider earns the job cost (2); the job creator pays exactly that
    assert contracts.balance_of(job_creator) == jc0 - 2 * TOKEN
    assert contracts.balance_of(resource_provider) == rp0 + 2 * TOKEN
    assert contracts.balance_of(contracts.payments) == 0
    # settled: the account holds nothing and records what it paid the job creator (5 + 3 - 2)
    assert contracts.escrow(deal) == Escrow(6 * TOKEN, 0, True)
    # the counters, then the job cost paid (2) and none verified by a mediation panel
    assert contracts.reputation(resource_provider) == Reputation(1, 1, 1, 0, 0, 0, 0, 0, 2 * TOKEN, 0)


def test_ensure_allowance_is_idempotent(contracts, job_creator, chain):
    spender = contracts.payments
    assert contracts.allowance(job_creator) == 0
    receipt = contracts.ensure_allowance(job_creator, 5 * TOKEN)
    assert receipt is not None and receipt.events.filter(contracts.token.Approval)[0].value == 5 * TOKEN
    height = chain.blocks.height
    assert contracts.ensure_allowance(job_creator, 5 * TOKEN) is None
    assert contracts.ensure_allowance(job_creator, 3 * TOKEN) is None  # more than enough already
    assert chain.blocks.height == height  # no transaction was sent
    assert contracts.allowance(job_creator, spender) == 5 * TOKEN
    receipt = contracts.ensure_allowance(job_creator, 7 * TOKEN)  # short: approves the new amount
    assert receipt is not None and contracts.allowance(job_creator) == 7 * TOKEN
    assert contracts.ensure_allowance(job_creator, 7 * TOKEN) is None
    assert chain.blocks.height == height + 1


def test_an_unlimited_allowance_is_approved_once_and_never_used_up(contracts, make_deal, resource_provider,
                                                                   job_creator, chain):
    from lilypad.chain.contracts import UNLIMITED_ALLOWANCE

    assert contracts.ensure_allowance(resource_provider, 2 * TOKEN, unlimited=True) is not None
    assert contracts.allowance(resource_provider) == UNLIMITED_ALLOWANCE
    deal = make_deal()
    contracts.ensure_allowance(job_creator, deal.job_creator_deposit)
    contracts.agree(deal, job_creator)
    contracts.agree(deal, resource_provider)  # transferFrom leaves an unlimited allowance as it was
    assert contracts.allowance(resource_provider) == UNLIMITED_ALLOWANCE
    height = chain.blocks.height
    assert contracts.ensure_allowance(resource_provider, 10**9 * TOKEN, unlimited=True) is None
    assert chain.blocks.height == height


def test_revert_surfaces_its_custom_error(contracts, make_deal, job_creator, solver):
    deal = make_deal()
    with ape.reverts(contracts.controller.WrongState):
        contracts.accept_result(deal, job_creator)
    with ape.reverts(contracts.controller.NotADealParty):
        contracts.agree(deal, solver)
    assert contracts.state(deal) == AgreementState.NONE


def test_mediation_draw_assign_and_accept(contracts, make_deal, agreed, job_creator, resource_provider,
                                          mediators, signer, chain):
    deal = make_deal()
    agreed(deal)
    contracts.ensure_allowance(resource_provider, 2 * TOKEN)
    contracts.add_result(deal, RESULT, 2, resource_provider)
    assert contracts.panel(deal) == Panel(0, 0, 0, 0, 0, False, False, ())  # not checked
    assert contracts.draw_panel(deal) is None
    jc0, rp0 = contracts.balance_of(job_creator), contracts.balance_of(resource_provider)
    balances0 = {m.address: contracts.balance_of(m) for m in mediators}

    receipt = contracts.check_result(deal, job_creator)  # escrows the mediation fee (1)
    assert contracts.state(deal) == AgreementState.RESULTS_CHECKED
    assert contracts.balance_of(job_creator) == jc0 - 1 * TOKEN
    check_block = receipt.block_number
    assert contracts.panel(deal) == Panel(check_block, 1, 1, 0, 0, False, False, ())
    # At the head, the contract's draw is not ready (a call reverts with DrawNotReady); the
    # SDK reads it in the pending block, where an assignMediator sent now would run ...
    assert chain.blocks.height == check_block
    pending_draw = contracts.draw_panel(deal)
    with pytest.raises(ContractLogicError) as raised:
        contracts.mediation.drawPanel(deal.deal_id, list(deal.members.mediators), 0)
    assert is_custom_error(raised.value, contracts.mediation, "DrawNotReady")
    assert not is_custom_error(raised.value, contracts.mediation, "MediationNotRequested")
    chain.mine()  # ... once a block is built on it, it is: position keccak(hash, id, round 1, 0) % 3
    word = keccak(encode(["bytes32", "bytes32", "uint8", "uint256"],
                         [bytes(chain.blocks[check_block].hash), deal.deal_id, 1, 0]))
    expected = deal.members.mediators[int.from_bytes(word, "big") % len(deal.members.mediators)]
    assert contracts.draw_panel(deal) == (expected,) == pending_draw  # the pending read saw the same draw

    # the wrong mediators cannot judge
    for m in mediators:
        if m.address != expected:
            with ape.reverts(contracts.controller.NotChosenMediator):
                contracts.mediation_accept(deal, m)
    assert contracts.assign_mediator(deal, resource_provider) == (expected,)  # anyone may fix it
    assert contracts.panel(deal).assigned and contracts.panel(deal).members == (expected,)
    assert contracts.draw_panel(deal) == (expected,)  # now read from the stored panel

    contracts.mediation_accept(deal, signer(expected))
    assert contracts.state(deal) == AgreementState.MEDIATION_ACCEPTED
    # as accept (job cost 2 to the provider, who gets its collateral 4 back); the fee to the mediator
    assert contracts.balance_of(job_creator) == jc0 - 1 * TOKEN + (5 - 2 + 3) * TOKEN
    assert contracts.balance_of(resource_provider) == rp0 + (2 + 4) * TOKEN
    for m in mediators:
        bonus = TOKEN if m.address == expected else 0
        assert contracts.balance_of(m) == balances0[m.address] + bonus
    assert contracts.escrow(deal) == Escrow((5 - 2 + 3) * TOKEN, 0, True)  # what the job creator got back
    rep = contracts.reputation(resource_provider)
    assert rep.mediations_passed == 1 and rep.value_paid == rep.value_verified == 2 * TOKEN


def test_mediation_reject(contracts, make_deal, agreed, job_creator, resource_provider, signer, chain):
    deal = make_deal()
    agreed(deal)
    contracts.ensure_allowance(resource_provider, 2 * TOKEN)
    contracts.add_result(deal, RESULT, 2, resource_provider)
    jc0, rp0 = contracts.balance_of(job_creator), contracts.balance_of(resource_provider)
    contracts.check_result(deal, job_creator)
    chain.mine()
    (drawn,) = contracts.draw_panel(deal)
    mediator = signer(drawn)
    m0 = contracts.balance_of(mediator)
    contracts.mediation_reject(deal, mediator)
    assert contracts.state(deal) == AgreementState.MEDIATION_REJECTED
    # job creator: its 8 back plus the provider's results collateral 4, less the fee it paid
    assert contracts.balance_of(job_creator) == jc0 - 1 * TOKEN + (8 + 4) * TOKEN
    assert contracts.balance_of(resource_provider) == rp0
    assert contracts.balance_of(mediator) == m0 + TOKEN
    rep = contracts.reputation(resource_provider)
    assert rep.mediations_failed == 1 and rep.value_paid == rep.value_verified == 0



def test_mediation_non_deterministic(contracts, make_deal, agreed, job_creator, resource_provider, signer, chain):
    deal = make_deal()
    agreed(deal)
    contracts.ensure_allowance(resource_provider, 2 * TOKEN)
    contracts.add_result(deal, RESULT, 2, resource_provider)
    jc0, rp0 = contracts.balance_of(job_creator), contracts.balance_of(resource_provider)
    contracts.check_result(deal, job_creator)
    chain.mine()
    (drawn,) = contracts.draw_panel(deal)
    mediator = signer(drawn)
    m0 = contracts.balance_of(mediator)
    contracts.mediation_non_deterministic(deal, mediator)
    assert contracts.state(deal) == AgreementState.MEDIATION_NON_DETERMINISTIC
    # job creator: paymentCollateral 5 less the job cost 2 back, less the fee it paid
    assert contracts.balance_of(job_creator) == jc0 - 1 * TOKEN + (5 - 2) * TOKEN
    # provider: job cost 2 + its results collateral 4 + the job creator's judging collateral 3
    assert contracts.balance_of(resource_provider) == rp0 + (2 + 4 + 3) * TOKEN
    assert contracts.balance_of(mediator) == m0 + TOKEN
    assert contracts.escrow(deal) == Escrow((5 - 2) * TOKEN, 0, True)  # what the job creator got back
    rep = contracts.reputation(resource_provider)
    assert rep.mediations_passed == 1 and (rep.value_paid, rep.value_verified) == (2 * TOKEN, 0)


def test_a_draw_nobody_fixed_in_time_reads_as_none_and_assign_redraws_it(contracts, make_deal, agreed, job_creator,
                                                                         resource_provider, stranger, chain):
    deal = make_deal()
    agreed(deal)
    contracts.ensure_allowance(resource_provider, 2 * TOKEN)
    contracts.add_result(deal, RESULT, 2, resource_provider)
    contracts.ensure_allowance(job_creator, TOKEN)
    contracts.check_result(deal, job_creator)
    first = contracts.panel(deal)
    chain.mine(300)  # the draw block's hash is out of BLOCKHASH's reach
    assert first.draw_forgotten(contracts.head_block())
    assert contracts.draw_panel(deal) is None
    assert contracts.assign_mediator(deal, stranger) == ()  # nothing fixed: drawn afresh from this block
    redrawn = contracts.panel(deal)
    assert (redrawn.round, redrawn.assigned) == (1, False) and redrawn.draw_block == contracts.head_block()
    assert not redrawn.draw_forgotten(contracts.head_block())
    chain.mine()
    (chosen,) = contracts.draw_panel(deal)
    assert contracts.assign_mediator(deal, stranger) == (chosen,)


def test_protocol_settings_versions_and_the_pot(contracts, deployer, stranger):
    assert contracts.get_settings_version() == 0
    assert contracts.current_protocol_settings() == (0, ProtocolSettings())  # version 0: everything off
    assert contracts.get_pot() == Pot(jackpot=0, treasury=0)
    settings = ProtocolSettings(tax_bps=100, treasury_share_bps=2_000, audit_bps=500, reward_bps=1_000,
                                min_mediator_stake=7 * TOKEN, mediator_slash=TOKEN)
    with ape.reverts(contracts.controller.AccessControlUnauthorizedAccount):
        contracts.set_protocol_settings(settings, stranger)
    contracts.set_protocol_settings(settings, deployer)
    assert contracts.current_protocol_settings() == (1, settings)
    assert contracts.get_protocol_settings(0) == ProtocolSettings()  # a version never changes
    assert contracts.min_mediator_stake() == 7 * TOKEN


@pytest.mark.parametrize(
    ("stage", "method", "final"),
    [
        ("negotiating", "timeout_agree", AgreementState.TIMEOUT_AGREE),
        ("agreed", "timeout_submit_result", AgreementState.TIMEOUT_SUBMIT_RESULTS),
        ("submitted", "timeout_judge_result", AgreementState.TIMEOUT_JUDGE_RESULTS),
        ("checked", "timeout_mediate_result", AgreementState.TIMEOUT_MEDIATE_RESULTS),
    ],
)
def test_timeouts(contracts, make_deal, agreed, job_creator, resource_provider, mediators, chain,
                  stage, method, final):
    deal = make_deal()
    if stage == "negotiating":
        contracts.ensure_allowance(job_creator, deal.job_creator_deposit)
        contracts.agree(deal, job_creator)
    else:
        agreed(deal)
    if stage in ("submitted", "checked"):
        contracts.ensure_allowance(resource_provider, 2 * TOKEN)
        contracts.add_result(deal, RESULT, 2, resource_provider)
    if stage == "checked":
        contracts.check_result(deal, job_creator)
    deadline = contracts.agreement(deal).timeout_at(deal)
    with ape.reverts(contracts.controller.TimeoutNotExpired):
        getattr(contracts, method)(deal, mediators[0])
    chain.mine(timestamp=deadline)
    stranger = mediators[0]  # anyone may trigger a timeout
    getattr(contracts, method)(deal, stranger)
    rounds = 1
    while stage == "checked" and contracts.state(deal) == AgreementState.RESULTS_CHECKED:
        # nobody judged: each round's timeout draws a new one from the mediators not yet silent on it
        rounds += 1
        assert contracts.panel(deal).round == rounds
        chain.mine(timestamp=contracts.agreement(deal).timeout_at(deal))
        getattr(contracts, method)(deal, stranger)
    assert rounds == (3 if stage == "checked" else 1)
    assert contracts.state(deal) == final
    assert contracts.escrow(deal).settled


def test_timeout_picks_the_one_for_the_state(contracts, make_deal, agreed, mediators, chain):
    deal = make_deal()
    agreed(deal)
    chain.mine(timestamp=contracts.agreement(deal).timeout_at(deal))
    contracts.timeout(deal, mediators[1])
    assert contracts.state(deal) == AgreementState.TIMEOUT_SUBMIT_RESULTS
    with pytest.raises(ValueError, match="TIMEOUT_SUBMIT_RESULTS has no timeout"):
        contracts.timeout(deal, mediators[1])


def test_contract_jobs_are_read_and_relayed(contracts, project, deployer, payee, bridge, stranger, make_deal,
                                            resource_provider):
    from lilypad.protocol.cid import digest_to_cid
    from lilypad.protocol.contract_jobs import contract_deal_nonce

    client = project.ExampleClient.deploy(contracts.controller, sender=deployer)
    deposit = contracts.required_deposit()
    defaults = contracts.job_defaults()
    assert deposit == defaults.max_payment == 4 * TOKEN
    assert contracts.ensure_allowance(payee, 2 * deposit, spender=contracts.job_creator) is not None
    contracts.job_creator.setCallerAllowance(client, MAX, sender=payee)
    payee0 = contracts.balance_of(payee)
    first = client.runCowsay("moo", sender=payee).events.filter(contracts.job_creator.JobAdded)[0].id
    second = client.runCowsay("baa", sender=payee).events.filter(contracts.job_creator.JobAdded)[0].id
    job = contracts.contract_job(first)
    assert job is not None and job.open and job.live_deal is None
    assert (job.caller, job.payee, job.module, job.inputs, job.options, job.held, job.attempts) == (
        client.address, payee.address, "cowsay:v0.0.1", ("Message=moo",), defaults, deposit, 0)
    assert contracts.contract_job(999) is None
    assert contracts.balance_of(payee) == payee0 - 2 * deposit  # both deposits in escrow at runJob
    nonce = contract_deal_nonce(contracts.job_creator.address, first, 0)
    assert contracts.contract_deal_nonce(first, 0) == nonce  # the Python derivation is the contract's

    deal = make_deal(job_creator=contracts.job_creator.address,
                     pricing={"payment_collateral": 2 * TOKEN},
                     timeouts={"judge_results_collateral": 1, "submit_results_collateral": 1}
                     ).model_copy(update={"nonce": nonce})
    contracts.relay_agree(job, deal, bridge)
    assert contracts.contract_job(first).live_deal == deal.deal_id
    with ape.reverts(contracts.job_creator.DealLive):  # a second relayer, too late
        contracts.relay_agree(job, deal, stranger)
    contracts.ensure_allowance(resource_provider, 10 * TOKEN)
    contracts.agree(deal, resource_provider)
    contracts.add_result(deal, RESULT, 1, resource_provider)
    contracts.relay_judge(job, deal, stranger)  # accepted and settled at once: the job completes
    assert contracts.contract_job(first).state == 2
    assert client.results(first) == RESULT == digest_to_cid(cid_to_digest(RESULT))
    with ape.reverts(contracts.job_creator.WrongJobState):  # exactly once
        contracts.relay_complete(job, stranger)

    receipt = contracts.cancel_contract_job(contracts.contract_job(second), payee)
    failed = receipt.events.filter(contracts.job_creator.JobFailed)[0]
    assert failed.reason == "job cancelled" and failed.refunded == deposit
    assert contracts.contract_job(second).state == 3
    assert contracts.balance_of(payee) == payee0 - TOKEN - defaults.relayer_fee  # the first job's cost only
    assert contracts.balance_of(contracts.job_creator) == 0


def test_events_are_found_by_name(contracts):
    assert [e.contract.address for e in contracts.find_events("AgreementStateChanged")] == [
        contracts.storage.address
    ]
    assert {e.contract.address for e in contracts.find_events("RoleGranted")} == {
        contracts.token.address, contracts.controller.address, contracts.job_creator.address
    }
    with pytest.raises(ChainError, match="NoSuchEvent"):
        contracts.find_events("NoSuchEvent")


def test_missing_contract_in_deployment_is_refused(deployment):
    broken = deployment.model_copy(update={"contracts": {k: v for k, v in deployment.contracts.items()
                                                          if k != "mediation"}})
    with pytest.raises(ChainError, match="lacks mediation"):
        LilypadContracts(broken)


def test_contract_types_come_from_the_repository_not_the_cwd(deployment, tmp_path, monkeypatch):
    from lilypad.chain.contracts import load_contract_containers, project_root

    monkeypatch.chdir(tmp_path)
    assert (project_root() / "ape-config.yaml").is_file() and project_root() != tmp_path
    containers = load_contract_containers()
    assert containers["controller"].contract_type.name == "LilypadController"
    assert LilypadContracts(deployment).controller.getPaymentsAddress() == deployment.contracts["payments"]
    monkeypatch.setenv("LILYPAD_PROJECT_ROOT", str(tmp_path))  # somewhere without the project
    with pytest.raises(ChainError, match="no lilypad ape project at .*LILYPAD_PROJECT_ROOT"):
        load_contract_containers()


def test_agree_paying_uses_a_permit_only_when_the_allowance_is_short(contracts, make_deal, payee,
                                                                      resource_provider, chain):
    deal = make_deal(job_creator=payee)
    deposit = deal.job_creator_deposit
    assert contracts.allowance(payee) == 0
    block = chain.blocks.head.number
    receipt = contracts.agree_paying(deal, payee, deposit)
    assert receipt.method_called.name == "agreeWithPermit"
    assert chain.blocks.head.number == block + 1  # one transaction, no approval
    assert contracts.escrow(deal).job_creator == deposit
    assert contracts.allowance(payee) == 0

    # A standing allowance that covers the deposit: a plain agree, no permit.
    contracts.ensure_allowance(payee, 100 * TOKEN)
    other = make_deal(job_creator=payee)
    assert contracts.agree_paying(other, payee, other.job_creator_deposit).method_called.name == "agree"

    contracts.ensure_allowance(resource_provider, 100 * TOKEN)
    contracts.agree(deal, resource_provider)
    contracts.add_result(deal, "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", 2, resource_provider)
    contracts.token.approve(contracts.payments, 0, sender=payee)  # nothing standing
    receipt = contracts.check_result_paying(deal, payee, deal.pricing.mediation_fee)
    assert receipt.method_called.name == "checkResultWithPermit"
    assert contracts.escrow(deal).job_creator == deposit + deal.pricing.mediation_fee


def test_agree_paying_falls_back_to_approve_when_the_permit_does_not_take(contracts, make_deal, payee,
                                                                          monkeypatch):
    """A permit whose nonce a concurrent run used is ignored by the token; the wrapper then approves."""
    deal = make_deal(job_creator=payee)
    real = contracts.sign_permit

    def stale(account, amount, **kw):
        permit = real(account, amount, **kw)
        spent = real(account, 1, **kw)  # the same nonce, used on the token first
        contracts.token.permit(spent.owner, spent.spender, spent.value, spent.deadline, spent.v, spent.r, spent.s,
                               sender=account)
        contracts.token.approve(contracts.payments, 0, sender=account)
        return permit

    monkeypatch.setattr(contracts, "sign_permit", stale)
    receipt = contracts.agree_paying(deal, payee, deal.job_creator_deposit)
    assert receipt.method_called.name == "agree"
    assert contracts.escrow(deal).job_creator == deal.job_creator_deposit


def test_local_transactions_get_an_estimated_gas_limit_not_the_block_limit(contracts, make_deal, job_creator,
                                                                          resource_provider, chain):
    """ape's local default gives every transaction the block gas limit, so anvil
    fits one per block and strands racing ones; the wrappers estimate instead,
    with a margin that covers the costlier second agree of a deal."""
    assert chain.provider.network.gas_limit == "max"  # what the wrappers work around
    deal = make_deal()
    contracts.ensure_allowance(job_creator, deal.job_creator_deposit)
    first = contracts.agree(deal, job_creator)
    contracts.ensure_allowance(resource_provider, deal.resource_provider_deposit)
    second = contracts.agree(deal, resource_provider)
    for receipt in (first, second):
        assert receipt.gas_used < receipt.gas_limit <= receipt.gas_used * 2
        assert receipt.gas_limit < chain.provider.max_gas // 10
    assert contracts.state(deal) == AgreementState.DEAL_AGREED
    # An explicit gas limit is passed through untouched.
    other = make_deal()
    contracts.ensure_allowance(job_creator, other.job_creator_deposit)
    assert contracts.agree(other, job_creator, gas_limit=1_000_000).gas_limit == 1_000_000
