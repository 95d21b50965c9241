"""SolverCore: accepting, matching, expiring, cancelling, on-chain states, events, restarts."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from lilypad.exceptions import (
    DealNotFoundError,
    OfferError,
    OfferExpiredError,
    OfferFromFutureError,
    OfferNotFoundError,
    OfferReplayError,
    OfferSignatureError,
    OfferStateError,
    ResultCIDMismatchError,
)
from lilypad.protocol.auth import sign_cancel
from lilypad.protocol.deal import AgreementState, DealPricing, DealTimeouts, parse_state, state_name
from lilypad.protocol.offers import JobModule, JobOffer, ResourceOffer
from lilypad.protocol.signing import MAX_CLOCK_SKEW, OfferDomain, SignedOffer, offer_id, sign_offer
from lilypad.solver.service import (
    Event,
    EventBus,
    SolverCore,
    holds_slot,
    provider_usage,
    timeout_due,
)
from lilypad.solver.store import AgreementTimes, SlotRow, SolverStore

DOMAIN = OfferDomain(chain_id=31337, verifying_contract="0x" + "c0" * 20)
P1, P2, C1, C2, MED, STRANGER = (Account.create() for _ in range(6))
SOLVER = Account.create().address
COMMIT = "0123456789abcdef0123456789abcdef01234567"
T0 = 1_800_000_000


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def resource(provider: Any = P1, *, sign_with: Any = None, **kw: Any) -> SignedOffer:
    base: dict[str, Any] = {"resource_provider": provider.address, "solver": SOLVER, "mediators": [MED.address],
                            "created_at": T0}
    return sign_offer(ResourceOffer(**(base | kw)), sign_with or provider, DOMAIN)


def job(creator: Any = C1, **kw: Any) -> SignedOffer:
    base: dict[str, Any] = {
        "job_creator": creator.address, "solver": SOLVER, "mediators": [MED.address], "created_at": T0,
        "module": JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit=COMMIT), "inputs": {"Message": "moo"},
    }
    return sign_offer(JobOffer(**(base | kw)), creator, DOMAIN)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "solver.db"


@pytest.fixture
def core(db: Path, clock: Clock) -> SolverCore:
    return SolverCore(SolverStore(db), DOMAIN, solver=SOLVER, match_timeout=5, clock=clock)


# --------------------------------------------------------------------------
# Accepting offers
# --------------------------------------------------------------------------


def test_signed_offers_are_accepted_and_stored(core: SolverCore) -> None:
    r, j = resource(), job()
    rec_r, rec_j = core.accept_offer(r), core.accept_offer(j)
    assert rec_r.id == offer_id(r, DOMAIN) and rec_j.id == offer_id(j, DOMAIN)
    assert [o.id for o in core.open_offers("resource")] == [rec_r.id]
    assert core.offer("job", rec_j.id.upper().replace("0X", "0x")).signed == j
    assert core.counts() == {"resource_offers": 1, "job_offers": 1}


def test_tampered_offer_is_refused(core: SolverCore) -> None:
    signed = resource()
    tampered = SignedOffer(offer=signed.offer.model_copy(update={"slots": 50}), signature=signed.signature)
    with pytest.raises(OfferSignatureError):
        core.accept_offer(tampered)
    with pytest.raises(OfferSignatureError):  # signed by someone else
        core.accept_offer(SignedOffer(offer=signed.offer, signature=resource(P2).signature))
    assert core.open_offers("resource") == []


def test_replayed_offer_is_refused(core: SolverCore) -> None:
    signed = job()
    core.accept_offer(signed)
    with pytest.raises(OfferReplayError):
        core.accept_offer(signed)


def test_stale_future_and_expired_offers_are_refused(core: SolverCore, clock: Clock) -> None:
    with pytest.raises(OfferExpiredError):
        core.accept_offer(job(created_at=T0 - MAX_CLOCK_SKEW - 1))
    with pytest.raises(OfferFromFutureError):
        core.accept_offer(job(created_at=T0 + MAX_CLOCK_SKEW + 1))
    with pytest.raises(OfferExpiredError):
        core.accept_offer(resource(created_at=T0 - 10, expires_at=T0))
    with pytest.raises(OfferError, match="names solver"):
        core.accept_offer(job(solver=STRANGER.address))
    assert core.open_offers("job") == [] and core.open_offers("resource") == []


# --------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------


def test_deals_name_the_current_settings_version_and_the_jobs_panel_size(db: Path, clock: Clock) -> None:
    reads: list[int] = []

    def version() -> int:
        reads.append(7)
        return 7

    core = SolverCore(SolverStore(db), DOMAIN, solver=SOLVER, match_timeout=5, clock=clock, settings_version=version)
    assert core.match_round() == [] and reads == []  # nothing matched, nothing read
    meds = [MED.address, P2.address, STRANGER.address]
    core.accept_offer(resource(mediators=meds, slots=2))
    core.accept_offer(job(mediators=meds, consortium_size=3))
    core.accept_offer(job(C2, mediators=meds))
    deals = core.match_round()
    assert sorted([(d.deal.protocol.settings_version, d.deal.protocol.consortium_size) for d in deals]) == [(7, 1), (7, 3)]
    assert reads == [7]  # once per round


def test_a_job_and_a_resource_offer_make_a_deal(core: SolverCore) -> None:
    timeouts = DealTimeouts(agree=600, submit_results=900, judge_results=600, mediate_results=600)
    pricing = DealPricing(instruction_price=5, payment_collateral=10, results_collateral_multiple=3, mediation_fee=2)
    r = core.accept_offer(resource(pricing=pricing))
    j = core.accept_offer(job(timeouts=timeouts))
    (deal,) = core.match_round()
    assert deal.deal_id == "0x" + deal.deal.deal_id.hex()
    terms = deal.deal
    assert (terms.members.solver, terms.members.job_creator, terms.members.resource_provider) == (
        SOLVER, C1.address, P1.address)
    assert terms.members.mediators == (MED.address,)
    assert terms.pricing == pricing  # the provider's prices
    assert terms.timeouts == timeouts  # the job's timeouts
    assert (deal.job_offer_id, deal.resource_offer_id) == (j.id, r.id)
    assert core.offer("job", j.id).state == "matched"
    assert core.offer("job", j.id).deal_id == deal.deal_id
    assert core.offer("resource", r.id).state == "open"  # it has more slots to fill
    assert core.deals(party=C1.address) == [deal] and core.deals(party=STRANGER.address) == []
    assert core.match_round() == []  # nothing left to match


def test_deal_nonces_are_fresh(core: SolverCore) -> None:
    core.accept_offer(resource(slots=2))
    core.accept_offer(job())
    core.accept_offer(job(C2))
    deals = core.match_round()
    assert len(deals) == 2
    assert deals[0].deal.nonce != deals[1].deal.nonce


def test_targeted_job_respects_capacity(core: SolverCore) -> None:
    core.accept_offer(resource(P1, slots=1))
    core.accept_offer(resource(P2, slots=1))
    core.accept_offer(job(C1, target=P1.address))
    (first,) = core.match_round()
    assert first.resource_provider == P1.address
    targeted = core.accept_offer(job(C2, target=P1.address))
    assert core.match_round() == []  # P1's one slot is taken; P2 is not its target
    assert core.offer("job", targeted.id).state == "open"
    assert core.usage() == {P1.address.lower(): 1}
    core.on_chain_state(first.deal_id, AgreementState.RESULTS_ACCEPTED)  # frees the slot
    (second,) = core.match_round()
    assert (second.job_offer_id, second.resource_provider) == (targeted.id, P1.address)


def test_a_deal_nobody_took_up_frees_its_slot_after_the_agree_window(db: Path, clock: Clock) -> None:
    core = SolverCore(SolverStore(db), DOMAIN, match_timeout=1000, clock=clock)
    core.accept_offer(resource(P1, slots=1, expires_at=T0 + 100_000))
    core.accept_offer(job(C1, timeouts=DealTimeouts(agree=60)))
    (first,) = core.match_round()
    clock.now += 30
    waiting = core.accept_offer(job(C2, created_at=int(clock.now)))
    assert core.match_round() == []  # the first deal holds P1's only slot
    clock.now = first.created_at + 60  # nobody agreed on-chain within its agree window
    (second,) = core.match_round()
    assert (second.job_offer_id, second.resource_provider) == (waiting.id, P1.address)


def test_slot_accounting_is_pure() -> None:
    def row(state: AgreementState, created: float = 0) -> SlotRow:
        return SlotRow(P1.address.lower(), state, created, 60)

    assert holds_slot(row(AgreementState.DEAL_AGREED), now=10**9)
    assert holds_slot(row(AgreementState.NONE, created=100), now=159)
    assert not holds_slot(row(AgreementState.NONE, created=100), now=160)
    assert not holds_slot(row(AgreementState.TIMEOUT_AGREE), now=0)
    rows = [row(AgreementState.DEAL_AGREED), row(AgreementState.RESULTS_SUBMITTED),
            row(AgreementState.RESULTS_ACCEPTED)]
    assert provider_usage(rows, now=0) == {P1.address.lower(): 2}


# --------------------------------------------------------------------------
# Expiry and cancelling
# --------------------------------------------------------------------------


def test_unmatched_job_expires_after_the_match_timeout(core: SolverCore, clock: Clock) -> None:
    j = core.accept_offer(job())
    clock.now += 4
    assert core.expire() == []
    clock.now += 1.5
    expired, deals = core.tick()
    assert [(e.id, e.state) for e in expired] == [(j.id, "expired")]
    assert deals == []
    core.accept_offer(resource(created_at=int(clock.now)))
    assert core.match_round() == []  # the expired job is out of the matcher
    assert core.offer("job", j.id).state == "expired"


def test_resource_offer_expires_at_its_expiry(core: SolverCore, clock: Clock) -> None:
    r = core.accept_offer(resource(expires_at=T0 + 100))
    clock.now = T0 + 100
    (expired,) = core.expire()
    assert (expired.id, expired.kind, expired.state) == (r.id, "resource", "expired")
    core.accept_offer(job(created_at=int(clock.now)))
    assert core.match_round() == []


def test_cancel_needs_the_authors_signature(core: SolverCore, clock: Clock) -> None:
    r = core.accept_offer(resource())
    with pytest.raises(OfferSignatureError):
        core.cancel_offer("resource", r.id, **sign_cancel("resource", r.id, STRANGER, DOMAIN, created_at=T0))
    with pytest.raises(OfferSignatureError):  # a cancel for another kind does not verify
        core.cancel_offer("resource", r.id, **sign_cancel("job", r.id, P1, DOMAIN, created_at=T0))
    with pytest.raises(OfferExpiredError):
        core.cancel_offer("resource", r.id, **sign_cancel("resource", r.id, P1, DOMAIN, created_at=T0 - 1000))
    cancelled = core.cancel_offer("resource", r.id, **sign_cancel("resource", r.id, P1, DOMAIN, created_at=T0))
    assert cancelled.state == "cancelled"
    with pytest.raises(OfferStateError):
        core.cancel_offer("resource", r.id, **sign_cancel("resource", r.id, P1, DOMAIN, created_at=T0))
    core.accept_offer(job())
    assert core.match_round() == []
    with pytest.raises(OfferNotFoundError):
        core.cancel_offer("job", "0x" + "00" * 32, **sign_cancel("job", "0x" + "00" * 32, C1, DOMAIN))


def test_a_matched_job_cannot_be_cancelled(core: SolverCore) -> None:
    core.accept_offer(resource())
    j = core.accept_offer(job())
    core.match_round()
    with pytest.raises(OfferStateError, match="matched"):
        core.cancel_offer("job", j.id, **sign_cancel("job", j.id, C1, DOMAIN, created_at=T0))


# --------------------------------------------------------------------------
# On-chain states and timeouts
# --------------------------------------------------------------------------


def test_on_chain_states_are_recorded_and_overdue_deals_listed(core: SolverCore, clock: Clock) -> None:
    core.accept_offer(resource())
    core.accept_offer(job(timeouts=DealTimeouts(agree=100, submit_results=900, judge_results=300,
                                                mediate_results=400)))
    assert not core.may_time_out()  # no deal: the timeout keeper does not read the chain's clock
    (deal,) = core.match_round()
    assert not core.may_time_out()  # made, not yet seen on-chain: no timeout can end it
    core.on_chain_state(deal.deal_id, AgreementState.DEAL_NEGOTIATING, at=T0 + 10)
    assert core.may_time_out()
    core.on_chain_state(deal.deal_id, AgreementState.DEAL_NEGOTIATING, at=T0 + 20)  # keeps the first agree's time
    assert core.overdue_deals(now=T0 + 109) == []
    ((due, function),) = core.overdue_deals(now=T0 + 110)
    assert (due.deal_id, function) == (deal.deal_id, "timeoutAgree")
    core.on_chain_state(deal.deal_id, AgreementState.DEAL_AGREED, at=T0 + 50)
    assert core.overdue_deals(now=T0 + 949) == []
    assert [f for _, f in core.overdue_deals(now=T0 + 950)] == ["timeoutSubmitResult"]
    record = core.on_chain_state(deal.deal_id, AgreementState.RESULTS_SUBMITTED, "bafyresult", at=T0 + 60)
    assert record.result_cid == "bafyresult" and core.onchain_result_cid(deal.deal_id) == "bafyresult"
    assert record.times == AgreementTimes(created_at=T0 + 10, agreed_at=T0 + 50, results_submitted_at=T0 + 60)
    assert [f for _, f in core.overdue_deals(now=T0 + 360)] == ["timeoutJudgeResult"]
    core.on_chain_state(deal.deal_id, AgreementState.RESULTS_ACCEPTED)
    assert core.overdue_deals(now=T0 + 10**6) == []
    assert not core.may_time_out()
    assert core.deals(states=[AgreementState.RESULTS_ACCEPTED])[0].deal_id == deal.deal_id
    with pytest.raises(DealNotFoundError):
        core.on_chain_state("0x" + "00" * 32, AgreementState.DEAL_AGREED)


def test_timeout_due_mirrors_the_controller() -> None:
    from lilypad.protocol.deal import Deal, DealMembers

    deal = Deal(members=DealMembers(solver=SOLVER, job_creator=C1.address, resource_provider=P1.address,
                                    mediators=[MED.address]),
                timeouts=DealTimeouts(agree=10, submit_results=20, judge_results=30, mediate_results=40))
    times = AgreementTimes(created_at=100, agreed_at=200, results_submitted_at=300, mediation_requested_at=400)
    cases = [
        (AgreementState.DEAL_NEGOTIATING, 110, "timeoutAgree"),
        (AgreementState.DEAL_AGREED, 220, "timeoutSubmitResult"),
        (AgreementState.RESULTS_SUBMITTED, 330, "timeoutJudgeResult"),
        (AgreementState.RESULTS_CHECKED, 440, "timeoutMediateResult"),
    ]
    for state, deadline, function in cases:
        assert timeout_due(deal, state, times, deadline - 1) is None  # the window is still open
        assert timeout_due(deal, state, times, deadline) == function
    assert timeout_due(deal, AgreementState.DEAL_AGREED, AgreementTimes(), 10**9) is None  # start unknown
    for state in (AgreementState.NONE, AgreementState.RESULTS_ACCEPTED, AgreementState.TIMEOUT_AGREE):
        assert timeout_due(deal, state, times, 10**9) is None


def test_state_names_are_the_contracts() -> None:
    assert state_name(AgreementState.DEAL_AGREED) == "DealAgreed"
    assert state_name(AgreementState.TIMEOUT_SUBMIT_RESULTS) == "TimeoutSubmitResults"
    for state in AgreementState:
        assert parse_state(state_name(state)) is state
        assert parse_state(state.name) is state
        assert parse_state(str(int(state))) is state
    with pytest.raises(ValueError):
        parse_state("Agreed-ish")


def test_uploaded_result_must_match_the_on_chain_cid(core: SolverCore) -> None:
    core.accept_offer(resource())
    core.accept_offer(job())
    (deal,) = core.match_round()
    core.record_result(deal.deal_id, "bafyone", 1)
    core.on_chain_state(deal.deal_id, AgreementState.RESULTS_SUBMITTED, "bafytwo")
    with pytest.raises(ResultCIDMismatchError):
        core.record_result(deal.deal_id, "bafyone", 1)
    assert core.record_result(deal.deal_id, "bafytwo", 2).cid == "bafytwo"


def test_job_of_a_deal(core: SolverCore) -> None:
    core.accept_offer(resource())
    core.accept_offer(job(inputs={"Message": "hello"}))
    (deal,) = core.match_round()
    described = core.job(deal.deal_id)
    assert described["module"] == {"ref": "cowsay:v0.0.1", "repo": "builtin:cowsay", "commit": COMMIT}
    assert described["inputs"] == {"Message": "hello"}


# --------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------


def test_events_reach_subscribers_from_any_thread(core: SolverCore) -> None:
    async def scenario() -> list[Event]:
        subscription = core.bus.subscribe()
        core.accept_offer(resource())  # published on the loop's own thread
        worker = threading.Thread(target=lambda: (core.accept_offer(job()), core.match_round()))
        worker.start()
        await asyncio.to_thread(worker.join)
        received = [await subscription.get() for _ in range(3)]
        subscription.close()
        return [e for e in received if e is not None]

    events = asyncio.run(scenario())
    assert [(e.type, e.data["event"]) for e in events] == [("offer", "created"), ("offer", "created"),
                                                           ("deal", "created")]
    assert events[0].id < events[1].id < events[2].id
    assert events[2].data["deal"]["terms"]["members"]["job_creator"] == C1.address
    assert core.bus.subscriber_count == 0


def test_a_subscriber_that_falls_behind_is_closed() -> None:
    bus = EventBus(maxsize=2)

    async def scenario() -> tuple[list[Event | None], bool]:
        subscription = bus.subscribe()
        for i in range(3):
            bus.publish("offer", {"n": i})
        return [await subscription.get()], subscription.overflowed

    received, overflowed = asyncio.run(scenario())
    assert received == [None] and overflowed
    assert bus.subscriber_count == 0


# --------------------------------------------------------------------------
# Restart
# --------------------------------------------------------------------------


def test_a_restart_keeps_offers_deals_and_nonces(db: Path, clock: Clock) -> None:
    first = SolverCore(SolverStore(db), DOMAIN, match_timeout=5, clock=clock)
    r1 = first.accept_offer(resource(P1, slots=1))
    j1 = first.accept_offer(job(C1))
    (deal,) = first.match_round()
    first.on_chain_state(deal.deal_id, AgreementState.DEAL_AGREED, at=T0 + 1)
    waiting = first.accept_offer(job(C2))  # P1 is busy: it waits
    assert first.match_round() == []
    replayed = job(C1, created_at=T0 + 1)
    first.accept_offer(replayed)
    first.store.close()

    second = SolverCore(SolverStore(db), DOMAIN, match_timeout=5, clock=clock)
    assert second.deal(deal.deal_id).deal == deal.deal
    assert second.deal(deal.deal_id).state == AgreementState.DEAL_AGREED
    assert second.offer("job", j1.id).deal_id == deal.deal_id
    assert [o.id for o in second.open_offers("resource")] == [r1.id]
    assert second.counts() == {"resource_offers": 1, "job_offers": 2}
    with pytest.raises(OfferReplayError):
        second.accept_offer(replayed)
    second.on_chain_state(deal.deal_id, AgreementState.RESULTS_ACCEPTED)
    matched = second.match_round()
    assert [d.job_offer_id for d in matched] == [waiting.id]  # the older waiting job first
    second.store.close()
