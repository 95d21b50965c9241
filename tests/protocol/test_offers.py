"""Offer models: defaults, canonical forms and the controller's rules for deal terms."""

from __future__ import annotations

import pytest
from eth_utils import to_checksum_address
from pydantic import ValidationError

from lilypad.modules.spec import GPUSpec, MachineSpec
from lilypad.protocol.deal import DealPricing, DealTimeouts
from lilypad.protocol.offers import (
    DEFAULT_RESOURCE_OFFER_TTL,
    LP,
    JobModule,
    JobOffer,
    PricingMode,
    ResourceOffer,
    ResourceSpec,
    amounts_fit,
    lp,
)

PROVIDER, SOLVER, CREATOR, MED1, MED2 = ("0x" + c * 40 for c in "abcde")
COMMIT = "0123456789abcdef0123456789abcdef01234567"
MODULE = {"ref": "cowsay:v0.0.1", "repo": "https://github.com/Lilypad-Tech/lilypad-module-cowsay", "commit": COMMIT}


def resource(**kw: object) -> ResourceOffer:
    base: dict[str, object] = {"resource_provider": PROVIDER, "solver": SOLVER, "mediators": [MED1], "created_at": 1000}
    return ResourceOffer(**(base | kw))


def job(**kw: object) -> JobOffer:
    base: dict[str, object] = {
        "job_creator": CREATOR, "solver": SOLVER, "mediators": [MED1], "module": MODULE, "created_at": 1000,
    }
    return JobOffer(**(base | kw))


def test_pricing_defaults_are_the_originals_in_lp_base_units() -> None:
    assert LP == 10**18
    for offer in (resource(), job()):
        assert offer.pricing == DealPricing(
            instruction_price=LP, payment_collateral=2 * LP, results_collateral_multiple=2, mediation_fee=LP
        )
        assert offer.timeouts == DealTimeouts()
    assert resource().pricing_mode is PricingMode.FIXED_PRICE
    assert job().pricing_mode is PricingMode.MARKET_PRICE
    assert PricingMode("MarketPrice") is PricingMode.MARKET_PRICE


def test_other_defaults() -> None:
    offer = resource()
    assert offer.spec == ResourceSpec(cpu=1000, ram=1024)
    assert offer.slots == 1
    assert offer.modules == ()
    assert offer.expires_at == 1000 + DEFAULT_RESOURCE_OFFER_TTL
    assert len(offer.nonce) == 32 and offer.nonce != resource().nonce
    request = job()
    assert request.spec == ResourceSpec() and request.inputs == {} and request.target is None
    assert resource(created_at=None).created_at > 1_600_000_000  # filled from the clock


def test_lp_conversion() -> None:
    assert lp(2) == 2 * 10**18
    assert lp("0.5") == 5 * 10**17
    assert lp("1e-18") == 1
    with pytest.raises(ValueError, match="whole number"):
        lp("1e-19")


def test_addresses_are_checksummed_and_mediators_canonical() -> None:
    offer = resource(mediators=[MED2, MED1.upper().replace("0X", "0x")])
    assert offer.resource_provider == "0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa"
    assert offer.mediators == (to_checksum_address(MED1), to_checksum_address(MED2))
    assert offer.mediators[0] == "0xDDdDddDdDdddDDddDDddDDDDdDdDDdDDdDDDDDDd"
    # A mediator listed twice (in any spelling) would weight the on-chain draw: the offer is invalid.
    with pytest.raises(ValidationError, match="listed twice"):
        resource(mediators=[MED2, MED1.upper().replace("0X", "0x"), MED2, MED1])


@pytest.mark.parametrize("bad", ["0x" + "00" * 20, "0x1234", "not an address", 42])
def test_bad_addresses_are_refused(bad: object) -> None:
    with pytest.raises(ValidationError):
        resource(resource_provider=bad)
    with pytest.raises(ValidationError):
        job(mediators=[MED1, bad])


def test_an_offer_needs_a_mediator() -> None:
    with pytest.raises(ValidationError):
        resource(mediators=[])


def test_module_allowlist_is_validated_and_sorted() -> None:
    offer = resource(modules=["sdxl:v1", "cowsay:v0.0.1", "sdxl:v1"])
    assert offer.modules == ("cowsay:v0.0.1", "sdxl:v1")
    for bad in (["cowsay:"], ["a b:v1"], "cowsay:v1", [1]):
        with pytest.raises(ValidationError):
            resource(modules=bad)


def test_job_module_rules() -> None:
    assert JobModule(**MODULE).ref == "cowsay:v0.0.1"
    JobModule(ref="github.com/foo/bar:v2", repo="https://github.com/foo/bar", commit="ab" * 32)
    bad_fields = [
        {"ref": "./local:main"},  # nobody else can fetch a local path
        {"ref": "cowsay:a:b"},
        {"commit": COMMIT.upper()},
        {"commit": COMMIT[:12]},
        {"repo": ""},
        {"repo": "https://x y/z"},
    ]
    for bad in bad_fields:
        with pytest.raises(ValidationError):
            JobModule(**(MODULE | bad))


def test_inputs_follow_the_cli_rules() -> None:
    assert job(inputs={"Message": "a=b", "Seed": ""}).inputs == {"Message": "a=b", "Seed": ""}
    for bad in ({"1x": "v"}, {"K": "nul\x00"}, {f"K{i}": "v" for i in range(65)}):
        with pytest.raises(ValidationError):
            job(inputs=bad)


@pytest.mark.parametrize(
    "pricing",
    [
        {"instruction_price": 0, "payment_collateral": 1},
        {"instruction_price": 3, "payment_collateral": 2},
        {"results_collateral_multiple": 0},
        {"results_collateral_multiple": 101},
        {"payment_collateral": 2**96 - 1, "results_collateral_multiple": 2},
    ],
)
def test_pricing_the_controller_would_refuse_is_refused(pricing: dict[str, int]) -> None:
    terms = DealPricing(**({"instruction_price": 1, "payment_collateral": 2} | pricing))
    with pytest.raises(ValidationError):
        resource(pricing=terms)
    with pytest.raises(ValidationError):
        job(pricing=terms)


@pytest.mark.parametrize("field", ["agree", "submit_results", "judge_results", "mediate_results"])
@pytest.mark.parametrize("value", [0, 30 * 24 * 3600 + 1])
def test_timeouts_the_controller_would_refuse_are_refused(field: str, value: int) -> None:
    with pytest.raises(ValidationError):
        job(timeouts=DealTimeouts(**{field: value}))
    assert job(timeouts=DealTimeouts(**{field: 30 * 24 * 3600})).timeouts.agree > 0


def test_escrow_amounts_must_fit_uint96() -> None:
    pricing = DealPricing(
        instruction_price=1, payment_collateral=2**95, results_collateral_multiple=1, mediation_fee=2**95
    )
    assert not amounts_fit(pricing, DealTimeouts())
    assert amounts_fit(DealPricing(), DealTimeouts())
    with pytest.raises(ValidationError):
        job(pricing=pricing)


def test_spec_rules() -> None:
    assert ResourceSpec(gpu=2, vram=(8000, 24000)).max_vram == 24000
    assert ResourceSpec(gpu=2).max_vram == 0
    with pytest.raises(ValidationError):
        ResourceSpec(gpu=1, vram=(8000, 8000))
    with pytest.raises(ValidationError):
        ResourceSpec(cpu=-1)


def test_spec_from_a_module_machine() -> None:
    machine = MachineSpec(gpu=1, gpus=(GPUSpec(vram=8000), GPUSpec(vram=16000)), cpu=1500, ram=2048, disk=10)
    assert ResourceSpec.from_machine(machine) == ResourceSpec(cpu=1500, gpu=1, vram=(16000,), ram=2048, disk=10)
    assert ResourceSpec.from_machine(MachineSpec(cpu=500)) == ResourceSpec(cpu=500)


def test_offer_specific_rules() -> None:
    with pytest.raises(ValidationError):
        resource(expires_at=1000)  # not after created_at
    with pytest.raises(ValidationError):
        resource(slots=0)
    with pytest.raises(ValidationError):
        job(target=CREATOR)
    with pytest.raises(ValidationError):
        resource(surprise=1)  # unknown fields would escape the signature
    with pytest.raises(ValidationError):
        resource(nonce=b"short")


def test_json_round_trip_and_keys() -> None:
    offer = resource(modules=["cowsay"], spec=ResourceSpec(cpu=2000, gpu=1, vram=(8000,), ram=4096, disk=5))
    request = job(inputs={"Message": "moo"}, target=PROVIDER, nonce="0x" + "11" * 32)
    for item in (offer, request):
        text = item.model_dump_json()
        assert type(item).model_validate_json(text) == item
    assert '"nonce":"0x' + "11" * 32 + '"' in request.model_dump_json()
    assert offer.key == (offer.resource_provider, offer.nonce)
    assert request.key == (request.job_creator, b"\x11" * 32)
    assert request.signer == request.job_creator and offer.signer == offer.resource_provider
    with pytest.raises(ValidationError):
        offer.slots = 2  # type: ignore[misc]
