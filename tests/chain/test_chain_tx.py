"""send_with_retries: transient RPC failures are retried, reverts never are."""

from __future__ import annotations

import ape
import pytest
import requests
from ape.exceptions import ContractLogicError, VirtualMachineError
from web3.exceptions import TimeExhausted

from lilypad.chain.tx import _describe, is_transient, send_with_retries
from lilypad.exceptions import TransactionRetriesExhaustedError
from lilypad.protocol.deal import AgreementState


class InjectConnectionFaults:
    """FAULT INJECTION: a callable that raises ``ConnectionError`` on its first
    ``failures`` calls (as if the RPC endpoint were unreachable, before anything
    reached the node), then calls the real ``target``."""

    def __init__(self, target, failures: int) -> None:
        self.target = target
        self.failures = failures
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"injected fault {self.calls}: connection refused")
        return self.target(*args, **kwargs)


class CountCalls:
    def __init__(self, target) -> None:
        self.target = target
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.target(*args, **kwargs)


def test_transient_connection_errors_are_retried_until_the_send_succeeds(
    contracts, make_deal, job_creator, chain
):
    deal = make_deal()
    contracts.ensure_allowance(job_creator, deal.job_creator_deposit)
    flaky_agree = InjectConnectionFaults(contracts.controller.agree, failures=2)
    receipt = send_with_retries(flaky_agree, deal.as_tuple(), retries=3, backoff=0.01, sender=job_creator)
    assert flaky_agree.calls == 3
    assert receipt.events.filter(contracts.controller.DealAgreed)[0].party == job_creator.address
    assert contracts.state(deal) == AgreementState.DEAL_NEGOTIATING
    assert contracts.escrow(deal).job_creator == deal.job_creator_deposit  # escrowed once


def test_retries_are_bounded(contracts, job_creator):
    always_down = InjectConnectionFaults(contracts.token.approve, failures=10)
    with pytest.raises(TransactionRetriesExhaustedError) as raised:
        send_with_retries(always_down, contracts.payments.address, 1, retries=2, backoff=0.0, sender=job_creator)
    assert always_down.calls == 3 and raised.value.attempts == 3
    assert isinstance(raised.value.__cause__, ConnectionError)
    assert "injected fault 3" in str(raised.value)
    assert contracts.allowance(job_creator) == 0  # nothing ever reached the node


def test_a_revert_is_not_retried_and_keeps_its_custom_error(contracts, make_deal, job_creator):
    deal = make_deal()
    accept = CountCalls(contracts.controller.acceptResult)
    with ape.reverts(contracts.controller.WrongState):
        send_with_retries(accept, deal.as_tuple(), retries=5, backoff=0.01, sender=job_creator)
    assert accept.calls == 1


def test_a_revert_after_transient_faults_surfaces_at_once(contracts, make_deal, job_creator):
    deal = make_deal()
    flaky_accept = InjectConnectionFaults(contracts.controller.acceptResult, failures=1)
    with pytest.raises(ContractLogicError) as raised:
        send_with_retries(flaky_accept, deal.as_tuple(), retries=5, backoff=0.01, sender=job_creator)
    assert type(raised.value).__name__ == "WrongState"
    assert flaky_accept.calls == 2


def test_a_lost_nonce_race_is_retried_with_a_fresh_nonce(contracts, job_creator, chain):
    """The first try signs with a nonce another sender already used (the node
    answers 'nonce too low'); the retry lets ape pick the current nonce."""
    contracts.ensure_allowance(job_creator, 1)  # the account has used a nonce
    calls = []

    def approve_racing_another_sender(spender, amount, sender):
        calls.append(sender.nonce)
        if len(calls) == 1:
            txn = contracts.token.approve.as_transaction(spender, amount, sender=sender)
            txn.nonce = sender.nonce - 1  # taken by the "other process"
            return chain.provider.send_transaction(sender.sign_transaction(txn))
        return contracts.token.approve(spender, amount, sender=sender)

    receipt = send_with_retries(
        approve_racing_another_sender, contracts.payments.address, 9, retries=2, backoff=0.01, sender=job_creator
    )
    assert len(calls) == 2 and receipt.status == 1
    assert contracts.allowance(job_creator) == 9


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionError("refused"), True),
        (ConnectionResetError("reset by peer"), True),
        (TimeoutError("timed out"), True),
        (requests.exceptions.ConnectionError("Max retries exceeded"), True),
        (requests.exceptions.ReadTimeout("read timed out"), True),
        (TimeExhausted("no receipt after 120 s"), True),
        (VirtualMachineError("{'code': -32003, 'message': 'nonce too low'}"), True),
        (VirtualMachineError("Nonce '7' is too low"), True),
        (VirtualMachineError("replacement transaction underpriced"), True),
        (ContractLogicError("WrongState"), False),
        (ContractLogicError("nonce too low"), False),  # a revert is a revert, whatever it says
        (ValueError("value is too low"), False),
        (ValueError("nonce too low"), False),  # not an RPC error
        (KeyError("x"), False),
        (VirtualMachineError("out of gas"), False),
    ],
)
def test_is_transient(error, transient):
    assert is_transient(error) is transient


def test_http_status_decides_for_http_errors():
    def http_error(status: int) -> requests.exceptions.HTTPError:
        response = requests.Response()
        response.status_code = status
        return requests.exceptions.HTTPError(f"{status}", response=response)

    assert is_transient(http_error(429)) and is_transient(http_error(503))
    assert not is_transient(http_error(400)) and not is_transient(http_error(401))


def test_a_transient_cause_counts_unless_a_revert_is_in_the_chain():
    try:
        try:
            raise requests.exceptions.ConnectionError("down")
        except requests.exceptions.ConnectionError as inner:
            raise RuntimeError("provider failed") from inner
    except RuntimeError as outer:
        assert is_transient(outer)
    try:
        try:
            raise ContractLogicError("WrongState")
        except ContractLogicError as inner:
            raise ConnectionError("while tracing") from inner
    except ConnectionError as outer:
        assert not is_transient(outer)


def test_retries_must_not_be_negative():
    with pytest.raises(ValueError):
        send_with_retries(lambda: None, retries=-1)


def test_exhausted_retries_name_the_contract_method(contracts, job_creator):
    class Unreachable:
        """FAULT INJECTION: an ape contract method whose node never answers."""

        abis = contracts.token.approve.abis
        contract = contracts.token

        def __call__(self, *args, **kwargs):
            raise ConnectionRefusedError("injected: connection refused")

    with pytest.raises(TransactionRetriesExhaustedError, match=r"^LilypadToken\.approve failed 2 times"):
        send_with_retries(Unreachable(), contracts.payments.address, 1, retries=1, backoff=0.0, sender=job_creator)
    assert _describe(contracts.controller.agree) == "LilypadController.agree"
