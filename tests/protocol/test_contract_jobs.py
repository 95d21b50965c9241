"""A smart-contract job's offer is checked against the chain's job (issue 19): module, inputs,
target, job creator and the deal nonce the contract requires; nobody's signature."""

from __future__ import annotations

import pytest

from lilypad.protocol.contract_jobs import ContractJob, JobOptions, contract_deal_nonce, contract_offer_problems
from lilypad.protocol.offers import JobModule, JobOffer
from lilypad.protocol.signing import UNSIGNED, InMemoryNonceRegistry, OfferDomain, unsigned_offer, verify_offer

OJC = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
SOLVER = "0x" + "44" * 20
MEDIATOR = "0x" + "33" * 20
PROVIDER = "0x" + "22" * 20
COMMIT = "ab" * 20


def onchain(**kw) -> ContractJob:
    base = dict(id=7, caller="0x" + "55" * 20, payee="0x" + "66" * 20, module="cowsay:v0.0.1",
                inputs=("Message=moo",), options=JobOptions(4 * 10**18, 10**17, 3600, 500_000), state=1,
                attempts=0, held=4 * 10**18, relayer="0x" + "00" * 20, deal_id=bytes(32), created_at=1)
    return ContractJob(**{**base, **kw})


def offer(**kw) -> JobOffer:
    base = dict(solver=SOLVER, job_creator=OJC, mediators=[MEDIATOR], inputs={"Message": "moo"},
                module=JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit=COMMIT),
                nonce=contract_deal_nonce(OJC, 7, 0), contract_job_id=7)
    return JobOffer(**{**base, **kw})


def test_the_deal_nonce_is_the_contracts():
    # keccak256(abi.encode(address(this), id, attempt)): a fixed vector, checked against the
    # contract itself in tests/contracts/test_onchain_job_creator.py (every deal there uses it).
    assert contract_deal_nonce(OJC, 7, 0) != contract_deal_nonce(OJC, 7, 1) != contract_deal_nonce(OJC, 8, 0)
    assert len(contract_deal_nonce(OJC, 7, 0)) == 32


def test_the_jobs_own_offer_has_no_problem():
    assert contract_offer_problems(onchain(), offer(), OJC) == []
    assert contract_offer_problems(onchain(attempts=2), offer(nonce=contract_deal_nonce(OJC, 7, 2)), OJC) == []


@pytest.mark.parametrize(("change", "words"), [
    ({"module": JobModule(ref="cowsay:v0.0.2", repo="builtin:cowsay", commit=COMMIT)}, "module"),
    ({"inputs": {"Message": "something else"}}, "inputs"),
    ({"job_creator": "0x" + "77" * 20}, "job creator"),
    ({"contract_job_id": 8}, "contract job 8"),
    ({"nonce": b"\x01" * 32}, "nonce"),
    ({"target": PROVIDER}, "target"),
])
def test_an_offer_that_is_not_the_jobs_is_refused(change, words):
    problems = contract_offer_problems(onchain(), offer(**change), OJC)
    assert problems and any(words in p for p in problems), problems


def test_a_targeted_job_needs_its_target():
    targeted = onchain(options=JobOptions(4 * 10**18, 10**17, 3600, 500_000, 0, PROVIDER))
    assert contract_offer_problems(targeted, offer(), OJC) != []
    assert contract_offer_problems(targeted, offer(target=PROVIDER), OJC) == []


def test_an_unsigned_offer_passes_only_once_checked_against_the_chain():
    from lilypad.exceptions import OfferSignatureError

    signed = unsigned_offer(offer())
    assert signed.signature == UNSIGNED
    domain = OfferDomain(chain_id=31337, verifying_contract="0x" + "88" * 20)
    with pytest.raises(OfferSignatureError):
        verify_offer(signed, domain, now=signed.offer.created_at, seen_nonces=InMemoryNonceRegistry())
    verify_offer(signed, domain, now=signed.offer.created_at, seen_nonces=InMemoryNonceRegistry(),
                 contract_checked=True)
    with pytest.raises(ValueError, match="only a contract job"):
        unsigned_offer(offer(contract_job_id=None))
