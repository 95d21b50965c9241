"""Running a deal's job as a provider or mediator: the signed module commit is
checked, input files are downloaded from a real solver app and verified against
the signed CID, then mounted at /inputs in a real container; failed runs are
retried a bounded number of times."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from lilypad.client import DealJob, SolverClient
from lilypad.exceptions import ModuleCommitMismatchError, ResultCIDMismatchError
from lilypad.modules.resolve import ModuleResolver
from lilypad.protocol.deal import AgreementState, Deal, DealMembers
from lilypad.protocol.offers import (
    DEFAULT_RESOURCE_PRICING,
    DEFAULT_TIMEOUTS,
    JobModule,
    JobOffer,
    ResourceOffer,
    ResourceSpec,
)
from lilypad.protocol.signing import OfferDomain, sign_offer
from lilypad.provider.daemon import ProviderConfig, ResourceProvider
from lilypad.provider.execution import fetch_job_inputs, module_problem, resolve_job_module, run_deal_job
from lilypad.provider.logic import Action, DealSnapshot, JobStatus, LocalJob, OfferTerms, decide
from lilypad.results.cid import directory_cid
from lilypad.results.store import ResultsStore
from lilypad.solver.app import create_app
from lilypad.solver.service import SolverCore
from lilypad.solver.store import SolverStore

DOMAIN = OfferDomain(chain_id=31337, verifying_contract="0x" + "c0" * 20)
PROVIDER, CREATOR, MEDIATOR = (Account.create() for _ in range(3))
SOLVER = Account.create().address


@pytest.fixture(scope="module")
def stats(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return ModuleResolver(tmp_path_factory.mktemp("modules")).resolve("stats:v0.0.1")


def job_of(resolved: Any, **module: Any) -> DealJob:
    """The job of a deal on ``resolved``, its module's fields replaced by ``module``."""
    signed = {"ref": resolved.ref, "repo": resolved.repo, "commit": resolved.commit, **module}
    return DealJob(deal_id="0x" + "ab" * 32, job_offer_id="0x" + "cd" * 32, inputs={},
                   module=JobModule(**signed), spec=ResourceSpec())


def test_the_module_must_resolve_to_the_signed_commit(stats: Any, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert resolve_job_module(job_of(stats), cache_dir=cache, allowlist=None).commit == stats.commit
    moved = job_of(stats, commit="f" * 40)
    with pytest.raises(ModuleCommitMismatchError) as info:
        resolve_job_module(moved, cache_dir=cache, allowlist=None)
    assert info.value.expected == f"{stats.repo}@{'f' * 40}" and stats.commit in info.value.resolved
    assert "refusing to run another module" in str(module_problem(moved, cache_dir=cache, allowlist=None))
    other_repo = job_of(stats, repo="https://github.com/someone/stats")
    assert module_problem(other_repo, cache_dir=cache, allowlist=None) is not None
    assert module_problem(job_of(stats), cache_dir=cache, allowlist=None) is None


def test_a_job_whose_spec_cannot_run_is_refused_before_agreeing(tmp_path: Path) -> None:
    # The original loads a template without an image and fails only when the job runs;
    # a provider says so before it agrees (and locks collateral).
    module = tmp_path / "noimage"
    module.mkdir()
    (module / "lilypad_module.json.tmpl").write_text(
        '{"job": {"Spec": {"Docker": {"Image": {{ if .Image }}{{ .Image }}{{ else }}""{{ end }}}}}}')
    resolved = ModuleResolver(tmp_path / "cache").resolve(str(module))
    # A local path is never offered to the market (JobModule refuses it), so the deal's job is
    # built without that check: what is under test is the provider's check of the spec.
    local = JobModule.model_construct(ref=resolved.ref, repo=resolved.repo, commit=resolved.commit)
    job = DealJob(deal_id="0x" + "ab" * 32, job_offer_id="0x" + "cd" * 32, inputs={}, module=local,
                  spec=ResourceSpec())
    problem = module_problem(job, cache_dir=tmp_path / "cache", allowlist=None)
    assert problem is not None and "job.Spec.Docker.Image" in problem and "no container image" in problem
    given = job.model_copy(update={"inputs": {"Image": "lilypad/busybox:1"}})
    assert module_problem(given, cache_dir=tmp_path / "cache", allowlist=None) is None


def test_inputs_are_downloaded_verified_and_mounted(stats: Any, tmp_path: Path) -> None:
    files = tmp_path / "in"
    files.mkdir()
    (files / "numbers.txt").write_text("10\n20\n30\n60\n")
    cid = directory_cid(files)
    inputs = ResultsStore(tmp_path / "solver" / "inputs")
    core = SolverCore(SolverStore(tmp_path / "solver" / "solver.db"), DOMAIN, solver=SOLVER, inputs_ready=inputs.has)
    app = create_app(core, results_store=ResultsStore(tmp_path / "solver" / "results"), max_result_bytes=1 << 20,
                     onchain_result=core.onchain_result_cid, domain=DOMAIN.as_eip712(), background=False,
                     inputs_store=inputs)
    client = SolverClient("http://testserver", http=TestClient(app), retries=0)
    try:
        client.post_resource_offer(sign_offer(ResourceOffer(resource_provider=PROVIDER.address, solver=SOLVER,
                                                            mediators=[MEDIATOR.address]), PROVIDER, DOMAIN))
        offer = JobOffer(job_creator=CREATOR.address, solver=SOLVER, mediators=[MEDIATOR.address], inputs_cid=cid,
                         module=JobModule(ref=stats.ref, repo=stats.repo, commit=stats.commit))
        offer_id = client.post_job_offer(sign_offer(offer, CREATOR, DOMAIN))
        client.upload_inputs(offer_id, files, CREATOR)
        (deal,) = core.match_round()
        job = client.job(deal.deal_id)
        assert job.inputs_cid == cid

        runs = tmp_path / "runs"
        stale = runs / f"{deal.deal_id[2:18]}-inputs"
        stale.mkdir(parents=True)
        (stale / "numbers.txt").write_text("1\n")  # left by an earlier attempt, not the signed content
        got = fetch_job_inputs(client, job, stale)
        assert got == stale and directory_cid(stale) == cid

        _, result = run_deal_job(job, cache_dir=tmp_path / "cache", runs_dir=runs, allowlist=None, client=client)
        stdout = (Path(result.result_dir) / "stdout").read_text()
        assert result.exit_code == 0, stdout + (Path(result.result_dir) / "stderr").read_text()
        assert "count=4 sum=120.0 mean=30.0" in stdout, stdout  # /inputs/numbers.txt, read in the container

        forged = job.model_copy(update={"inputs_cid": "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"})
        with pytest.raises(ResultCIDMismatchError):
            fetch_job_inputs(client, forged, tmp_path / "forged")
        assert not (tmp_path / "forged").exists()
    finally:
        core.store.close()


def test_failed_runs_are_retried_at_most_max_run_attempts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = ProviderConfig(network="ethereum:local", solver_url="http://127.0.0.1:1", private_key="0x" + "11" * 32,
                            data_dir=tmp_path, mediators=(MEDIATOR.address,), max_run_attempts=2)
    provider = ResourceProvider(config)
    deal_id = "0x" + "ef" * 32
    provider.store.put(deal_id, JobStatus.RUNNING.value)
    with caplog.at_level(logging.INFO, logger="lilypad.provider"):
        provider._run_failed(deal_id, RuntimeError("docker is down"))
        assert provider.store.get(deal_id)[0] == JobStatus.AGREED.value
        assert provider._retry_at[deal_id] > 0
        provider.store.put(deal_id, JobStatus.RUNNING.value)
        provider._run_failed(deal_id, RuntimeError("docker is still down"))
    status, data = provider.store.get(deal_id)
    assert (status, data["run_failures"]) == (JobStatus.GAVE_UP.value, 2)
    assert any("run_given_up" in r.getMessage() and "submit-results timeout" in r.getMessage() for r in caplog.records)
    # A module that is not the signed one is given up at once.
    other = "0x" + "ee" * 32
    provider._run_failed(other, ModuleCommitMismatchError("cowsay:v0.0.1", "a@1", "a@2"))
    assert provider.store.get(other)[0] == JobStatus.GAVE_UP.value
    provider.store.close()

    # A given-up deal waits for its on-chain timeout, and is done once terminal.
    members = DealMembers(solver=SOLVER, job_creator=CREATOR.address, resource_provider=PROVIDER.address,
                          mediators=(MEDIATOR.address,))
    deal = Deal(members=members, pricing=DEFAULT_RESOURCE_PRICING, timeouts=DEFAULT_TIMEOUTS)
    terms = OfferTerms.build(PROVIDER.address, SOLVER, DEFAULT_RESOURCE_PRICING, DEFAULT_TIMEOUTS,
                             [MEDIATOR.address])
    agreed = DealSnapshot(deal=deal, state=AgreementState.DEAL_AGREED, module_ref="cowsay:v0.0.1", agreed_at=1)
    assert decide(agreed, LocalJob(JobStatus.GAVE_UP), terms, 2).action == Action.WAIT
    assert decide(agreed, LocalJob(JobStatus.AGREED), terms, 2).action == Action.RUN
    ended = DealSnapshot(deal=deal, state=AgreementState.TIMEOUT_SUBMIT_RESULTS, module_ref="cowsay:v0.0.1")
    assert decide(ended, LocalJob(JobStatus.GAVE_UP), terms, 2).action == Action.DONE
