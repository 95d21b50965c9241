"""Job input files through the solver: signed, content-addressed uploads that gate
matching, safe downloads, limits; and the solver's execution/download/total timeouts.

Everything runs on the real FastAPI app, SQLite store and results stores."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from lilypad.client import SolverClient
from lilypad.exceptions import InputFilesError, ResultCIDMismatchError, SolverRequestError
from lilypad.protocol.auth import SHA256_HEADER, SIGNATURE_HEADER, sign_inputs_upload
from lilypad.protocol.deal import AgreementState, DealTimeouts
from lilypad.protocol.inputs import InputLimits, check_input_tree, inputs_cid
from lilypad.protocol.offers import JobModule, JobOffer, ResourceOffer
from lilypad.protocol.signing import OfferDomain, SignedOffer, sign_offer
from lilypad.results.archive import pack
from lilypad.results.cid import directory_cid
from lilypad.results.store import ResultsStore
from lilypad.solver.app import create_app
from lilypad.solver.limits import SolverTimeouts, deal_window_total, timeouts_problem
from lilypad.solver.service import SolverCore
from lilypad.solver.store import SolverStore

DOMAIN = OfferDomain(chain_id=31337, verifying_contract="0x" + "c0" * 20)
PROVIDER, CREATOR, MEDIATOR, STRANGER = (Account.create() for _ in range(4))
SOLVER = Account.create().address
COMMIT = "0123456789abcdef0123456789abcdef01234567"
LIMITS = InputLimits(max_file_bytes=4096, max_total_bytes=16 * 1024, max_files=20)


def resource(**kw: Any) -> SignedOffer:
    base: dict[str, Any] = {"resource_provider": PROVIDER.address, "solver": SOLVER, "mediators": [MEDIATOR.address]}
    return sign_offer(ResourceOffer(**(base | kw)), PROVIDER, DOMAIN)


def job(**kw: Any) -> SignedOffer:
    base: dict[str, Any] = {
        "job_creator": CREATOR.address, "solver": SOLVER, "mediators": [MEDIATOR.address],
        "module": JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit=COMMIT), "inputs": {"Message": "moo"},
    }
    return sign_offer(JobOffer(**(base | kw)), CREATOR, DOMAIN)


def make_inputs(path: Path, text: str = "hello") -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "data.txt").write_text(text)
    (path / "sub" / "more.csv").write_text("a,b\n1,2\n")
    return path


@dataclass
class Solver:
    core: SolverCore
    http: TestClient
    client: SolverClient
    inputs: ResultsStore | None
    results: ResultsStore


def build(root: Path, *, with_inputs: bool = True, timeouts: SolverTimeouts | None = None,
          clock: Any = None) -> Solver:
    inputs = ResultsStore(root / "inputs", max_result_bytes=LIMITS.max_total_bytes) if with_inputs else None
    extra = {"clock": clock} if clock is not None else {}
    core = SolverCore(SolverStore(root / "solver.db"), DOMAIN, solver=SOLVER, timeouts=timeouts,
                      inputs_ready=inputs.has if inputs is not None else None, **extra)
    results = ResultsStore(root / "results", max_result_bytes=1 << 20)
    app = create_app(core, results_store=results, onchain_result=core.onchain_result_cid, max_result_bytes=1 << 20,
                     domain=DOMAIN.as_eip712(), background=False, inputs_store=inputs, input_limits=LIMITS)
    http = TestClient(app)
    return Solver(core, http, SolverClient("http://testserver", http=http, retries=0), inputs, results)


@pytest.fixture
def solver(tmp_path: Path) -> Iterator[Solver]:
    s = build(tmp_path / "solver")
    yield s
    s.core.store.close()


def raw_upload(s: Solver, offer_id: str, body: bytes, signer: Any) -> Any:
    digest = hashlib.sha256(body).hexdigest()
    headers = {SIGNATURE_HEADER: sign_inputs_upload(offer_id, digest, signer), SHA256_HEADER: digest}
    return s.http.put(f"/api/v1/job_offers/{offer_id}/inputs", content=body, headers=headers)


# --------------------------------------------------------------------------
# Input files
# --------------------------------------------------------------------------


def test_an_offer_with_inputs_is_matched_only_once_they_are_uploaded(solver: Solver, tmp_path: Path) -> None:
    files = make_inputs(tmp_path / "in")
    cid = inputs_cid(files, LIMITS)
    solver.client.post_resource_offer(resource())
    offer_id = solver.client.post_job_offer(job(inputs_cid=cid))
    assert solver.core.awaits_inputs(offer_id)
    assert solver.core.match_round() == []  # no inputs yet: not matchable
    assert solver.http.get(f"/api/v1/job_offers/{offer_id}/inputs").json()["error"] == "no_inputs"

    answer = solver.client.upload_inputs(offer_id, files, CREATOR, LIMITS)
    assert answer.cid == cid and answer.offer_id == offer_id
    assert not solver.core.awaits_inputs(offer_id)
    (deal,) = solver.core.match_round()
    job_view = solver.client.job(deal.deal_id)
    assert job_view.inputs_cid == cid and job_view.job_offer_id == offer_id

    got = solver.client.download_inputs(offer_id, tmp_path / "got", cid, LIMITS)
    assert got == cid == directory_cid(tmp_path / "got")
    assert (tmp_path / "got" / "sub" / "more.csv").read_text() == "a,b\n1,2\n"
    # An upload again (same content) is accepted: it is idempotent.
    assert solver.client.upload_inputs(offer_id, files, CREATOR, LIMITS).cid == cid
    # The provider side refuses another CID than the signed one.
    with pytest.raises(ResultCIDMismatchError):
        solver.client.download_inputs(offer_id, tmp_path / "other", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi")
    assert not (tmp_path / "other").exists()


def test_uploads_are_authenticated_and_must_be_the_signed_cid(solver: Solver, tmp_path: Path) -> None:
    files = make_inputs(tmp_path / "in")
    offer_id = solver.client.post_job_offer(job(inputs_cid=inputs_cid(files, LIMITS)))
    body = pack(files)
    stranger = raw_upload(solver, offer_id, body, STRANGER)
    assert stranger.status_code == 403 and "only the job creator" in stranger.json()["detail"]
    unsigned = solver.http.put(f"/api/v1/job_offers/{offer_id}/inputs", content=body)
    assert unsigned.status_code == 401
    other = make_inputs(tmp_path / "other", text="not the signed content")
    wrong = raw_upload(solver, offer_id, pack(other), CREATOR)
    assert (wrong.status_code, wrong.json()["error"]) == (400, "inputs_cid_mismatch")
    assert solver.core.awaits_inputs(offer_id)
    # An offer without input files takes no upload.
    plain = solver.client.post_job_offer(job())
    assert raw_upload(solver, plain, body, CREATOR).status_code == 404


def test_links_oversize_files_and_hidden_names_are_refused(solver: Solver, tmp_path: Path) -> None:
    linked = make_inputs(tmp_path / "linked")
    os.symlink("data.txt", linked / "alias.txt")
    with pytest.raises(InputFilesError, match="symbolic link"):
        check_input_tree(linked, LIMITS)
    # Sent anyway (a hostile client), the solver refuses it after a safe unpack.
    offer_id = solver.client.post_job_offer(job(inputs_cid=directory_cid(linked)))
    refused = raw_upload(solver, offer_id, pack(linked), CREATOR)
    assert (refused.status_code, refused.json()["error"]) == (400, "unsafe_archive")
    assert "symbolic link" in refused.json()["detail"]

    big = make_inputs(tmp_path / "big")
    (big / "huge.bin").write_bytes(os.urandom(LIMITS.max_file_bytes + 1))
    with pytest.raises(InputFilesError, match="capped at 4096 bytes"):
        check_input_tree(big, LIMITS)
    offer_id = solver.client.post_job_offer(job(inputs_cid=directory_cid(big)))
    assert raw_upload(solver, offer_id, pack(big), CREATOR).status_code == 400

    many = tmp_path / "many"
    many.mkdir()
    for i in range(5):
        (many / f"f{i}").write_bytes(os.urandom(LIMITS.max_file_bytes))
    with pytest.raises(InputFilesError, match="in all"):
        check_input_tree(many, LIMITS)
    offer_id = solver.client.post_job_offer(job(inputs_cid=directory_cid(many)))
    assert raw_upload(solver, offer_id, pack(many), CREATOR).status_code == 413

    hidden = make_inputs(tmp_path / "hidden")
    (hidden / ".secret").write_text("x")
    with pytest.raises(InputFilesError, match="hidden names"):
        check_input_tree(hidden, LIMITS)


def test_a_solver_without_an_inputs_store_refuses_offers_with_inputs(tmp_path: Path) -> None:
    s = build(tmp_path / "solver", with_inputs=False)
    try:
        with pytest.raises(SolverRequestError) as info:
            s.client.post_job_offer(job(inputs_cid=inputs_cid(make_inputs(tmp_path / "in"))))
        assert info.value.status == 400 and "takes none" in info.value.detail
    finally:
        s.core.store.close()


def test_an_offer_awaiting_inputs_survives_a_restart(tmp_path: Path) -> None:
    files = make_inputs(tmp_path / "in")
    first = build(tmp_path / "solver")
    first.client.post_resource_offer(resource())
    offer_id = first.client.post_job_offer(job(inputs_cid=inputs_cid(files, LIMITS)))
    first.core.store.close()
    second = build(tmp_path / "solver")
    try:
        assert second.core.awaits_inputs(offer_id) and second.core.match_round() == []
        second.client.upload_inputs(offer_id, files, CREATOR, LIMITS)
        assert len(second.core.match_round()) == 1
    finally:
        second.core.store.close()


# --------------------------------------------------------------------------
# Timeouts
# --------------------------------------------------------------------------


def test_timeout_rules() -> None:
    limits = SolverTimeouts(execution=600, download=1800, total=5000)
    assert timeouts_problem(DealTimeouts(agree=60, submit_results=600, judge_results=1800, mediate_results=60),
                            limits) is None
    assert "execution timeout is 600 s" in str(timeouts_problem(DealTimeouts(submit_results=601), limits))
    assert "download timeout is 1800 s" in str(
        timeouts_problem(DealTimeouts(submit_results=60, judge_results=1801), limits))
    total = DealTimeouts(agree=3000, submit_results=600, judge_results=1800, mediate_results=60)
    assert deal_window_total(total) == 5460
    assert "add up to 5460 s" in str(timeouts_problem(total, limits))
    assert timeouts_problem(total, SolverTimeouts(download=None)) is None
    with pytest.raises(ValueError, match="execution timeout must be positive"):
        SolverTimeouts(execution=0)


def test_offers_outside_the_solver_timeouts_are_refused(tmp_path: Path) -> None:
    s = build(tmp_path / "solver", timeouts=SolverTimeouts(execution=1000, download=3600, total=20_000))
    try:
        assert s.client.post_job_offer(job(timeouts=DealTimeouts(submit_results=1000)))
        for timeouts, words in ((DealTimeouts(submit_results=1001), "execution timeout"),
                                (DealTimeouts(judge_results=3601), "download timeout"),
                                (DealTimeouts(agree=20_000), "total timeout")):
            with pytest.raises(SolverRequestError) as info:
                s.client.post_job_offer(job(timeouts=timeouts))
            assert info.value.status == 400 and words in info.value.detail
    finally:
        s.core.store.close()


def test_results_are_deleted_a_download_timeout_after_their_deal_ended(tmp_path: Path) -> None:
    now = [time.time()]
    s = build(tmp_path / "solver", timeouts=SolverTimeouts(download=100), clock=lambda: now[0])
    try:
        s.client.post_resource_offer(resource())
        s.client.post_job_offer(job(timeouts=DealTimeouts(judge_results=100)))
        (deal,) = s.core.match_round()
        result = tmp_path / "result"
        (result / "outputs").mkdir(parents=True)
        for name, text in (("stdout", "moo"), ("stderr", ""), ("exitCode", "0")):
            (result / name).write_text(text)
        cid = s.client.upload_result(deal.deal_id, result, PROVIDER).cid
        s.core.on_chain_state(deal.deal_id, AgreementState.RESULTS_SUBMITTED, result_cid=cid)
        s.core.on_chain_state(deal.deal_id, AgreementState.RESULTS_ACCEPTED, result_cid=cid)
        assert s.core.purge_results() == []  # ended just now: still downloadable
        assert s.client.download_result(deal.deal_id, tmp_path / "got", cid) == cid
        now[0] += 101
        assert s.core.purge_results() == [cid]
        assert s.core.result(deal.deal_id) is None and s.core.purge_results() == []
        gone = s.http.get(f"/api/v1/deals/{deal.deal_id}/result")
        assert (gone.status_code, gone.json()["error"]) == (410, "result_gone")
    finally:
        s.core.store.close()


def test_without_a_download_timeout_a_result_never_uploaded_is_not_called_deleted(tmp_path: Path) -> None:
    s = build(tmp_path / "solver", timeouts=SolverTimeouts(download=None))
    try:
        s.client.post_resource_offer(resource())
        s.client.post_job_offer(job())
        (deal,) = s.core.match_round()
        s.core.on_chain_state(deal.deal_id, AgreementState.RESULTS_ACCEPTED, result_cid="bafy-submitted-on-chain")
        missing = s.http.get(f"/api/v1/deals/{deal.deal_id}/result")
        assert (missing.status_code, missing.json()) == (404, {
            "error": "no_result", "detail": f"no result was uploaded for deal {deal.deal_id}"})
    finally:
        s.core.store.close()


# --------------------------------------------------------------------------
# Event replay (SSE Last-Event-ID)
# --------------------------------------------------------------------------


def test_a_reconnecting_client_gets_the_events_it_missed(solver: Solver) -> None:
    import asyncio

    from lilypad.solver.events import EventBus

    bus = EventBus(replay=3, first_id=100)
    first = bus.publish("offer", {"n": 1})
    missed = [bus.publish("offer", {"n": n}) for n in (2, 3, 4)]

    async def reconnect() -> list[Any]:
        sub = bus.subscribe(after=first.id)
        got = [await sub.get() for _ in range(3)]
        bus.publish("deal", {"n": 5})
        got.append(await sub.get())
        sub.close()
        return got

    got = asyncio.run(reconnect())
    assert [e.data["n"] for e in got] == [2, 3, 4, 5] and [e.id for e in got[:3]] == [e.id for e in missed]
    assert missed[-1].id == 103  # ids increase from first_id

    # Over HTTP (a live server): the client names the last id it saw and first gets those after it.
    import socket
    import threading

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(solver.http.app, log_level="warning", ws="none",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        with SolverClient(f"http://127.0.0.1:{sock.getsockname()[1]}", retries=0) as client:
            with client.events(read_timeout=10) as stream:
                client.post_resource_offer(resource())
                seen = next(iter(stream))
            assert (seen.type, seen.data["event"]) == ("offer", "created")
            # Disconnected: these two are published while nobody listens.
            client.post_job_offer(job())
            client.post_job_offer(job())
            with client.events(read_timeout=10, last_event_id=seen.id) as stream:
                replayed = []
                for event in stream:
                    replayed.append(event)
                    if len(replayed) == 2:
                        break
            assert [(e.type, e.data["event"], e.data["kind"]) for e in replayed] == [("offer", "created", "job")] * 2
            assert int(seen.id) < int(replayed[0].id) < int(replayed[1].id)
            with pytest.raises(SolverRequestError) as info:
                client.events(last_event_id="yesterday")
            assert info.value.status == 400
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
