"""The matcher: each rule, capacity, the greedy policy, an all-pairs oracle and scale."""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from typing import Any

import pytest
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lilypad.protocol.allowlist import module_allowed
from lilypad.protocol.deal import Deal, DealPricing, DealTimeouts
from lilypad.protocol.offers import (
    JobModule,
    JobOffer,
    PricingMode,
    ResourceOffer,
    ResourceSpec,
    amounts_fit,
    price_acceptable,
    resources_suffice,
    timeouts_acceptable,
)
from lilypad.solver.matching import (
    Match,
    Matcher,
    job_order_key,
    offer_order_key,
    pair_acceptable,
    shared_mediators,
)


def addr(tag: int, i: int) -> str:
    return to_checksum_address(f"0x{tag:02x}{i:038x}")


SOLVER, SOLVER2 = addr(0xEE, 1), addr(0xEE, 2)
M1, M2, M3 = addr(0xDD, 1), addr(0xDD, 2), addr(0xDD, 3)
P1, P2, P3 = addr(0xAA, 1), addr(0xAA, 2), addr(0xAA, 3)
C1, C2 = addr(0xBB, 1), addr(0xBB, 2)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
_nonces = itertools.count(1)


def nonce() -> bytes:
    return next(_nonces).to_bytes(32, "big")


def pricing(ip: int = 1, pc: int | None = None, mult: int = 2, fee: int = 1) -> DealPricing:
    return DealPricing(instruction_price=ip, payment_collateral=pc if pc is not None else 2 * ip,
                       results_collateral_multiple=mult, mediation_fee=fee)


BIG = ResourceSpec(cpu=16000, gpu=2, vram=(24000, 24000), ram=65536, disk=100000)


def res(provider: str = P1, **kw: Any) -> ResourceOffer:
    base: dict[str, Any] = {
        "resource_provider": provider, "solver": SOLVER, "mediators": [M1], "spec": BIG, "pricing": pricing(),
        "created_at": 1000, "expires_at": 10**9, "nonce": nonce(),
    }
    return ResourceOffer(**(base | kw))


def jb(creator: str = C1, ref: str = "cowsay:v0.0.1", **kw: Any) -> JobOffer:
    base: dict[str, Any] = {
        "job_creator": creator, "solver": SOLVER, "mediators": [M1],
        "module": JobModule(ref=ref, repo="https://example.org/x/y", commit=COMMIT),
        "spec": ResourceSpec(cpu=1000, ram=1024), "pricing": pricing(ip=10, fee=10), "created_at": 2000,
        "nonce": nonce(),
    }
    return JobOffer(**(base | kw))


def _matcher(offers: list[ResourceOffer], jobs: list[JobOffer]) -> Matcher:
    matcher = Matcher()
    for offer in offers:
        matcher.add_resource_offer(offer)
    for job in jobs:
        matcher.add_job_offer(job)
    return matcher


def run(offers: list[ResourceOffer], jobs: list[JobOffer], usage: dict[str, int] | None = None,
        now: int | None = None) -> list[tuple[JobOffer, ResourceOffer]]:
    return [(m.job, m.offer) for m in _matcher(offers, jobs).match_all(usage, now=now)]


# --------------------------------------------------------------------------
# The rules as pure functions
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("required", "offered", "ok"),
    [
        (ResourceSpec(cpu=1000, ram=1024), ResourceSpec(cpu=1000, ram=1024), True),
        (ResourceSpec(cpu=1001), ResourceSpec(cpu=1000, ram=1024), False),
        (ResourceSpec(ram=1025), ResourceSpec(cpu=1000, ram=1024), False),
        (ResourceSpec(disk=1), ResourceSpec(cpu=1000, ram=1024), False),
        (ResourceSpec(gpu=1), ResourceSpec(cpu=1000), False),
        (ResourceSpec(gpu=2, vram=(8000,)), ResourceSpec(gpu=1, vram=(80000,)), False),
        (ResourceSpec(gpu=1, vram=(8000,)), ResourceSpec(gpu=2, vram=(4000, 8000)), True),  # largest counts
        (ResourceSpec(gpu=1, vram=(8001,)), ResourceSpec(gpu=2, vram=(4000, 8000)), False),
        (ResourceSpec(gpu=1), ResourceSpec(gpu=1), True),  # no VRAM asked
        (ResourceSpec(), ResourceSpec(), True),
    ],
)
def test_resources_suffice(required: ResourceSpec, offered: ResourceSpec, ok: bool) -> None:
    assert resources_suffice(required, offered) is ok


def test_price_acceptable_field_by_field() -> None:
    limits = pricing(ip=5, pc=10, mult=2, fee=3)
    assert price_acceptable(limits, limits)
    assert price_acceptable(limits, pricing(ip=1, pc=2, mult=3, fee=0))
    assert not price_acceptable(limits, pricing(ip=6, pc=10, mult=2, fee=3))
    assert not price_acceptable(limits, pricing(ip=5, pc=11, mult=2, fee=3))
    assert not price_acceptable(limits, pricing(ip=5, pc=10, mult=2, fee=4))
    assert not price_acceptable(limits, pricing(ip=5, pc=10, mult=1, fee=3))  # less stake for the job creator


def test_timeouts_acceptable_directions() -> None:
    base = DealTimeouts()
    assert timeouts_acceptable(base, base)
    better_for_provider = [
        {"submit_results": 901}, {"agree": 3599}, {"judge_results": 3599}, {"mediate_results": 3599},
        {"submit_results_collateral": 0}, {"judge_results_collateral": 2},
    ]
    worse_for_provider = [
        {"submit_results": 899}, {"agree": 3601}, {"judge_results": 3601}, {"mediate_results": 3601},
        {"submit_results_collateral": 2}, {"judge_results_collateral": 0},
    ]
    for change in better_for_provider:
        assert timeouts_acceptable(DealTimeouts(**change), base), change
    for change in worse_for_provider:
        assert not timeouts_acceptable(DealTimeouts(**change), base), change


def test_shared_mediators() -> None:
    assert shared_mediators([M3, M1, M2], [M2.lower(), M3]) == (M2.lower(), M3)
    assert shared_mediators([M1], [M2]) == ()
    assert shared_mediators([M1, P1], [M1, P1], exclude=[M1.lower()]) == (P1,)
    many = [addr(0xCC, i) for i in range(20, 0, -1)]
    assert shared_mediators(many, many) == tuple(sorted(many, key=str.lower))[:16]


# --------------------------------------------------------------------------
# The rules in the matcher
# --------------------------------------------------------------------------


def test_a_match_builds_the_deal() -> None:
    offer = res(mediators=[M2, M1, M3], pricing=pricing(ip=3, pc=7, mult=4, fee=2))
    job = jb(mediators=[M3, M1], timeouts=DealTimeouts(submit_results=1200, judge_results_collateral=5))
    [match] = _matcher([offer], [job]).match_all()
    assert match.job is job and match.offer is offer and match.mediators == (M1, M3)
    deal = match.build_deal(b"\x09" * 32)
    assert isinstance(deal, Deal)
    assert deal.members.solver == SOLVER and deal.members.job_creator == C1
    assert deal.members.resource_provider == P1 and deal.members.mediators == (M1, M3)
    assert deal.timeouts == job.timeouts  # the job's timeouts ...
    assert deal.pricing == offer.pricing  # ... at the provider's prices
    assert deal.nonce == b"\x09" * 32 and len(deal.deal_id) == 32
    assert (deal.protocol.consortium_size, deal.protocol.settings_version) == (1, 0)
    assert match.build_deal(b"\x0a" * 32).deal_id != deal.deal_id
    assert match.build_deal(b"\x09" * 32, settings_version=4).protocol.settings_version == 4


def test_a_panel_of_k_needs_k_shared_mediators_none_of_them_a_party() -> None:
    with pytest.raises(ValueError, match="needs at least that many"):
        jb(mediators=[M1, M2], consortium_size=3)
    with pytest.raises(ValueError, match="odd"):
        jb(mediators=[M1, M2], consortium_size=2)
    panel = jb(mediators=[M1, M2, M3], consortium_size=3)
    assert run([res(P1, mediators=[M1, M2])], [panel]) == []
    assert run([res(P1, mediators=[M1, M2, P1])], [panel.model_copy(update={"mediators": (M1, M2, P1)})]) == []
    [match] = _matcher([res(P1, mediators=[M3, M2, M1])], [panel]).match_all()
    assert match.build_deal(b"\x01" * 32).protocol.consortium_size == 3
    assert _matcher([res(P1, mediators=[M1, M2, M3])], [panel]).match_all(eligible=lambda m: m != M3.lower()) == []


def test_a_provider_asking_for_a_panel_of_three_gets_no_job_judged_by_one_mediator() -> None:
    wary = res(P1, mediators=[M1, M2, M3], min_consortium_size=3)
    lone = jb(mediators=[M1, M2, M3], consortium_size=1)
    assert run([wary], [lone]) == []
    [match] = _matcher([wary], [lone.model_copy(update={"consortium_size": 3})]).match_all()
    assert match.build_deal(b"\x02" * 32).protocol.consortium_size == 3


def test_offers_listing_a_mediator_twice_are_invalid_and_deals_never_repeat_one() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        res(mediators=[M1, M2, M1.lower()])
    with pytest.raises(ValueError, match="listed twice"):
        jb(mediators=[M2, M2])
    [match] = _matcher([res(mediators=[M1, M2, M3])], [jb(mediators=[M3, M2, M1])]).match_all()
    assert match.mediators == (M1, M2, M3)


def test_only_eligible_mediators_are_matched_when_a_filter_is_given() -> None:
    """The solver's view of the protocol's minimum mediator stake: a mediator that is not
    eligible is left out of the deal, and a pair sharing only such mediators is not matched."""
    staked = {M2.lower()}
    offers = [res(P1, mediators=[M1]), res(P2, mediators=[M1, M2], pricing=pricing(ip=5))]
    jobs = [jb(mediators=[M1, M2])]
    [plain] = _matcher(offers, jobs).match_all()
    assert plain.offer.resource_provider == P1 and plain.mediators == (M1,)  # the cheaper offer
    [match] = _matcher(offers, jobs).match_all(eligible=staked.__contains__)
    assert match.offer.resource_provider == P2 and match.mediators == (M2,)
    assert match.build_deal(b"\x01" * 32).members.mediators == (M2,)
    assert _matcher(offers, [jb(mediators=[M1])]).match_all(eligible=staked.__contains__) == []
    one = _matcher(offers, []).match_one(jobs[0], eligible=staked.__contains__)
    assert one is not None and one.mediators == (M2,)
    assert _matcher(offers, jobs).match_all(eligible=lambda m: True)[0].mediators == (M1,)


def test_targeted_job_to_a_provider_lacking_resources_is_not_matched() -> None:
    small, fits = res(P1, spec=ResourceSpec(cpu=1000, ram=1024)), res(P2)
    assert run([small, fits], [jb(spec=ResourceSpec(cpu=8000, ram=1024), target=P1)]) == []
    assert run([small, fits], [jb(spec=ResourceSpec(gpu=1, vram=(8000,)), target=P1)]) == []


def test_targeted_job_goes_only_to_its_target_and_passes_every_other_check() -> None:
    cheap = res(P1, pricing=pricing(ip=1))
    target = res(P2, pricing=pricing(ip=5))
    job = jb(target=P2)
    assert run([cheap, target], [job]) == [(job, target)]
    assert run([cheap, res(P2, mediators=[M2])], [jb(target=P2)]) == []  # no shared mediator
    assert run([cheap, res(P2, modules=["sdxl"])], [jb(target=P2)]) == []  # module not allowed
    assert run([cheap, res(P2, pricing=pricing(ip=11))], [jb(target=P2)]) == []  # over the job's price
    assert run([cheap, res(P2, solver=SOLVER2)], [jb(target=P2)]) == []  # another solver
    assert run([res(P2, timeouts=DealTimeouts(submit_results=3600))], [jb(target=P2)]) == []
    assert run([cheap], [jb(target=P3)]) == []  # the target has no offer


@pytest.mark.parametrize("targeted", [False, True])
def test_capacity_is_respected(targeted: bool) -> None:
    offer = res(P1, slots=2)
    jobs = [jb(created_at=2000 + i, target=P1 if targeted else None) for i in range(5)]
    matches = run([offer], jobs)
    assert [j for j, _ in matches] == jobs[:2]
    assert len(run([offer], jobs, usage={P1: 1})) == 1
    assert run([offer], jobs, usage={P1.lower(): 2}) == []
    assert run([offer], jobs, usage={P1: 7}) == []
    assert len(run([offer], jobs, usage={P2: 7})) == 2


def test_capacity_is_per_provider_across_its_offers() -> None:
    one, three = res(P1, slots=1, pricing=pricing(ip=1)), res(P1, slots=3, pricing=pricing(ip=2))
    jobs = [jb(created_at=2000 + i) for i in range(6)]
    matches = run([one, three], jobs)
    assert [o for _, o in matches] == [one, three, three]


def test_market_price_takes_the_cheapest_then_the_oldest() -> None:
    job = jb(pricing_mode=PricingMode.MARKET_PRICE)
    dear = res(P1, pricing=pricing(ip=3), created_at=10)
    cheap_young = res(P2, pricing=pricing(ip=2), created_at=30)
    cheap_old = res(P3, pricing=pricing(ip=2), created_at=20)
    assert run([dear, cheap_young, cheap_old], [job]) == [(job, cheap_old)]
    # Same price and age: the stable id (provider address, then nonce) decides.
    a, b = res(P2, created_at=5), res(P1, created_at=5)
    assert run([a, b], [job]) == [(job, b)]
    n1, n2 = res(P1, created_at=5, nonce=b"\x02" * 32), res(P1, created_at=5, nonce=b"\x01" * 32)
    assert run([n1, n2], [job]) == [(job, n2)]
    # A lower mediation fee is cheaper at the same instruction price.
    fee0 = res(P2, pricing=pricing(ip=1, fee=0), created_at=99)
    assert run([res(P1, created_at=1), fee0], [job]) == [(job, fee0)]


def test_fixed_price() -> None:
    job = jb(pricing_mode=PricingMode.FIXED_PRICE, pricing=pricing(ip=4, pc=8, fee=1))
    assert run([res(P1, pricing=pricing(ip=5))], [job]) == []
    assert run([res(P1, pricing=pricing(ip=4, pc=9))], [job]) == []
    exact = res(P1, pricing=pricing(ip=4, pc=8))
    assert run([exact], [job]) == [(job, exact)]
    cheaper = res(P2, pricing=pricing(ip=3), created_at=5000)
    assert run([exact, cheaper], [job]) == [(job, cheaper)]
    # Market-price jobs are capped by their limits too (the original charged them anything).
    assert run([res(P1, pricing=pricing(ip=3))], [jb(pricing=pricing(ip=2))]) == []


def test_mediators_must_be_shared_and_not_a_party() -> None:
    assert run([res(P1, mediators=[M2])], [jb(mediators=[M1])]) == []
    assert run([res(P1, mediators=[C1, M2])], [jb(mediators=[C1, M1])]) == []  # only the job creator is shared
    assert run([res(P1, mediators=[P1, M2])], [jb(mediators=[P1])]) == []  # only the provider is shared
    [match] = _matcher([res(P1, mediators=[M2, M3, C1])], [jb(mediators=[M3, C1, M2])]).match_all()
    assert match.mediators == (M2, M3)


def test_module_not_allowed_is_not_matched() -> None:
    assert run([res(P1, modules=["sdxl:v1"])], [jb(ref="cowsay:v0.0.1")]) == []
    assert run([res(P1, modules=["cowsay:v0.0.2"])], [jb(ref="cowsay:v0.0.1")]) == []
    assert len(run([res(P1, modules=["sdxl:v1", "cowsay"])], [jb(ref="cowsay:v0.0.1")])) == 1


def test_different_solver_self_dealing_and_expired_offers_are_not_matched() -> None:
    assert run([res(P1, solver=SOLVER2)], [jb()]) == []
    assert len(run([res(P1, solver=SOLVER2)], [jb(solver=SOLVER2)])) == 1
    assert run([res(C1)], [jb(C1)]) == []  # the controller refuses a deal with oneself
    offer = res(P1, created_at=100, expires_at=200)
    assert len(run([offer], [jb()], now=199)) == 1 and len(run([offer], [jb()])) == 1
    assert run([offer], [jb()], now=200) == []


def test_greedy_policy_oldest_job_first() -> None:
    offer = res(P1, slots=1)
    young, old = jb(C1, created_at=3000), jb(C2, created_at=2000)
    assert run([offer], [young, old]) == [(old, offer)]
    # Same age: creator address, then nonce.
    same_a, same_b = jb(C2, created_at=2000), jb(C1, created_at=2000)
    assert run([offer], [same_a, same_b]) == [(same_b, offer)]
    # First come, first served rather than a maximum matching: the old job takes the
    # cheap big offer that only the young one could use.
    big = res(P1, pricing=pricing(ip=1))
    small = res(P2, pricing=pricing(ip=2), spec=ResourceSpec(cpu=1000, ram=1024))
    old_small = jb(C1, created_at=1, spec=ResourceSpec(cpu=1000, ram=1024))
    young_big = jb(C2, created_at=2, spec=ResourceSpec(cpu=8000, ram=1024))
    assert run([big, small], [young_big, old_small]) == [(old_small, big)]


def test_match_all_changes_nothing() -> None:
    offer = res(P1, slots=1)
    first, second = jb(created_at=1), jb(created_at=2)
    matcher = _matcher([offer], [second, first])
    assert [m.job for m in matcher.match_all()] == [first]
    assert [m.job for m in matcher.match_all()] == [first]
    assert matcher.job_offer_count == 2 and matcher.resource_offer_count == 1
    assert matcher.remove_job_offer(first)
    assert [m.job for m in matcher.match_all()] == [second]
    assert matcher.match_all({P1: 1}) == []  # the first deal is in progress


def test_adding_and_removing_offers() -> None:
    matcher = _matcher([res(P1, spec=ResourceSpec(cpu=1000, ram=1024))], [])
    job = jb(spec=ResourceSpec(cpu=4000, ram=1024))
    matcher.add_job_offer(job)
    assert matcher.match_all() == []  # builds the index for this job's shape
    late = res(P2, spec=ResourceSpec(cpu=4000, ram=1024))
    matcher.add_resource_offer(late)
    assert [m.offer for m in matcher.match_all()] == [late]
    with pytest.raises(ValueError, match="already open"):
        matcher.add_resource_offer(late)
    with pytest.raises(ValueError, match="already open"):
        matcher.add_job_offer(job)
    assert matcher.remove_resource_offer((late.resource_provider.lower(), late.nonce))
    assert not matcher.remove_resource_offer(late)
    assert matcher.match_all() == []
    assert matcher.remove_job_offer(job.key) and not matcher.remove_job_offer(job.key)
    assert matcher.job_offer_count == 0 and matcher.resource_offer_count == 1


@pytest.mark.parametrize("field", ["cpu", "ram", "disk", "vram"])
def test_exact_requirements_count_not_just_their_order_of_magnitude(field: str) -> None:
    # 3000 and 2500 round down to the same power of two: the exact check decides.
    def spec(amount: int) -> ResourceSpec:
        values = {"cpu": 4000, "ram": 4000, "disk": 4000, "vram": 4000} | {field: amount}
        return ResourceSpec(cpu=values["cpu"], ram=values["ram"], disk=values["disk"], gpu=1, vram=(values["vram"],))
    short = res(P1, spec=spec(2500), pricing=pricing(ip=1))
    enough = res(P2, spec=spec(3000), pricing=pricing(ip=2))
    job = jb(spec=spec(3000))
    assert run([short, enough], [job]) == [(job, enough)]
    assert run([short, enough], [jb(spec=spec(3000), target=P1)]) == []


_VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    # field: (the cheap offer, the older job that cannot take it, the younger job that can)
    "module": ({"modules": ["sdxl"]}, {"ref": "cowsay:v1"}, {"ref": "sdxl:v1"}),
    "mediators": ({"mediators": [M2]}, {"mediators": [M1]}, {"mediators": [M1, M2]}),
    "creator": ({}, {"creator": P1}, {"creator": C1}),
    "fee": ({"pricing": pricing(ip=1, fee=5)}, {"pricing": pricing(ip=10, fee=4)}, {"pricing": pricing(ip=10, fee=5)}),
    "timeouts": ({"timeouts": DealTimeouts(submit_results=1200)}, {}, {"timeouts": DealTimeouts(submit_results=1200)}),
    "ram": ({"spec": ResourceSpec(cpu=1000, ram=2500)}, {"spec": ResourceSpec(cpu=1000, ram=3000)},
            {"spec": ResourceSpec(cpu=1000, ram=2100)}),
}


@pytest.mark.parametrize("field", sorted(_VARIANTS))
def test_a_job_differing_in_one_respect_does_not_inherit_an_earlier_walk(field: str) -> None:
    cheap_kw, old_kw, young_kw = _VARIANTS[field]
    cheap = res(P1, **({"pricing": pricing(ip=1)} | cheap_kw))
    dear = res(P2, pricing=pricing(ip=2), slots=5)
    old = jb(**({"created_at": 1} | old_kw))
    young = jb(**({"created_at": 2} | young_kw))
    again = jb(**({"created_at": 3} | old_kw))  # asks exactly what the old one asked
    assert run([cheap, dear], [young, old, again]) == [(old, dear), (young, cheap), (again, dear)]


def test_match_one() -> None:
    cheap, dear = res(P1, pricing=pricing(ip=1), slots=1), res(P2, pricing=pricing(ip=2))
    matcher = _matcher([cheap, dear], [])
    job = jb()
    match = matcher.match_one(job)
    assert isinstance(match, Match) and match.offer is cheap and match.job is job
    assert matcher.match_one(job, {P1: 1}).offer is dear  # type: ignore[union-attr]
    assert matcher.match_one(job, {P1: 1, P2: 1}) is None
    assert matcher.match_one(jb(solver=SOLVER2)) is None
    assert matcher.job_offer_count == 0


# --------------------------------------------------------------------------
# The indexed matcher against an all-pairs oracle
# --------------------------------------------------------------------------

PARTIES = [P1, P2, P3, C1, C2]
# Weighted pools (repeats make a value likelier), so that most pairs are close to
# matching and each rule is what decides often enough.
PROVIDERS = [P1, P2, P3, P1, P2, P3, C1]
CREATORS = [C1, C2, C1, C2, P1]
SOLVERS = [SOLVER] * 12 + [SOLVER2]
MEDIATOR_POOL = [M1] * 6 + [M2, M3, P1, C1]
MODULE_ENTRIES = ["cowsay", "cowsay:v1", "sdxl:v2", "github.com/Lilypad-Tech/lilypad-module-sdxl:v3"]
JOB_REFS = ["cowsay:v1", "cowsay:v2", "sdxl:v2", "sdxl:v3", "github.com/foo/bar:v1"]
TIMEOUTS = [DealTimeouts()] * 14 + [DealTimeouts(submit_results=600), DealTimeouts(agree=1800),
                                   DealTimeouts(judge_results_collateral=0), DealTimeouts(submit_results_collateral=3)]


@st.composite
def specs(draw: Any, low: int, high: int, gpus: list[int]) -> ResourceSpec:
    gpu = draw(st.sampled_from(gpus))
    vram = draw(st.lists(st.integers(low, high), min_size=draw(st.integers(0, gpu)), max_size=gpu))
    return ResourceSpec(cpu=draw(st.integers(low, high)), gpu=gpu, vram=tuple(vram), ram=draw(st.integers(low, high)),
                        disk=draw(st.integers(0, high // 2)))


@st.composite
def prices(draw: Any, ips: list[int], pcs: tuple[int, int], mults: list[int], fees: tuple[int, int]) -> DealPricing:
    ip = draw(st.sampled_from(ips))
    pc = max(ip, draw(st.integers(*pcs)))
    return pricing(ip=ip, pc=pc, mult=draw(st.sampled_from(mults)), fee=draw(st.integers(*fees)))


@st.composite
def resource_offers(draw: Any) -> ResourceOffer:
    created = draw(st.integers(0, 3))
    return ResourceOffer(
        resource_provider=draw(st.sampled_from(PROVIDERS)), solver=draw(st.sampled_from(SOLVERS)),
        spec=draw(specs(2, 12, [0, 1, 2, 3])), slots=draw(st.integers(1, 3)),
        pricing=draw(prices([1, 2, 3, 4], (1, 6), [1, 2, 3], (0, 2))),
        mediators=draw(st.lists(st.sampled_from(MEDIATOR_POOL), min_size=1, max_size=3, unique=True)),
        modules=draw(st.one_of(st.just(()), st.just(()), st.lists(st.sampled_from(MODULE_ENTRIES), max_size=2))),
        timeouts=draw(st.sampled_from(TIMEOUTS)), created_at=created, expires_at=created + draw(st.integers(1, 6)),
        nonce=draw(st.binary(min_size=32, max_size=32)), min_consortium_size=draw(st.sampled_from([1, 1, 1, 3])),
    )


@st.composite
def job_offers(draw: Any) -> JobOffer:
    creator = draw(st.sampled_from(CREATORS))
    target = draw(st.sampled_from([None] * 10 + [P1, P2, C1]))
    mediators = draw(st.lists(st.sampled_from(MEDIATOR_POOL), min_size=1, max_size=3, unique=True))
    return JobOffer(
        job_creator=creator, solver=draw(st.sampled_from(SOLVERS)),
        module=JobModule(ref=draw(st.sampled_from(JOB_REFS)), repo="https://example.org/a/b", commit=COMMIT),
        spec=draw(specs(0, 6, [0, 0, 0, 1, 1, 2])), pricing_mode=draw(st.sampled_from(list(PricingMode))),
        pricing=draw(prices([3, 4, 4], (5, 8), [1, 1, 1, 2], (1, 2))),
        mediators=mediators, consortium_size=draw(st.sampled_from([1, 1, 1, 3])) if len(mediators) == 3 else 1,
        target=None if target == creator else target, timeouts=draw(st.sampled_from(TIMEOUTS)),
        created_at=draw(st.integers(0, 3)), nonce=draw(st.binary(min_size=32, max_size=32)),
    )


def oracle_acceptable(job: JobOffer, offer: ResourceOffer) -> bool:
    """The rules, written out pair by pair."""
    return (
        job.solver == offer.solver
        and (job.target is None or job.target == offer.resource_provider)
        and job.job_creator != offer.resource_provider
        and resources_suffice(job.spec, offer.spec)
        and price_acceptable(job.pricing, offer.pricing)
        and timeouts_acceptable(job.timeouts, offer.timeouts)
        and amounts_fit(offer.pricing, job.timeouts)
        and module_allowed(offer.modules, job.module)
        and len(shared_mediators(job.mediators, offer.mediators, exclude=[job.job_creator, offer.resource_provider]))
        >= job.consortium_size
        and job.consortium_size >= offer.min_consortium_size
    )


def oracle(jobs: list[JobOffer], offers: list[ResourceOffer], usage: dict[str, int], now: int | None) -> list[Any]:
    """All pairs, under the documented greedy policy."""
    used = Counter({k.lower(): v for k, v in usage.items()})
    out = []
    for job in sorted(jobs, key=lambda j: (j.created_at, j.job_creator.lower(), j.nonce)):
        candidates = [
            o for o in offers
            if oracle_acceptable(job, o) and used[o.resource_provider.lower()] < o.slots
            and (now is None or o.expires_at > now)
        ]
        if candidates:
            best = min(candidates, key=lambda o: (o.pricing.instruction_price, o.pricing.mediation_fee,
                                                  o.pricing.payment_collateral, o.created_at,
                                                  o.resource_provider.lower(), o.nonce))
            used[best.resource_provider.lower()] += 1
            meds = shared_mediators(job.mediators, best.mediators, exclude=[job.job_creator, best.resource_provider])
            out.append((job.key, best.key, meds))
    return out


def unique(items: list[Any]) -> list[Any]:
    seen: dict[Any, Any] = {}
    for item in items:
        seen.setdefault(item.key, item)
    return list(seen.values())


JOB_FIELDS = ["spec", "mediators", "module", "pricing", "timeouts", "job_creator", "target", "solver",
              "consortium_size"]
OFFER_FIELDS = ["spec", "mediators", "modules", "pricing", "timeouts", "resource_provider", "slots", "solver",
                "expires_at", "min_consortium_size"]


@st.composite
def families(draw: Any, offers: Any, fields: list[str], max_size: int) -> list[Any]:
    """Offers that are mostly copies of a few prototypes, each with at most one
    field changed: many ties, many identical requests, contention for slots."""
    prototypes = draw(st.lists(offers, min_size=1, max_size=3))
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        update = {"nonce": draw(st.binary(min_size=32, max_size=32))}
        if draw(st.booleans()):
            update["created_at"] = draw(st.integers(0, 3))
        field = draw(st.sampled_from([None, None, *fields]))
        if field is not None:
            update[field] = getattr(draw(offers), field)
        item = draw(st.sampled_from(prototypes)).model_copy(update=update)
        if isinstance(item, JobOffer) and item.target == item.job_creator:
            item = item.model_copy(update={"target": None})
        if isinstance(item, ResourceOffer) and item.expires_at <= item.created_at:
            item = item.model_copy(update={"expires_at": item.created_at + 1})
        out.append(item)
    return unique(out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    offers=st.one_of(families(resource_offers(), OFFER_FIELDS, 12),
                     st.lists(resource_offers(), max_size=12).map(unique)),
    jobs=st.one_of(families(job_offers(), JOB_FIELDS, 20), st.lists(job_offers(), max_size=20).map(unique)),
    usage=st.dictionaries(st.sampled_from(PARTIES), st.integers(0, 3), max_size=3),
    now=st.one_of(st.none(), st.integers(0, 8)),
    late=st.lists(resource_offers(), max_size=4).map(unique),
    drop=st.sets(st.integers(0, 9), max_size=4),
)
def test_matcher_equals_the_all_pairs_oracle(
    offers: list[ResourceOffer], jobs: list[JobOffer], usage: dict[str, int], now: int | None,
    late: list[ResourceOffer], drop: set[int],
) -> None:
    for job, offer in itertools.product(jobs, offers):
        assert pair_acceptable(job, offer) == oracle_acceptable(job, offer)
    matcher = _matcher(offers, jobs)
    got = [(m.job.key, m.offer.key, m.mediators) for m in matcher.match_all(usage, now=now)]
    assert got == oracle(jobs, offers, usage, now)
    # The index stays right as offers come and go after it was built.
    kept = [o for i, o in enumerate(offers) if i not in drop]
    for i in drop & set(range(len(offers))):
        assert matcher.remove_resource_offer(offers[i])
    keys = {o.key for o in kept}
    for offer in late:
        if offer.key not in keys:
            matcher.add_resource_offer(offer)
            kept.append(offer)
            keys.add(offer.key)
    got = [(m.job.key, m.offer.key, m.mediators) for m in matcher.match_all(usage, now=now)]
    assert got == oracle(jobs, kept, usage, now)
    for job in jobs:
        one = matcher.match_one(job, usage, now=now)
        expected = oracle([job], kept, usage, now)
        assert ([(one.job.key, one.offer.key, one.mediators)] if one else []) == expected


def test_order_keys_are_the_documented_ones() -> None:
    offer, job = res(P1, created_at=7), jb(C1, created_at=9)
    assert offer_order_key(offer) == (1, 1, 2, 7, P1.lower(), offer.nonce)
    assert job_order_key(job) == (9, C1.lower(), job.nonce)


# --------------------------------------------------------------------------
# Scale (correctness only; the time is printed, not asserted)
# --------------------------------------------------------------------------


def _scale_market(n_jobs: int, n_offers: int, uniform: bool, seed: int) -> tuple[list[ResourceOffer], list[JobOffer]]:
    rng = random.Random(seed)
    providers = [addr(0xAA, i + 1) for i in range(n_offers)]
    creators = [addr(0xBB, i + 1) for i in range(max(1, n_jobs // 20))]
    specs_ = [ResourceSpec(cpu=c, gpu=g, vram=(v,) * g, ram=r, disk=d)
              for c, g, v, r, d in [(1000, 0, 0, 1024, 10), (4000, 0, 0, 8192, 100), (8000, 1, 24000, 16384, 100),
                                    (16000, 2, 80000, 65536, 1000), (32000, 4, 48000, 131072, 1000)]]
    needs = [ResourceSpec(cpu=c, gpu=g, vram=(v,) * g, ram=r, disk=d)
             for c, g, v, r, d in [(500, 0, 0, 512, 0), (1000, 0, 0, 1024, 10), (3000, 0, 0, 4096, 50),
                                   (2000, 1, 16000, 8192, 0), (8000, 2, 40000, 32768, 500)]]
    prices_ = [pricing(ip=ip, pc=10, fee=1) for ip in (1, 2, 3, 5)]
    limits = [pricing(ip=ip, pc=10, fee=1) for ip in (2, 3, 5, 5)]
    template_offer = res(P1, mediators=[M1, M2])
    template_job = jb(C1, mediators=[M1])
    offers = [
        template_offer.model_copy(update={
            "resource_provider": providers[i], "nonce": rng.randbytes(32), "created_at": rng.randint(0, 1000),
            "slots": rng.choice([1, 2, 4]),
            "spec": specs_[-1] if uniform else rng.choice(specs_),
            "pricing": prices_[0] if uniform else rng.choice(prices_),
            "mediators": (M1, M2) if uniform else rng.choice([(M1,), (M2,), (M1, M2)]),
            "modules": () if uniform else rng.choice([(), (), ("cowsay",), ("sdxl:v1",)]),
        })
        for i in range(n_offers)
    ]
    jobs = [
        template_job.model_copy(update={
            "job_creator": rng.choice(creators), "nonce": rng.randbytes(32), "created_at": rng.randint(0, 10**6),
            "spec": needs[0] if uniform else rng.choice(needs),
            "pricing": limits[-1] if uniform else rng.choice(limits),
            "mediators": (M1,) if uniform else rng.choice([(M1,), (M2,), (M1, M2), (M3,)]),
            "module": template_job.module if uniform or rng.random() < 0.7 else JobModule(
                ref="sdxl:v1", repo="https://example.org/sdxl", commit=COMMIT),
            "target": None if uniform or rng.random() < 0.95 else rng.choice(providers),
        })
        for _ in range(n_jobs)
    ]
    return offers, jobs


@pytest.mark.parametrize("uniform", [True, False])
def test_scale_10k_jobs_by_1k_offers(uniform: bool, capsys: pytest.CaptureFixture[str]) -> None:
    offers, jobs = _scale_market(10_000, 1_000, uniform, seed=7)
    matcher = _matcher(offers, jobs)
    started = time.perf_counter()
    matches = matcher.match_all({})
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nmatch_all: {len(jobs)} jobs x {len(offers)} offers ({'uniform' if uniform else 'varied'}): "
              f"{len(matches)} matches in {elapsed:.3f} s")
    slots = {o.resource_provider: o.slots for o in offers}
    per_provider = Counter(m.offer.resource_provider for m in matches)
    assert all(per_provider[p] <= slots[p] for p in per_provider)  # capacity
    assert len({m.job.key for m in matches}) == len(matches)  # each job at most once
    if uniform:
        # Every job fits every offer: all slots fill, with the oldest jobs.
        assert len(matches) == sum(slots.values()) < len(jobs)
        oldest = sorted(jobs, key=job_order_key)[: len(matches)]
        assert [m.job for m in matches] == oldest
    else:
        assert 0 < len(matches) < len(jobs)
        assert all(pair_acceptable(m.job, m.offer) for m in matches)
        # Maximal: no unmatched job is acceptable to an offer with a slot left.
        free = [o for o in offers if per_provider[o.resource_provider] < o.slots]
        matched = {m.job.key for m in matches}
        assert not any(pair_acceptable(j, o) for j in jobs if j.key not in matched for o in free)
