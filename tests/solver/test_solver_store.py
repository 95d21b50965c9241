"""The solver's SQLite store: schema, offers, deals, results, nonces, restarts."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from lilypad.exceptions import SolverStoreError
from lilypad.protocol.deal import AgreementState, Deal
from lilypad.protocol.offers import JobModule, JobOffer, ResourceOffer
from lilypad.protocol.signing import NonceRegistry, OfferDomain, SignedOffer, sign_offer
from lilypad.solver.matching import Matcher
from lilypad.solver.store import (
    SCHEMA_VERSION,
    AgreementTimes,
    SolverStore,
)

DOMAIN = OfferDomain(chain_id=31337, verifying_contract="0x" + "c0" * 20)
PROVIDER, CREATOR, MEDIATOR, STRANGER = (Account.create() for _ in range(4))
SOLVER = "0x" + "5e" * 20
COMMIT = "0123456789abcdef0123456789abcdef01234567"
NOW = 1_700_000_000


def signed_resource(**kw: Any) -> SignedOffer:
    base: dict[str, Any] = {"resource_provider": PROVIDER.address, "solver": SOLVER,
                            "mediators": [MEDIATOR.address], "created_at": NOW, "slots": 2}
    return sign_offer(ResourceOffer(**(base | kw)), PROVIDER, DOMAIN)


def signed_job(**kw: Any) -> SignedOffer:
    base: dict[str, Any] = {
        "job_creator": CREATOR.address, "solver": SOLVER, "mediators": [MEDIATOR.address], "created_at": NOW,
        "module": JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit=COMMIT), "inputs": {"Message": "hi"},
    }
    return sign_offer(JobOffer(**(base | kw)), CREATOR, DOMAIN)


def make_deal(job: SignedOffer, offer: SignedOffer) -> Deal:
    matcher = Matcher()
    matcher.add_resource_offer(offer.offer)  # type: ignore[arg-type]
    match = matcher.match_one(job.offer)  # type: ignore[arg-type]
    assert match is not None
    return match.build_deal(b"\x07" * 32)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "solver" / "solver.db"


def test_schema_is_created_in_wal_mode_and_versioned(db: Path) -> None:
    with SolverStore(db) as store:
        assert store.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"schema_version", "resource_offers", "job_offers", "deals", "deal_parties", "results",
            "nonces"} <= tables
    conn.close()
    with SolverStore(db) as again:  # re-opening migrates nothing twice
        assert again.schema_version == SCHEMA_VERSION


def test_a_newer_schema_is_refused(db: Path) -> None:
    SolverStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(SolverStoreError, match="newer"):
        SolverStore(db)


def test_offers_round_trip_and_survive_a_reopen(db: Path) -> None:
    resource, job = signed_resource(), signed_job()
    with SolverStore(db) as store:
        store.add_offer("0xr1", resource, now=NOW + 1)
        store.add_offer("0xj1", job, now=NOW + 2)
    with SolverStore(db) as store:
        (r,) = store.offers("resource", state="open")
        (j,) = store.offers("job", state="open")
        assert (r.id, r.state, r.signed, r.accepted_at) == ("0xr1", "open", resource, NOW + 1)
        assert (j.id, j.state, j.signed, j.deal_id) == ("0xj1", "open", job, None)
        assert store.offer("job", "0xmissing") is None


def test_duplicate_offer_key_is_refused(db: Path) -> None:
    job = signed_job()
    with SolverStore(db) as store:
        store.add_offer("0xj1", job, now=NOW)
        with pytest.raises(sqlite3.IntegrityError):
            store.add_offer("0xj2", job, now=NOW)


def test_offer_state_moves_only_from_the_expected_state(db: Path) -> None:
    with SolverStore(db) as store:
        store.add_offer("0xj1", signed_job(), now=NOW)
        assert store.set_offer_state("job", "0xj1", "cancelled", now=NOW + 1)
        assert not store.set_offer_state("job", "0xj1", "cancelled", now=NOW + 2)
        assert store.offer("job", "0xj1").state == "cancelled"  # type: ignore[union-attr]
        with pytest.raises(ValueError):
            store.set_offer_state("resource", "0xj1", "matched", now=NOW)


def test_expire_offers(db: Path) -> None:
    with SolverStore(db) as store:
        store.add_offer("0xold", signed_job(), now=NOW)
        store.add_offer("0xnew", signed_job(), now=NOW + 50)
        store.add_offer("0xr", signed_resource(expires_at=NOW + 100), now=NOW)
        expired = store.expire_offers(now=NOW + 60, job_accepted_before=NOW + 30)
        assert [(e.id, e.state) for e in expired] == [("0xold", "expired")]
        expired = store.expire_offers(now=NOW + 100, job_accepted_before=NOW + 30)
        assert [(e.kind, e.id) for e in expired] == [("resource", "0xr")]
        assert [o.id for o in store.offers("job", state="open")] == ["0xnew"]


def test_record_match_stores_the_deal_and_matches_the_job(db: Path) -> None:
    job, resource = signed_job(), signed_resource()
    deal = make_deal(job, resource)
    with SolverStore(db) as store:
        store.add_offer("0xj", job, now=NOW)
        store.add_offer("0xr", resource, now=NOW)
        record = store.record_match(deal, job_offer_id="0xj", resource_offer_id="0xr", now=NOW + 1)
        assert record is not None
        assert record.deal_id == "0x" + deal.deal_id.hex()
        assert store.offer("job", "0xj").deal_id == record.deal_id  # type: ignore[union-attr]
        assert store.offer("job", "0xj").state == "matched"  # type: ignore[union-attr]
        # The job offer is no longer open: a second match of it stores nothing.
        other = deal.model_copy(update={"nonce": b"\x08" * 32})
        assert store.record_match(other, job_offer_id="0xj", resource_offer_id="0xr", now=NOW + 2) is None
        assert len(store.deals()) == 1
    with SolverStore(db) as store:
        loaded = store.deal(record.deal_id.upper().replace("0X", "0x"))
        assert loaded is not None
        assert loaded.deal == deal and loaded.deal.deal_id == deal.deal_id
        assert (loaded.job_offer_id, loaded.resource_offer_id, loaded.state) == ("0xj", "0xr", AgreementState.NONE)
        for party in (CREATOR.address, PROVIDER.address, MEDIATOR.address.lower()):
            assert [d.deal_id for d in store.deals(party=party)] == [record.deal_id]
        assert store.deals(party=STRANGER.address) == []
        assert len(store.deals(states=[AgreementState.NONE])) == 1
        assert store.deals(states=[AgreementState.DEAL_AGREED]) == []


def test_deal_state_times_result_and_slots(db: Path) -> None:
    job, resource = signed_job(), signed_resource()
    deal = make_deal(job, resource)
    with SolverStore(db) as store:
        store.add_offer("0xj", job, now=NOW)
        store.add_offer("0xr", resource, now=NOW)
        recorded = store.record_match(deal, job_offer_id="0xj", resource_offer_id="0xr", now=NOW)
        assert recorded is not None
        deal_id = recorded.deal_id
        (slot,) = store.active_deal_slots()
        assert (slot.resource_provider, slot.agree_window) == (PROVIDER.address.lower(), deal.timeouts.agree)
        store.update_deal(deal_id, AgreementState.DEAL_AGREED, now=NOW + 5, times=AgreementTimes(agreed_at=NOW + 4))
        store.update_deal(deal_id, AgreementState.RESULTS_SUBMITTED, now=NOW + 6, result_cid="bafyresult",
                          times=AgreementTimes(results_submitted_at=NOW + 6))
        assert store.update_deal("0x" + "00" * 32, AgreementState.DEAL_AGREED, now=NOW) is None
        store.put_result(deal_id, "bafyfirst", 10, now=NOW + 3)
        store.put_result(deal_id, "bafyresult", 20, now=NOW + 4)
    with SolverStore(db) as store:
        record = store.deal(deal_id)
        assert record is not None
        assert record.state == AgreementState.RESULTS_SUBMITTED
        assert record.result_cid == "bafyresult"
        assert record.times == AgreementTimes(agreed_at=NOW + 4, results_submitted_at=NOW + 6)
        result = store.result(deal_id)
        assert (result.cid, result.size) == ("bafyresult", 20)  # type: ignore[union-attr]
        store.update_deal(deal_id, AgreementState.RESULTS_ACCEPTED, now=NOW + 7)
        assert store.active_deal_slots() == []


def test_deal_terms_json_round_trip() -> None:
    deal = make_deal(signed_job(), signed_resource())
    data = deal.model_dump(mode="json")
    assert data["nonce"] == "0x" + "07" * 32
    assert Deal.model_validate(data) == deal


def test_nonce_registry_is_atomic_and_persistent(db: Path) -> None:
    nonce = b"\x01" * 32
    with SolverStore(db) as store:
        registry = store.nonces
        assert isinstance(registry, NonceRegistry)
        assert registry.check_and_record(PROVIDER.address, nonce, keep_until=NOW)
        assert not registry.check_and_record(PROVIDER.address.lower(), nonce, keep_until=NOW)
        assert registry.check_and_record(CREATOR.address, nonce)  # per signer
        assert (PROVIDER.address, nonce) in registry
    with SolverStore(db) as store:
        assert not store.nonces.check_and_record(PROVIDER.address, nonce)
        assert len(store.nonces) == 2
        assert store.nonces.prune(NOW + 1) == 1  # only the one with a keep_until before then
        assert store.nonces.check_and_record(PROVIDER.address, nonce)
        assert not store.nonces.check_and_record(CREATOR.address, nonce)


def test_nonce_check_and_record_races_have_one_winner(db: Path) -> None:
    stores = [SolverStore(db) for _ in range(2)]  # two connections, as two processes would have
    barrier = threading.Barrier(16)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def race(i: int) -> None:
        barrier.wait()
        won = stores[i % 2].nonces.check_and_record(STRANGER.address, b"\x02" * 32)
        with lock:
            outcomes.append(won)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert sorted(outcomes) == [False] * 15 + [True]
