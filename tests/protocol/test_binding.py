"""A deal's nonce commits it to its job offer: a job swapped under a deal is caught."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak

from lilypad.protocol.binding import deal_binding_problems, deal_nonce, job_binding_problems
from lilypad.protocol.deal import Deal, DealMembers
from lilypad.protocol.offers import JobModule, JobOffer, ResourceSpec
from lilypad.protocol.signing import OfferDomain, offer_id, sign_offer

CREATOR = Account.from_key("0x" + "22" * 32)
STRANGER = Account.from_key("0x" + "33" * 32)
SOLVER, PROVIDER, MEDIATOR = ("0x" + c * 40 for c in "abc")
DOMAIN = OfferDomain(chain_id=1337, verifying_contract="0x" + "ee" * 20)
MODULE = JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit="0123456789abcdef0123456789abcdef01234567")
RESOURCE_OFFER_ID = "0x" + "77" * 32


def _offer(**kw: Any) -> JobOffer:
    base: dict[str, Any] = {"job_creator": CREATOR.address, "solver": SOLVER, "mediators": [MEDIATOR],
                            "module": MODULE, "inputs": {"Message": "moo"}, "spec": ResourceSpec(cpu=100)}
    return JobOffer(**(base | kw))


def _bound(offer: JobOffer, key: Any = CREATOR.key) -> tuple[Any, str, Deal]:
    signed = sign_offer(offer, key, DOMAIN)
    job_id = offer_id(signed, DOMAIN)
    deal = Deal(members=DealMembers(solver=SOLVER, job_creator=CREATOR.address, resource_provider=PROVIDER,
                                    mediators=(MEDIATOR,)), nonce=deal_nonce(job_id, RESOURCE_OFFER_ID))
    return signed, job_id, deal


def _problems(deal: Deal, signed: Any, job_id: str, **job: Any) -> list[str]:
    shown = {"module": MODULE, "inputs": {"Message": "moo"}, "inputs_cid": None} | job
    return job_binding_problems(deal, job_offer_id=job_id, signed=signed, resource_offer_id=RESOURCE_OFFER_ID,
                                domain=DOMAIN, **shown)


def test_the_nonce_is_the_hash_of_both_offer_ids() -> None:
    job_id = "0x" + "11" * 32
    assert deal_nonce(job_id, RESOURCE_OFFER_ID) == keccak(bytes.fromhex("11" * 32) + bytes.fromhex("77" * 32))
    assert deal_nonce(job_id, RESOURCE_OFFER_ID) != deal_nonce(RESOURCE_OFFER_ID, job_id)
    with pytest.raises(ValueError, match="job offer id is not 32 bytes"):
        deal_nonce("0x1234", RESOURCE_OFFER_ID)


def test_the_bound_job_passes() -> None:
    signed, job_id, deal = _bound(_offer())
    assert deal_binding_problems(deal, job_id, RESOURCE_OFFER_ID) == []
    assert _problems(deal, signed, job_id) == []


def test_a_random_nonce_is_not_bound() -> None:
    signed, job_id, deal = _bound(_offer())
    unbound = deal.model_copy(update={"nonce": b"\x01" * 32})
    (problem,) = deal_binding_problems(unbound, job_id, RESOURCE_OFFER_ID)
    assert "does not commit to job offer" in problem
    assert any("does not commit" in p for p in _problems(unbound, signed, job_id))


def test_a_swapped_module_inputs_or_files_are_caught() -> None:
    signed, job_id, deal = _bound(_offer())
    other = MODULE.model_copy(update={"commit": "f" * 40})
    assert any("is not the signed" in p for p in _problems(deal, signed, job_id, module=other))
    assert any("inputs are not the signed" in p for p in _problems(deal, signed, job_id, inputs={"Message": "x"}))
    cid = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
    assert any("input files" in p for p in _problems(deal, signed, job_id, inputs_cid=cid))


def test_another_signed_offer_or_signer_is_caught() -> None:
    signed, job_id, deal = _bound(_offer())
    other_signed, _, _ = _bound(_offer(inputs={"Message": "other"}))
    problems = _problems(deal, other_signed, job_id, inputs={"Message": "other"})
    assert any("signed job offer's id" in p for p in problems)
    forged = sign_offer(_offer(job_creator=STRANGER.address), STRANGER.key, DOMAIN)
    problems = _problems(deal, forged, offer_id(forged, DOMAIN))
    assert any("not the deal's job creator" in p for p in problems)
