"""The bridge's SQLite job store: idempotent adds, state changes with history, retries, durability."""

from __future__ import annotations

import pytest

from lilypad.jobcreator.bridge.logic import BridgeState
from lilypad.jobcreator.bridge.store import BridgeJobStore


def _add(store, job_id=1, **kw):
    args = dict(caller="0x" + "aa" * 20, payee="0x" + "bb" * 20, module="cowsay:v0.0.1",
                inputs=["Message=a=b"], block_number=10, log_index=0)
    args.update(kw)
    return store.add(job_id, **args)


def test_a_job_is_added_once(tmp_path):
    with BridgeJobStore(tmp_path / "bridge.db") as store:
        assert _add(store) is True
        assert _add(store, module="other") is False  # a re-delivered JobAdded changes nothing
        job = store.get(1)
        assert job.state == BridgeState.SEEN and job.module == "cowsay:v0.0.1" and job.inputs == ["Message=a=b"]
        assert store.get(2) is None


def test_updates_merge_data_and_keep_history(tmp_path):
    with BridgeJobStore(tmp_path / "bridge.db") as store:
        _add(store)
        store.update(1, BridgeState.OFFER_POSTED, "posted", offer_id="0x01")
        store.update(1, BridgeState.OFFER_POSTED, offer_attempt=0)
        job = store.update(1, BridgeState.DEAL, "agreed", deal_id="0x02")
        assert job.data == {"offer_id": "0x01", "offer_attempt": 0, "deal_id": "0x02"}
        assert [s for _, s, _ in store.history(1)] == ["seen", "offer_posted", "deal"]
        failed = store.update(1, BridgeState.FAILED, "no provider")
        assert failed.data["reason"] == "no provider"
        assert store.active() == []
        assert store.counts() == {"failed": 1}


def test_defer_counts_attempts_until_the_state_changes(tmp_path):
    with BridgeJobStore(tmp_path / "bridge.db") as store:
        _add(store)
        assert store.defer(1, 100.0, "boom") == 1
        assert store.defer(1, 200.0, "boom again") == 2
        job = store.get(1)
        assert job.attempts == 2 and job.next_try == 200.0 and job.data["last_error"] == "boom again"
        job = store.update(1, BridgeState.OFFER_POSTED, "moved on")
        assert job.attempts == 0 and job.next_try == 0.0


def test_state_survives_reopening(tmp_path):
    path = tmp_path / "bridge.db"
    with BridgeJobStore(path) as store:
        for job_id in (3, 1, 2):
            _add(store, job_id)
        store.update(2, BridgeState.DELIVERED, "done", result_cid="bafy")
    with BridgeJobStore(path) as store:
        assert [j.job_id for j in store.active()] == [1, 3]
        assert store.get(2).data["result_cid"] == "bafy"
        assert [j.job_id for j in store.all(limit=2)] == [3, 2]


def test_updating_an_unknown_job_is_an_error(tmp_path):
    with BridgeJobStore(tmp_path / "bridge.db") as store, pytest.raises(KeyError):
        store.update(9, BridgeState.FAILED, "nope")
