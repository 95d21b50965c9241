"""The client's typed answers parse exactly what the solver sends: each view,
dumped back to JSON, is the solver's JSON key for key (on the real app)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from lilypad.client import (
    DealJob,
    DealView,
    OfferView,
    SolverClient,
    SolverDomain,
    SolverHealth,
    StoredInputs,
    StoredResult,
)
from lilypad.protocol.deal import AgreementState
from lilypad.protocol.offers import JobModule, JobOffer, ResourceOffer
from lilypad.protocol.signing import OfferDomain, SignedOffer, sign_offer
from lilypad.results.cid import directory_cid
from lilypad.results.store import ResultsStore
from lilypad.solver.app import create_app
from lilypad.solver.service import SolverCore
from lilypad.solver.store import SolverStore

DOMAIN = OfferDomain(chain_id=31337, verifying_contract="0x" + "c0" * 20)
PROVIDER, CREATOR, MEDIATOR = (Account.create() for _ in range(3))
SOLVER = Account.create().address
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def resource() -> SignedOffer:
    offer = ResourceOffer(resource_provider=PROVIDER.address, solver=SOLVER, mediators=[MEDIATOR.address],
                          modules=["cowsay"], slots=2)
    return sign_offer(offer, PROVIDER, DOMAIN)


def job(inputs_cid: str | None = None) -> SignedOffer:
    offer = JobOffer(job_creator=CREATOR.address, solver=SOLVER, mediators=[MEDIATOR.address],
                     module=JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit=COMMIT),
                     inputs={"Message": "moo"}, inputs_cid=inputs_cid)
    return sign_offer(offer, CREATOR, DOMAIN)


def tree(path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return path


class Solver:
    def __init__(self, root: Path) -> None:
        self.inputs = ResultsStore(root / "inputs", max_result_bytes=1 << 20)
        self.core = SolverCore(SolverStore(root / "solver.db"), DOMAIN, solver=SOLVER, inputs_ready=self.inputs.has)
        app = create_app(self.core, results_store=ResultsStore(root / "results", max_result_bytes=1 << 20),
                         onchain_result=self.core.onchain_result_cid, max_result_bytes=1 << 20,
                         domain=DOMAIN.as_eip712(), head_block=lambda: 7, background=False, inputs_store=self.inputs,
                         solver_address=SOLVER)
        self.http = TestClient(app)
        self.client = SolverClient("http://testserver", http=self.http, retries=0)

    def raw(self, path: str) -> Any:
        answer = self.http.get(f"/api/v1{path}")
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture
def solver(tmp_path: Path) -> Iterator[Solver]:
    s = Solver(tmp_path / "solver")
    yield s
    s.core.store.close()


def same_json(view: Any, raw: Any, **dump: Any) -> None:
    """``view`` dumps to exactly ``raw``, key order included."""
    assert json.dumps(view.model_dump(mode="json", **dump)) == json.dumps(raw)


def test_every_answer_parses_exactly_what_the_solver_sends(solver: Solver, tmp_path: Path) -> None:
    health = solver.client.health()
    assert isinstance(health, SolverHealth) and (health.chain_id, health.head_block, health.solver) == (
        31337, 7, SOLVER)
    same_json(health, solver.raw("/health"))
    domain = solver.client.domain()
    assert isinstance(domain, SolverDomain) and domain.offer_domain == DOMAIN
    same_json(domain, solver.raw("/domain"))

    resource_id = solver.client.post_resource_offer(resource())
    files = tree(tmp_path / "inputs", {"data.txt": "hello", "sub/more.csv": "a,b\n1,2\n"})
    signed = job(inputs_cid=directory_cid(files))
    job_id = solver.client.post_job_offer(signed)
    (listed,) = solver.client.resource_offers()
    assert isinstance(listed, OfferView) and listed.id == resource_id and listed.deal_id is None
    same_json(listed, solver.raw("/resource_offers")["offers"][0], exclude_unset=True)  # no deal_id key
    same_json(solver.client.resource_offer(resource_id), solver.raw(f"/resource_offers/{resource_id}"),
              exclude_unset=True)
    waiting = solver.client.job_offer(job_id)
    assert (waiting.kind, waiting.state, waiting.deal_id, waiting.offer) == ("job", "open", None, signed)
    same_json(waiting, solver.raw(f"/job_offers/{job_id}"))

    stored = solver.client.upload_inputs(job_id, files, CREATOR)
    assert isinstance(stored, StoredInputs) and (stored.offer_id, stored.cid) == (job_id, directory_cid(files))
    (record,) = solver.core.match_round()
    matched = solver.client.job_offer(job_id)
    assert (matched.state, matched.deal_id) == ("matched", record.deal_id)
    same_json(matched, solver.raw(f"/job_offers/{job_id}"))

    (deal,) = solver.client.deals()
    assert isinstance(deal, DealView) and deal.terms == record.deal and deal.agreement_state == AgreementState.NONE
    same_json(deal, solver.raw("/deals")["deals"][0])
    work = solver.client.job(record.deal_id)
    assert isinstance(work, DealJob) and work.module == signed.offer.module and work.inputs == {"Message": "moo"}
    same_json(work, solver.raw(f"/deals/{record.deal_id}/job"))

    result = tree(tmp_path / "result", {"stdout": "moo\n", "stderr": "", "exitCode": "0", "outputs/.keep": ""})
    (result / "outputs" / ".keep").unlink()
    uploaded = solver.client.upload_result(record.deal_id, result, PROVIDER)
    assert isinstance(uploaded, StoredResult) and uploaded.cid == directory_cid(result)
    solver.core.on_chain_state(record.deal_id, AgreementState.RESULTS_SUBMITTED, uploaded.cid, at=1_700_000_000)
    shown = solver.client.deal(record.deal_id)
    assert (shown.state, shown.result_cid, shown.agreement.results_submitted_at) == (
        "ResultsSubmitted", uploaded.cid, 1_700_000_000)
    assert shown.uploaded_result is not None and shown.uploaded_result.cid == uploaded.cid
    same_json(shown, solver.raw(f"/deals/{record.deal_id}"))

    cancelled = solver.client.cancel_resource_offer(resource_id, PROVIDER)
    assert cancelled.state == "cancelled"
    same_json(cancelled, solver.raw(f"/resource_offers/{resource_id}"), exclude_unset=True)
