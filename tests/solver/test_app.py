"""The solver's HTTP API and its client, on the real FastAPI app and SQLite files."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_account import Account
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lilypad.client import SolverClient
from lilypad.exceptions import ResultCIDMismatchError, SolverRequestError, SolverUnavailableError
from lilypad.protocol.auth import CID_HEADER, SHA256_HEADER, SIGNATURE_HEADER, sign_upload
from lilypad.protocol.deal import AgreementState, Deal
from lilypad.protocol.offers import JobModule, JobOffer, ResourceOffer
from lilypad.protocol.signing import MAX_CLOCK_SKEW, OfferDomain, SignedOffer, sign_offer
from lilypad.results.archive import pack
from lilypad.results.cid import directory_cid
from lilypad.results.store import ResultsStore
from lilypad.solver.app import create_app
from lilypad.solver.service import SolverCore
from lilypad.solver.store import SolverStore

DOMAIN = OfferDomain(chain_id=31337, verifying_contract="0x" + "c0" * 20)
PROVIDER, CREATOR, MEDIATOR, STRANGER = (Account.create() for _ in range(4))
SOLVER = Account.create().address
COMMIT = "0123456789abcdef0123456789abcdef01234567"
MAX_RESULT_BYTES = 64 * 1024


def resource(**kw: Any) -> SignedOffer:
    base: dict[str, Any] = {"resource_provider": PROVIDER.address, "solver": SOLVER, "mediators": [MEDIATOR.address]}
    return sign_offer(ResourceOffer(**(base | kw)), PROVIDER, DOMAIN)


def job(creator: Any = CREATOR, **kw: Any) -> SignedOffer:
    base: dict[str, Any] = {
        "job_creator": creator.address, "solver": SOLVER, "mediators": [MEDIATOR.address],
        "module": JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit=COMMIT), "inputs": {"Message": "moo"},
    }
    return sign_offer(JobOffer(**(base | kw)), creator, DOMAIN)


def make_result(path: Path, text: str = "moo") -> Path:
    (path / "outputs").mkdir(parents=True)
    (path / "stdout").write_text(text)
    (path / "stderr").write_text("")
    (path / "exitCode").write_text("0")
    (path / "outputs" / "cow.txt").write_text(text * 3)
    return path


@dataclass
class Solver:
    core: SolverCore
    app: FastAPI
    http: TestClient
    client: SolverClient
    results: ResultsStore
    onchain: dict[str, str] = field(default_factory=dict)

    def deal_for(self) -> str:
        """Post a resource and a job offer, run a round; the deal's id."""
        self.client.post_resource_offer(resource())
        self.client.post_job_offer(job())
        (deal,) = self.core.match_round()
        return deal.deal_id


def build(tmp_path: Path, *, background: bool = False, match_timeout: float = 30.0,
          match_interval: float = 0.2) -> tuple[SolverCore, FastAPI, ResultsStore, dict[str, str]]:
    core = SolverCore(SolverStore(tmp_path / "solver" / "solver.db"), DOMAIN, solver=SOLVER,
                      match_timeout=match_timeout)
    results = ResultsStore(tmp_path / "solver" / "results", max_result_bytes=MAX_RESULT_BYTES)
    onchain: dict[str, str] = {}
    app = create_app(core, results_store=results, onchain_result=onchain.get, max_result_bytes=MAX_RESULT_BYTES,
                     domain=DOMAIN.as_eip712(), head_block=lambda: 42, background=background,
                     match_interval=match_interval)
    return core, app, results, onchain


@pytest.fixture
def solver(tmp_path: Path) -> Iterator[Solver]:
    core, app, results, onchain = build(tmp_path)
    http = TestClient(app)
    yield Solver(core, app, http, SolverClient("http://testserver", http=http, retries=0), results, onchain)
    core.store.close()


def post(http: TestClient, path: str, body: Any) -> httpx.Response:
    return http.post(f"/api/v1/{path}", json=body)


def upload(http: TestClient, deal_id: str, body: Any, key: Any, *, digest: str | None = None,
           **kw: Any) -> httpx.Response:
    digest = digest or hashlib.sha256(body).hexdigest()
    headers = {SIGNATURE_HEADER: sign_upload(deal_id, digest, key), SHA256_HEADER: digest}
    return http.put(f"/api/v1/deals/{deal_id}/result", content=body, headers=headers, **kw)


# --------------------------------------------------------------------------
# Discovery and offers
# --------------------------------------------------------------------------


def test_health_domain_and_openapi(solver: Solver) -> None:
    health = solver.client.health()
    assert (health.status, health.chain_id, health.controller, health.head_block) == (
        "ok", 31337, DOMAIN.verifying_contract, 42)
    assert solver.client.offer_domain() == DOMAIN
    assert "/api/v1/job_offers" in solver.http.get("/openapi.json").json()["paths"]


def test_signed_offers_are_accepted(solver: Solver) -> None:
    r = resource()
    answer = post(solver.http, "resource_offers", r.model_dump(mode="json"))
    assert answer.status_code == 201
    offer_id = answer.json()["id"]
    assert solver.client.resource_offer(offer_id).offer.model_dump(mode="json") == r.model_dump(mode="json")
    assert [o.id for o in solver.client.resource_offers()] == [offer_id]
    j = job()
    job_id = solver.client.post_job_offer(j)
    assert solver.client.job_offer(job_id).state == "open"


def test_tampered_replayed_expired_and_malformed_offers_get_400(solver: Solver) -> None:
    tampered = resource().model_dump(mode="json")
    tampered["offer"]["slots"] = 99
    answer = post(solver.http, "resource_offers", tampered)
    assert (answer.status_code, answer.json()["error"]) == (400, "bad_signature")
    assert "refused" in answer.json()["detail"]

    signed = job().model_dump(mode="json")
    assert post(solver.http, "job_offers", signed).status_code == 201
    answer = post(solver.http, "job_offers", signed)
    assert (answer.status_code, answer.json()["error"]) == (400, "replayed_nonce")

    stale = job(created_at=int(time.time()) - MAX_CLOCK_SKEW - 60).model_dump(mode="json")
    answer = post(solver.http, "job_offers", stale)
    assert (answer.status_code, answer.json()["error"]) == (400, "expired")

    answer = post(solver.http, "job_offers", {"offer": signed["offer"]})  # no signature
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")
    assert "signature" in answer.json()["detail"]

    answer = post(solver.http, "resource_offers", job().model_dump(mode="json"))
    assert (answer.status_code, answer.json()["error"]) == (400, "wrong_kind")

    with pytest.raises(SolverRequestError) as caught:
        solver.client.post_job_offer(job(solver=STRANGER.address))
    assert (caught.value.status, caught.value.code) == (400, "offer_refused")
    assert solver.client.resource_offers() == []


def test_cancel_needs_a_signature_by_the_author(solver: Solver) -> None:
    offer_id = solver.client.post_job_offer(job())
    with pytest.raises(SolverRequestError) as caught:
        solver.client.cancel_job_offer(offer_id, STRANGER)
    assert caught.value.status == 403
    answer = solver.http.request("DELETE", f"/api/v1/job_offers/{offer_id}", json={"created_at": 1})
    assert answer.status_code == 400
    assert solver.client.cancel_job_offer(offer_id, CREATOR).state == "cancelled"
    with pytest.raises(SolverRequestError) as caught:
        solver.client.cancel_job_offer(offer_id, CREATOR)
    assert (caught.value.status, caught.value.code) == (409, "offer_state")
    with pytest.raises(SolverRequestError) as caught:
        solver.client.job_offer("0x" + "00" * 32)
    assert caught.value.status == 404


# --------------------------------------------------------------------------
# Deals
# --------------------------------------------------------------------------


def test_a_job_and_a_resource_offer_make_a_deal_at_deals(solver: Solver) -> None:
    resource_id = solver.client.post_resource_offer(resource())
    job_id = solver.client.post_job_offer(job(inputs={"Message": "hello"}))
    solver.core.tick()
    (deal,) = solver.client.deals()
    terms = deal.terms
    assert deal.deal_id == "0x" + terms.deal_id.hex()
    assert (deal.job_offer_id, deal.resource_offer_id, deal.state) == (job_id, resource_id, "None")
    assert (terms.members.job_creator, terms.members.resource_provider, terms.members.solver) == (
        CREATOR.address, PROVIDER.address, SOLVER)
    assert terms.members.mediators == (MEDIATOR.address,)
    assert terms.pricing == resource().offer.pricing and terms.timeouts == job().offer.timeouts
    assert solver.client.job_offer(job_id).deal_id == deal.deal_id
    assert solver.client.deal(deal.deal_id) == deal
    assert solver.client.job(deal.deal_id).inputs == {"Message": "hello"}
    assert solver.client.job(deal.deal_id).module.ref == "cowsay:v0.0.1"

    assert len(solver.client.deals(party=MEDIATOR.address)) == 1
    assert solver.client.deals(party=STRANGER.address) == []
    assert len(solver.client.deals(state=AgreementState.NONE)) == 1
    solver.core.on_chain_state(deal.deal_id, AgreementState.DEAL_AGREED)
    assert [d.state for d in solver.client.deals(state=["DealAgreed", "ResultsSubmitted"])] == ["DealAgreed"]
    assert solver.client.deals(state="None") == []
    for query in ("state=Bogus", "party=nobody"):
        answer = solver.http.get(f"/api/v1/deals?{query}")
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")
    assert solver.http.get("/api/v1/deals/0x" + "00" * 32).status_code == 404


def test_matched_job_cannot_be_cancelled(solver: Solver) -> None:
    solver.client.post_resource_offer(resource())
    job_id = solver.client.post_job_offer(job())
    solver.core.tick()
    with pytest.raises(SolverRequestError) as caught:
        solver.client.cancel_job_offer(job_id, CREATOR)
    assert caught.value.status == 409


def test_unmatched_job_expires_after_the_match_timeout(tmp_path: Path) -> None:
    core, app, _, _ = build(tmp_path, background=True, match_timeout=0.3, match_interval=0.05)
    with TestClient(app) as http:  # runs the lifespan: the background rounds
        client = SolverClient("http://testserver", http=http, retries=0)
        job_id = client.post_job_offer(job())
        deadline = time.monotonic() + 30
        while client.job_offer(job_id).state == "open" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.job_offer(job_id).state == "expired"
    core.store.close()


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


def test_upload_by_a_key_other_than_the_providers_is_403(solver: Solver, tmp_path: Path) -> None:
    deal_id = solver.deal_for()
    body = pack(make_result(tmp_path / "r"))
    for key in (STRANGER, CREATOR):
        answer = upload(solver.http, deal_id, body, key)
        assert (answer.status_code, answer.json()["error"]) == (403, "forbidden")
    answer = solver.http.put(f"/api/v1/deals/{deal_id}/result", content=body)
    assert answer.status_code == 401
    answer = upload(solver.http, deal_id, body, PROVIDER, digest="ab" * 32)  # signed, but not this body
    assert (answer.status_code, answer.json()["error"]) == (400, "digest_mismatch")
    assert solver.core.result(deal_id) is None


def test_oversize_upload_is_413(solver: Solver) -> None:
    deal_id = solver.deal_for()
    body = os.urandom(MAX_RESULT_BYTES + 1)
    assert upload(solver.http, deal_id, body, PROVIDER).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for i in range(0, len(body), 4096):
            yield body[i:i + 4096]

    digest = hashlib.sha256(body).hexdigest()
    answer = solver.http.put(f"/api/v1/deals/{deal_id}/result", content=chunks(),
                             headers={SIGNATURE_HEADER: sign_upload(deal_id, digest, PROVIDER), SHA256_HEADER: digest})
    assert (answer.status_code, answer.json()["error"]) == (413, "too_large")
    assert solver.core.result(deal_id) is None


def _tar_gz(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _entry(name: str, data: bytes = b"", *, link: str | None = None) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
        return info, None
    info.size = len(data)
    return info, data


def test_hostile_archives_are_rejected(solver: Solver, tmp_path: Path) -> None:
    deal_id = solver.deal_for()
    hostile = {
        "unsafe_archive": [
            _tar_gz(_entry("stdout", b"x"), _entry("../escape", b"x")),
            _tar_gz(_entry("stdout", link="/etc/passwd")),
            _tar_gz(_entry("outputs/.hidden", b"x")),
        ],
        "bad_archive": [b"definitely not gzip"],
        "not_a_result": [_tar_gz(_entry("just-a-file", b"x"))],
    }
    for code, bodies in hostile.items():
        for body in bodies:
            answer = upload(solver.http, deal_id, body, PROVIDER)
            assert (answer.status_code, answer.json()["error"]) == (400, code), answer.json()
    assert solver.core.result(deal_id) is None
    assert solver.results.list() == []
    assert [p.name for p in solver.results.root.iterdir()] == []  # no temporary left behind


def test_download_only_once_the_cid_is_on_chain(solver: Solver, tmp_path: Path) -> None:
    deal_id = solver.deal_for()
    source = make_result(tmp_path / "result")
    with pytest.raises(SolverRequestError) as caught:
        solver.client.download_result(deal_id, tmp_path / "early", directory_cid(source))
    assert (caught.value.status, caught.value.code) == (404, "no_result")

    uploaded = solver.client.upload_result(deal_id, source, PROVIDER)
    cid = uploaded.cid
    assert cid == directory_cid(source)
    assert solver.client.deal(deal_id).uploaded_result.cid == cid  # type: ignore[union-attr]

    answer = solver.http.get(f"/api/v1/deals/{deal_id}/result")
    assert (answer.status_code, answer.json()["error"]) == (409, "not_on_chain")
    solver.onchain[deal_id] = directory_cid(make_result(tmp_path / "other", "baa"))
    answer = solver.http.get(f"/api/v1/deals/{deal_id}/result")
    assert (answer.status_code, answer.json()["error"]) == (409, "result_cid_mismatch")

    solver.onchain[deal_id] = cid
    answer = solver.http.get(f"/api/v1/deals/{deal_id}/result")
    assert answer.status_code == 200 and answer.headers[CID_HEADER] == cid
    assert answer.content == pack(source)

    assert solver.client.download_result(deal_id, tmp_path / "fetched", cid) == cid
    assert (tmp_path / "fetched" / "outputs" / "cow.txt").read_text() == "moomoomoo"
    other = directory_cid(tmp_path / "other")
    with pytest.raises(ResultCIDMismatchError):
        solver.client.download_result(deal_id, tmp_path / "refused", other)
    assert not (tmp_path / "refused").exists()


def test_the_client_verifies_the_cid_itself(tmp_path: Path) -> None:
    wanted = directory_cid(make_result(tmp_path / "wanted"))
    served = pack(make_result(tmp_path / "served", "lies"))

    def lying_solver(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=served, headers={CID_HEADER: wanted})

    http = httpx.Client(base_url="http://liar", transport=httpx.MockTransport(lying_solver))
    client = SolverClient("http://liar", http=http, retries=0)
    with pytest.raises(ResultCIDMismatchError):
        client.download_result("0x" + "11" * 32, tmp_path / "dest", wanted)
    assert not (tmp_path / "dest").exists()


# --------------------------------------------------------------------------
# Restart, unavailability and server-sent events on a real server
# --------------------------------------------------------------------------


def test_a_restart_keeps_offers_and_deals(tmp_path: Path) -> None:
    core, app, _, _ = build(tmp_path)
    client = SolverClient("http://testserver", http=TestClient(app), retries=0)
    resource_id = client.post_resource_offer(resource(slots=2))
    client.post_job_offer(job())
    core.tick()
    (deal,) = client.deals()
    core.store.close()

    core, app, _, _ = build(tmp_path)
    client = SolverClient("http://testserver", http=TestClient(app), retries=0)
    assert client.deals() == [deal]
    assert [o.id for o in client.resource_offers()] == [resource_id]
    job_id = client.post_job_offer(job(Account.create()))
    core.tick()
    assert client.job_offer(job_id).state == "matched"  # the reloaded offer still matches
    core.store.close()


def test_an_unreachable_solver_raises_solver_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once closed
    client = SolverClient(f"http://127.0.0.1:{port}", retries=2, backoff=0)
    with pytest.raises(SolverUnavailableError) as caught:
        client.domain()
    assert caught.value.attempts == 3
    client.close()


def _losing_client(solver: Solver, faults: list[str]) -> SolverClient:
    """A client whose next offer ``POST``s meet ``faults`` (injected, one per
    POST): ``"answer lost"`` reaches the solver and the connection drops before
    the answer; ``"not sent"`` drops before the solver sees it; ``"503"`` is a
    proxy's refusal."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and faults:
            fault = faults.pop(0)
            if fault == "answer lost":
                solver.http.send(request)
            if fault in ("answer lost", "not sent"):
                raise httpx.ReadError("connection reset by peer", request=request)
            return httpx.Response(503, text="upstream restarting")
        return solver.http.send(request)

    http = httpx.Client(base_url="http://testserver", transport=httpx.MockTransport(handler))
    return SolverClient("http://testserver", http=http, retries=0)


@pytest.mark.parametrize("fault", ["answer lost", "not sent", "503"])
def test_an_offer_post_whose_answer_is_lost_is_stored_exactly_once(solver: Solver, fault: str) -> None:
    faults = [fault]
    client = _losing_client(solver, faults)
    signed = job()
    offer_id = client.post_job_offer(signed)
    assert faults == []  # the fault was met
    assert solver.client.job_offer(offer_id).offer.model_dump(mode="json") == signed.model_dump(mode="json")
    assert [r.id for r in solver.core.open_offers("job")] == [offer_id]


def test_reposting_the_same_signed_offer_is_idempotent_but_a_reused_nonce_is_refused(solver: Solver) -> None:
    signed = job()
    offer_id = solver.client.post_job_offer(signed)
    assert solver.client.post_job_offer(signed) == offer_id  # a retry after a lost answer
    assert [r.id for r in solver.core.open_offers("job")] == [offer_id]

    other = job(nonce=signed.offer.nonce, inputs={"Message": "baa"})  # same nonce, another offer
    with pytest.raises(SolverRequestError) as caught:
        solver.client.post_job_offer(other)
    assert (caught.value.status, caught.value.code) == (400, "replayed_nonce")
    assert [r.id for r in solver.core.open_offers("job")] == [offer_id]


def test_an_offer_post_to_a_solver_that_stays_down_raises_unavailable(solver: Solver) -> None:
    client = _losing_client(solver, ["not sent", "not sent"])
    with pytest.raises(SolverUnavailableError):
        client.post_job_offer(job())
    assert solver.core.open_offers("job") == []


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[SolverCore, str]]:
    core, app, _, _ = build(tmp_path, background=True, match_interval=0.05)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    yield core, f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(30)
    sock.close()
    core.store.close()


def test_sse_delivers_a_deal_event_to_a_listening_client(live: tuple[SolverCore, str]) -> None:
    core, url = live
    with SolverClient(url) as client, client.events(read_timeout=30) as stream:
        resource_id = client.post_resource_offer(resource())
        job_id = client.post_job_offer(job())
        seen = []
        for event in stream:  # the background rounds make the deal
            seen.append((event.type, event.data["event"]))
            if event.type == "deal":
                break
    assert seen[:2] == [("offer", "created"), ("offer", "created")]
    assert seen[-1] == ("deal", "created")
    deal = event.data["deal"]
    assert (deal["job_offer_id"], deal["resource_offer_id"]) == (job_id, resource_id)
    assert deal["deal_id"] == "0x" + Deal.model_validate(deal["terms"]).deal_id.hex()
    assert core.deal(deal["deal_id"]).job_offer_id == job_id


def test_a_stream_for_one_party_carries_only_the_events_naming_it(live: tuple[SolverCore, str]) -> None:
    """``/events?party=``: a job creator hears of its own offer and deal, not another's (the
    solver no longer sends every client every event); the provider named by both deals hears
    of both; an address that is not one is refused."""
    core, url = live
    other = Account.create()
    with SolverClient(url) as client, client.events(read_timeout=30, party=CREATOR.address) as mine, \
            client.events(read_timeout=30, party=PROVIDER.address) as providers:
        client.post_resource_offer(resource(slots=2))
        theirs = client.post_job_offer(job(creator=other))
        ours = client.post_job_offer(job())
        seen = []
        for event in mine:
            seen.append(event)
            if event.type == "deal":
                break
        provider_deals = set()
        for event in providers:
            if event.type == "deal":
                provider_deals.add(event.data["deal"]["job_offer_id"])
            if len(provider_deals) == 2:
                break
        with pytest.raises(SolverRequestError) as caught:
            client.events(read_timeout=5, party="not-an-address")
    assert [(e.type, e.data["event"]) for e in seen] == [("offer", "created"), ("deal", "created")]
    assert seen[0].data["id"] == ours and seen[1].data["deal"]["job_offer_id"] == ours
    assert all(e.data.get("id") != theirs for e in seen)
    assert provider_deals == {ours, theirs}
    assert [int(e.id) for e in seen] == sorted(int(e.id) for e in seen)  # ids still increase, with gaps
    assert caught.value.status == 400 and "not an address" in caught.value.detail


def test_a_daemons_round_reads_open_deals_and_its_own_unfinished_ones(solver: Solver, tmp_path: Path) -> None:
    """``deals_to_visit``: what the provider's and the mediator's rounds go over - the deals the
    solver shows open, plus (once) those the daemon has not finished that have ended since; a
    deal the daemon finished and that ended is not read again, however many there are."""
    from lilypad.service import DealStateStore, deals_to_visit

    store = DealStateStore(tmp_path / "provider.db")
    solver.client.post_resource_offer(resource(slots=3))
    for i in range(3):
        solver.client.post_job_offer(job(inputs={"Message": f"moo {i}"}))
    ids = sorted(d.deal_id for d in solver.core.match_round())
    assert len(ids) == 3
    finished = ("done",)
    assert {v.deal_id for v in deals_to_visit(solver.client, PROVIDER.address, store, finished)} == set(ids)
    for deal_id in ids:  # all three end on-chain
        solver.core.on_chain_state(deal_id, AgreementState.RESULTS_ACCEPTED)
    store.put(ids[0], "done")  # the daemon finished the first one; the second it holds unfinished
    store.put(ids[1], "submitted")
    store.put("0x" + "ab" * 32, "running")  # a deal this solver never had: left out, no error
    visited = deals_to_visit(solver.client, PROVIDER.address, store, finished)
    assert [(v.deal_id, v.state) for v in visited] == [(ids[1], "ResultsAccepted")]
    assert deals_to_visit(solver.client, MEDIATOR.address, DealStateStore(tmp_path / "m.db"), finished) == []
    store.close()


# --------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------


def test_the_solver_command_reads_its_env_twins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from lilypad.cli.solver import solver as solver_command

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    env = {"LILYPAD_SOLVER_DATA_DIR": str(tmp_path / "data"), "LILYPAD_SOLVER_MATCH_TIMEOUT": "7",
           "LILYPAD_SOLVER_PORT": "18099", "LILYPAD_SOLVER_CHAIN_ID": str(DOMAIN.chain_id),
           "LILYPAD_SOLVER_CONTROLLER": DOMAIN.verifying_contract}
    result = CliRunner().invoke(solver_command, [], env=env)
    assert result.exit_code == 0, result.output
    assert (served["host"], served["port"]) == ("127.0.0.1", 18099)
    core = served["app"].state.core
    assert (core.match_timeout, core.domain) == (7.0, DOMAIN)
    assert (tmp_path / "data" / "solver.db").is_file()
    assert TestClient(served["app"]).get("/api/v1/domain").json()["chainId"] == DOMAIN.chain_id

    result = CliRunner().invoke(solver_command, ["--chain-id", "1"], env={"LILYPAD_SOLVER_CONTROLLER": ""})
    assert result.exit_code == 2 and "--controller" in result.output
    assert "LILYPAD_SOLVER_MATCH_TIMEOUT" in CliRunner().invoke(solver_command, ["--help"]).output
