"""EIP-712 offer signatures: every field covered, wrong signers, replays and clocks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account import Account
from pydantic import ValidationError

from lilypad.exceptions import (
    InvalidPrivateKeyError,
    OfferError,
    OfferExpiredError,
    OfferFromFutureError,
    OfferReplayError,
    OfferSignatureError,
)
from lilypad.protocol.deal import DealPricing, DealTimeouts
from lilypad.protocol.offers import JobModule, JobOffer, PricingMode, ResourceOffer, ResourceSpec
from lilypad.protocol.signing import (
    MAX_CLOCK_SKEW,
    InMemoryNonceRegistry,
    NonceRegistry,
    OfferDomain,
    SignedOffer,
    offer_digest,
    offer_typed_data,
    recover_signer,
    sign_offer,
    verify_offer,
)

PROVIDER = Account.from_key("0x" + "11" * 32)
CREATOR = Account.from_key("0x" + "22" * 32)
STRANGER = Account.from_key("0x" + "33" * 32)
SOLVER, MED1, MED2, OTHER = ("0x" + c * 40 for c in "abcd")
DOMAIN = OfferDomain(chain_id=1337, verifying_contract="0x" + "ee" * 20)
NOW = 1_700_000_000
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def resource(**kw: Any) -> ResourceOffer:
    base: dict[str, Any] = {
        "resource_provider": PROVIDER.address, "solver": SOLVER, "mediators": [MED1, MED2],
        "spec": ResourceSpec(cpu=4000, gpu=2, vram=(8000, 24000), ram=8192, disk=100),
        "modules": ["cowsay:v0.0.1"], "slots": 2, "created_at": NOW, "expires_at": NOW + 3600,
    }
    return ResourceOffer(**(base | kw))


def job(**kw: Any) -> JobOffer:
    base: dict[str, Any] = {
        "job_creator": CREATOR.address, "solver": SOLVER, "mediators": [MED1],
        "module": JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit=COMMIT),
        "inputs": {"Message": "moo", "Seed": "42"}, "spec": ResourceSpec(cpu=1000, gpu=1, vram=(8000,)),
        "target": PROVIDER.address, "created_at": NOW,
    }
    return JobOffer(**(base | kw))


def key_of(offer: ResourceOffer | JobOffer) -> Account:
    return PROVIDER if isinstance(offer, ResourceOffer) else CREATOR


def check(signed: SignedOffer, now: int = NOW, registry: NonceRegistry | None = None) -> None:
    verify_offer(signed, DOMAIN, now=now, seen_nonces=registry if registry is not None else InMemoryNonceRegistry())


@pytest.mark.parametrize("make", [resource, job])
def test_sign_and_verify(make: Any) -> None:
    offer = make()
    signed = sign_offer(offer, key_of(offer).key, DOMAIN)
    assert len(signed.signature) == 65 and signed.signer == offer.signer and signed.kind == offer.kind
    registry = InMemoryNonceRegistry()
    check(signed, registry=registry)
    assert (offer.signer.lower(), offer.nonce) in registry and len(registry) == 1
    assert recover_signer(signed, DOMAIN) == offer.signer
    # An eth-account LocalAccount works as the key too, and signing is deterministic.
    assert sign_offer(offer, key_of(offer), DOMAIN) == signed


@pytest.mark.parametrize("make", [resource, job])
def test_digest_is_the_eip712_hash_that_is_signed(make: Any) -> None:
    offer = make()
    signed = sign_offer(offer, key_of(offer).key, DOMAIN)
    digest = offer_digest(offer, DOMAIN)
    assert len(digest) == 32
    assert bytes(Account.unsafe_sign_hash(digest, key_of(offer).key).signature) == signed.signature
    typed = offer_typed_data(offer, DOMAIN)
    json.dumps(typed)  # wallets take it as JSON
    assert typed["domain"] == {
        "name": "lilypad", "version": "1", "chainId": 1337, "verifyingContract": DOMAIN.verifying_contract,
    }
    assert typed["primaryType"] == ("ResourceOffer" if make is resource else "JobOffer")
    assert bytes(Account.sign_typed_data(key_of(offer).key, full_message=typed).signature) == signed.signature


def test_json_round_trip_keeps_the_signature_valid() -> None:
    for offer in (resource(), job()):
        signed = sign_offer(offer, key_of(offer).key, DOMAIN)
        text = signed.model_dump_json()
        assert '"signature":"0x' in text
        again = SignedOffer.model_validate_json(text)
        assert again == signed and type(again.offer) is type(offer)
        check(again)


def test_inputs_order_does_not_matter() -> None:
    a = job(inputs={"A": "1", "B": "2"}, nonce=b"\x01" * 32)
    b = job(inputs={"B": "2", "A": "1"}, nonce=b"\x01" * 32)
    assert offer_digest(a, DOMAIN) == offer_digest(b, DOMAIN)


# Tampering: each field of each offer, changed after signing, breaks the signature.
_RESOURCE_TAMPERS: dict[str, list[Any]] = {
    "resource_provider": [STRANGER.address],
    "solver": [OTHER],
    "spec": [ResourceSpec(cpu=4001, gpu=2, vram=(8000, 24000), ram=8192, disk=100),
             ResourceSpec(cpu=4000, gpu=3, vram=(8000, 24000), ram=8192, disk=100),
             ResourceSpec(cpu=4000, gpu=2, vram=(8000, 24001), ram=8192, disk=100),
             ResourceSpec(cpu=4000, gpu=2, vram=(8000, 24000), ram=8193, disk=100),
             ResourceSpec(cpu=4000, gpu=2, vram=(8000, 24000), ram=8192, disk=101)],
    "slots": [3],
    "pricing_mode": [PricingMode.MARKET_PRICE],
    "pricing": [DealPricing(instruction_price=10**18 - 1, payment_collateral=2 * 10**18, mediation_fee=10**18),
                DealPricing(instruction_price=10**18, payment_collateral=3 * 10**18, mediation_fee=10**18),
                DealPricing(instruction_price=10**18, payment_collateral=2 * 10**18, results_collateral_multiple=3,
                            mediation_fee=10**18),
                DealPricing(instruction_price=10**18, payment_collateral=2 * 10**18, mediation_fee=0)],
    "mediators": [(MED1,), (MED1, MED2, OTHER)],
    "modules": [(), ("cowsay:v0.0.2",), ("cowsay",)],
    "timeouts": [DealTimeouts(agree=1), DealTimeouts(submit_results=1), DealTimeouts(judge_results=1),
                 DealTimeouts(mediate_results=1), DealTimeouts(submit_results_collateral=2),
                 DealTimeouts(judge_results_collateral=2)],
    "created_at": [NOW - 1],
    "expires_at": [NOW + 3601],
    "min_consortium_size": [3],
    "nonce": [b"\x07" * 32],
}
_JOB_TAMPERS: dict[str, list[Any]] = {
    "job_creator": [STRANGER.address],
    "solver": [OTHER],
    "module": [JobModule(ref="cowsay:v0.0.2", repo="builtin:cowsay", commit=COMMIT),
               JobModule(ref="cowsay:v0.0.1", repo="https://github.com/evil/cowsay", commit=COMMIT),
               JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit="f" * 40)],
    "inputs": [{"Message": "moo!", "Seed": "42"}, {"Message": "moo"}, {"Message": "moo", "Seed": "42", "X": ""},
               {"Message": "moo", "seed": "42"}],
    "spec": [ResourceSpec(cpu=999, gpu=1, vram=(8000,)), ResourceSpec(cpu=1000, gpu=2, vram=(8000,)),
             ResourceSpec(cpu=1000, gpu=1, vram=(4000,)), ResourceSpec(cpu=1000, gpu=1, vram=(8000,), ram=1),
             ResourceSpec(cpu=1000, gpu=1, vram=(8000,), disk=1)],
    "pricing_mode": [PricingMode.FIXED_PRICE],
    "pricing": [DealPricing(instruction_price=2 * 10**18, payment_collateral=2 * 10**18, mediation_fee=10**18)],
    "mediators": [(MED2,), (MED1, MED2)],
    "target": [None, STRANGER.address],
    "inputs_cid": ["bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"],
    "timeouts": [DealTimeouts(submit_results=901), DealTimeouts(judge_results_collateral=0)],
    "created_at": [NOW + 1],
    "contract_job_id": [5],
    "nonce": [b"\x07" * 32],
}
_TAMPERS = [(resource, field, value) for field, values in _RESOURCE_TAMPERS.items() for value in values]
_TAMPERS += [(job, field, value) for field, values in _JOB_TAMPERS.items() for value in values]


def job_of_three(**kw: Any) -> JobOffer:
    """A job offer trusting three mediators (a panel of three needs them)."""
    return job(mediators=[MED1, MED2, STRANGER.address], **kw)


#: Fields a one-mediator offer cannot change validly: tampered on ``job_of_three``.
_JOB_OF_THREE_TAMPERS: dict[str, list[Any]] = {"consortium_size": [3]}
_TAMPERS += [(job_of_three, field, value) for field, values in _JOB_OF_THREE_TAMPERS.items() for value in values]


def test_tamper_tables_cover_every_field() -> None:
    # ``kind`` is the EIP-712 primary type (a resource signature never verifies a job offer).
    assert set(_RESOURCE_TAMPERS) == set(ResourceOffer.model_fields) - {"kind"}
    assert set(_JOB_TAMPERS) | set(_JOB_OF_THREE_TAMPERS) == set(JobOffer.model_fields) - {"kind"}


@pytest.mark.parametrize(("make", "field", "value"), _TAMPERS)
def test_any_changed_field_breaks_the_signature(make: Any, field: str, value: Any) -> None:
    offer = make()
    signed = sign_offer(offer, key_of(offer).key, DOMAIN)
    tampered = offer.model_copy(update={field: value})
    assert tampered != offer
    forged = SignedOffer(offer=tampered, signature=signed.signature)
    registry = InMemoryNonceRegistry()
    with pytest.raises(OfferSignatureError) as info:
        check(forged, registry=registry)
    assert info.value.signer == tampered.signer and info.value.recovered != tampered.signer
    assert len(registry) == 0  # a refused offer does not use up its nonce


def test_a_signature_is_bound_to_the_domain_and_the_offer_kind() -> None:
    offer = resource()
    signed = sign_offer(offer, PROVIDER.key, DOMAIN)
    for other in (OfferDomain(chain_id=1, verifying_contract=DOMAIN.verifying_contract),
                  OfferDomain(chain_id=1337, verifying_contract=OTHER)):
        with pytest.raises(OfferSignatureError):
            verify_offer(signed, other, now=NOW, seen_nonces=InMemoryNonceRegistry())
    as_job = job(job_creator=PROVIDER.address, target=None, nonce=offer.nonce)
    with pytest.raises(OfferSignatureError):
        check(SignedOffer(offer=as_job, signature=signed.signature))
    data = json.loads(signed.model_dump_json())
    data["offer"]["kind"] = "job"
    with pytest.raises(ValidationError):
        SignedOffer.model_validate(data)


def test_wrong_signer() -> None:
    offer = job()
    with pytest.raises(OfferSignatureError, match="not the offer's author") as info:
        sign_offer(offer, STRANGER.key, DOMAIN)
    assert info.value.recovered == STRANGER.address
    forged = Account.sign_typed_data(STRANGER.key, full_message=offer_typed_data(offer, DOMAIN))
    with pytest.raises(OfferSignatureError) as info:
        check(SignedOffer(offer=offer, signature=bytes(forged.signature)))
    assert info.value.recovered == STRANGER.address and info.value.signer == CREATOR.address
    assert isinstance(info.value, OfferError)


def test_malformed_signatures() -> None:
    offer = job()
    with pytest.raises(OfferSignatureError, match="malformed") as info:
        check(SignedOffer(offer=offer, signature=b"\x00" * 65))
    assert info.value.recovered is None
    for bad in (b"\x01" * 64, "0xzz", "0x" + "00" * 66):
        with pytest.raises(ValidationError):
            SignedOffer(offer=offer, signature=bad)
    with pytest.raises(InvalidPrivateKeyError):
        sign_offer(offer, "0x1234", DOMAIN)


def test_replays_are_refused() -> None:
    registry = InMemoryNonceRegistry()
    offer = job(nonce=b"\x05" * 32)
    signed = sign_offer(offer, CREATOR.key, DOMAIN)
    check(signed, registry=registry)
    with pytest.raises(OfferReplayError) as info:
        check(signed, now=NOW + 1, registry=registry)
    assert info.value.nonce == b"\x05" * 32 and info.value.signer == CREATOR.address
    # The same nonce in a new offer by the same author is a replay too ...
    other = sign_offer(job(nonce=b"\x05" * 32, inputs={"Message": "baa"}), CREATOR.key, DOMAIN)
    with pytest.raises(OfferReplayError):
        check(other, registry=registry)
    # ... but another author may use it.
    check(sign_offer(resource(nonce=b"\x05" * 32), PROVIDER.key, DOMAIN), registry=registry)
    assert len(registry) == 2


def test_clock_checks() -> None:
    offer = job()
    signed = sign_offer(offer, CREATOR.key, DOMAIN)
    check(signed, now=NOW - MAX_CLOCK_SKEW)  # the edges are inside the window
    check(signed, now=NOW + MAX_CLOCK_SKEW)
    with pytest.raises(OfferFromFutureError) as future:
        check(signed, now=NOW - MAX_CLOCK_SKEW - 1)
    assert future.value.created_at == NOW and future.value.skew == MAX_CLOCK_SKEW
    with pytest.raises(OfferExpiredError) as stale:
        check(signed, now=NOW + MAX_CLOCK_SKEW + 1)
    assert stale.value.deadline == NOW + MAX_CLOCK_SKEW
    with pytest.raises(OfferExpiredError):
        verify_offer(signed, DOMAIN, now=NOW + 60, seen_nonces=InMemoryNonceRegistry(), skew=30)


def test_resource_offer_past_expires_at() -> None:
    signed = sign_offer(resource(expires_at=NOW + 10), PROVIDER.key, DOMAIN)
    check(signed, now=NOW + 9)
    with pytest.raises(OfferExpiredError, match="expires_at") as info:
        check(signed, now=NOW + 10)
    assert info.value.deadline == NOW + 10 and info.value.now == NOW + 10


def test_nonce_registry() -> None:
    registry = InMemoryNonceRegistry()
    assert isinstance(registry, NonceRegistry)
    assert registry.check_and_record(CREATOR.address, b"\x01" * 32, keep_until=100)
    assert not registry.check_and_record(CREATOR.address.lower(), b"\x01" * 32, keep_until=100)
    assert registry.check_and_record(CREATOR.address, b"\x02" * 32)  # kept for ever
    assert registry.check_and_record(CREATOR.address, b"\x03" * 32, keep_until=200)
    assert registry.prune(100) == 0 and len(registry) == 3
    assert registry.prune(150) == 1 and len(registry) == 2
    assert (CREATOR.address, b"\x01" * 32) not in registry
    assert (CREATOR.address, b"\x02" * 32) in registry
    assert registry.prune(10**9) == 1 and len(registry) == 1


def test_verify_records_a_keep_until_past_which_the_offer_is_stale() -> None:
    registry = InMemoryNonceRegistry()
    signed = sign_offer(job(), CREATOR.key, DOMAIN)
    check(signed, registry=registry)
    assert registry.prune(NOW + MAX_CLOCK_SKEW) == 0
    assert registry.prune(NOW + MAX_CLOCK_SKEW + 1) == 1
    with pytest.raises(OfferExpiredError):  # forgetting the nonce reopens nothing
        check(signed, now=NOW + MAX_CLOCK_SKEW + 1, registry=registry)
