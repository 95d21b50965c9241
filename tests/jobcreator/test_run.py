"""`lilypad run`, `status` and `fetch` against a real anvil, real contracts and a real solver.

The solver is the real FastAPI app served by uvicorn in a thread; it reads the
result CID recorded on-chain straight from the chain (what its chain watcher
does). The provider side (and, when asked, the mediator) is a stand-in written
here with lilypad.chain, SolverClient and the Docker executor: it posts a signed
resource offer as TEST::2, agrees, runs the module, uploads and adds the result.
The job creator is the `lilypad run` command, as a subprocess, with TEST::1's key.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner
from eth_account import Account

from lilypad.client import SolverClient
from lilypad.devnet.processes import dev_private_key, free_port, wait_for_port
from lilypad.exceptions import DealTermsError, SolverDomainMismatchError, SolverError
from lilypad.jobcreator.steps import check_solver_domain, checked_deal
from lilypad.protocol.accounts import account_from_private_key
from lilypad.protocol.cid import ZERO_DIGEST, digest_to_cid
from lilypad.protocol.deal import AgreementState, Deal
from lilypad.protocol.offers import JobModule, JobOffer, ResourceOffer, ResourceSpec
from lilypad.protocol.signing import OfferDomain, sign_offer
from lilypad.results.cid import directory_cid
from lilypad.results.store import ResultsStore
from lilypad.solver.app import create_app
from lilypad.solver.service import SolverCore
from lilypad.solver.store import SolverStore

from harness import DevChain

CREATOR, PROVIDER, MEDIATOR, SOLVER = 1, 2, 3, 4
NETWORK = "ethereum:local:foundry"
MATCH_TIMEOUT = 4.0
S = AgreementState



def address(index: int) -> str:
    return Account.from_key(dev_private_key(index)).address


# --------------------------------------------------------------------------
# Chain (one per module) and solver (one per test)
# --------------------------------------------------------------------------


@dataclass
class Chain:
    root: Path
    rpc_url: str
    deployments: Path
    contracts: Any


@pytest.fixture(scope="module")
def chain(devchain: DevChain, devchain_contracts: Any) -> Chain:
    """The harness's chain of this module, connected in-process."""
    return Chain(devchain.root, devchain.rpc_url, devchain.deployments, devchain_contracts)


def onchain_result_reader(rpc_url: str, storage: str) -> Any:
    """``deal id -> result CID recorded on-chain`` with its own web3 connection (thread-safe)."""
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(rpc_url))
    abi = [{"name": "getResult", "type": "function", "stateMutability": "view",
            "inputs": [{"name": "dealId", "type": "bytes32"}],
            "outputs": [{"name": "", "type": "tuple", "components": [
                {"name": "resultId", "type": "bytes32"}, {"name": "dataCid", "type": "bytes32"},
                {"name": "instructionCount", "type": "uint64"}]}]}]
    contract = w3.eth.contract(address=Web3.to_checksum_address(storage), abi=abi)

    def read(deal_id: str) -> str | None:
        digest = bytes(contract.functions.getResult(bytes.fromhex(deal_id.removeprefix("0x"))).call()[1])
        return None if digest == ZERO_DIGEST else digest_to_cid(digest)

    return read


@dataclass
class Solver:
    url: str
    core: SolverCore
    domain: OfferDomain


@pytest.fixture
def solver(chain: Chain, tmp_path: Path) -> Iterator[Solver]:
    dep = chain.contracts.deployment
    domain = OfferDomain(chain_id=dep.chain_id, verifying_contract=dep.contracts["controller"])
    store = SolverStore(tmp_path / "solver" / "solver.db")
    core = SolverCore(store, domain, solver=address(SOLVER), match_timeout=MATCH_TIMEOUT)
    results = ResultsStore(tmp_path / "solver" / "results", max_result_bytes=16 << 20)
    app = create_app(core, results_store=results, max_result_bytes=16 << 20, domain=domain.as_eip712(),
                     onchain_result=onchain_result_reader(chain.rpc_url, dep.contracts["storage"]),
                     match_interval=0.1, sse_ping_s=1, solver_address=address(SOLVER))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", ws="none",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port, timeout=20)
    try:
        yield Solver(f"http://127.0.0.1:{port}", core, domain)
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


# --------------------------------------------------------------------------
# The provider (and mediator) stand-in
# --------------------------------------------------------------------------


@dataclass
class StandIn:
    """TEST::2 as a resource provider; with ``tamper``, it records on-chain the CID of
    a doctored copy of its result while uploading the genuine one. It also plays
    TEST::3, an honest mediator that reruns the module twice: runs that disagree with
    each other make the job non-deterministic; otherwise it compares their CID with
    the provider's."""

    contracts: Any
    client: SolverClient
    work: Path
    tamper: bool = False
    key: str = field(default_factory=lambda: dev_private_key(PROVIDER))
    done: set[str] = field(default_factory=set)
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.account = account_from_private_key(self.key)
        self.mediator = account_from_private_key(dev_private_key(MEDIATOR))
        self.offer_id: str | None = None

    def post_offer(self) -> None:
        offer = ResourceOffer(resource_provider=self.account.address, solver=address(SOLVER),
                              mediators=[address(MEDIATOR)], spec=ResourceSpec(cpu=1000, ram=1024, disk=1000))
        self.offer_id = self.client.post_resource_offer(sign_offer(offer, self.key, self.client.offer_domain()))

    def run_module(self, deal_id: str, tag: str) -> Any:
        from lilypad.executor import run_module
        from lilypad.modules.resolve import ModuleResolver

        job = self.client.job(deal_id)
        resolved = ModuleResolver(self.work / "modules").resolve(job.module.ref)
        assert resolved.commit == job.module.commit
        spec = resolved.render(job.inputs)
        return run_module(spec, module_dir=resolved.path, work_dir=self.work / tag / deal_id)

    def step(self) -> None:
        for view in self.client.deals(party=self.account.address):
            deal_id = view.deal_id
            deal: Deal = view.terms
            a = self.contracts.agreement(deal_id)
            if a.state in (S.NONE, S.DEAL_NEGOTIATING) and not a.resource_provider_agreed:
                self.contracts.ensure_allowance(self.account, 100 * 10**18)
                self.contracts.agree(deal, self.account)
                self.log.append("agreed")
            elif a.state == S.DEAL_AGREED and deal_id not in self.done:
                self.done.add(deal_id)
                result = self.run_module(deal_id, "provider")
                cid = result.cid
                if self.tamper:
                    doctored = self.work / "doctored" / deal_id
                    shutil.copytree(result.result_dir, doctored)
                    (doctored / "stdout").write_text("a doctored cow\n")
                    cid = directory_cid(doctored)
                    assert cid != result.cid
                self.client.upload_result(deal_id, result.result_dir, self.key)
                self.contracts.add_result(deal, cid, 1, self.account)
                self.log.append(f"result {cid}")
            elif a.state == S.RESULTS_CHECKED and f"mediated {deal_id}" not in self.log:
                rerun = self.run_module(deal_id, "mediator")
                again = self.run_module(deal_id, "mediator-again")
                onchain, _ = self.contracts.result(deal_id)
                if rerun.cid != again.cid:
                    self.contracts.mediation_non_deterministic(deal, self.mediator)
                elif rerun.cid == onchain:
                    self.contracts.mediation_accept(deal, self.mediator)
                else:
                    self.contracts.mediation_reject(deal, self.mediator)
                self.log.append(f"mediated {deal_id}")

    def close(self) -> None:
        if self.offer_id:
            # teardown: the offer may be matched (refused) or the solver gone already
            with contextlib.suppress(SolverError):
                self.client.cancel_resource_offer(self.offer_id, self.key)


def lilypad_run(chain: Chain, solver: Solver, data_dir: Path, *args: str, name_solver: bool = True,
                module: str = "cowsay:v0.0.1") -> subprocess.Popen:
    """``lilypad run <module>`` (cowsay) as TEST::1; without ``name_solver`` the solver's
    address comes from its /health."""
    env = {**os.environ, "APE_FOUNDRY_HOST": chain.rpc_url, "LILYPAD_DEPLOYMENTS_DIR": str(chain.deployments),
           "WEB3_PRIVATE_KEY": dev_private_key(CREATOR), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "lilypad.cli.run", "run", module, "--network", NETWORK,
           "--solver-url", solver.url, "--mediators", address(MEDIATOR),
           "--data-dir", str(data_dir), "--timeout", "50", *args]
    if name_solver:
        cmd += ["--solver-address", address(SOLVER)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def drive(proc: subprocess.Popen, stand_in: StandIn | None, timeout: float = 55.0) -> tuple[int, str, str]:
    """Play the provider side until ``lilypad run`` exits."""
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if stand_in is not None:
                stand_in.step()
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
    out, err = proc.communicate(timeout=10)
    return proc.returncode, out, err


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_cowsay_end_to_end_then_status_and_fetch(chain: Chain, solver: Solver, tmp_path: Path) -> None:
    from lilypad.cli.run import fetch, status

    c = chain.contracts
    creator, provider = address(CREATOR), address(PROVIDER)
    before = (c.balance_of(creator), c.balance_of(provider))
    with SolverClient(solver.url) as client:
        stand_in = StandIn(c, client, tmp_path / "provider")
        stand_in.post_offer()
        data_dir = tmp_path / "creator"
        code, out, err = drive(lilypad_run(chain, solver, data_dir, "-i", "Message=moo"), stand_in)
        stand_in.close()
    print(out, err, sep="\n")
    assert code == 0, f"{out}\n{err}\n{stand_in.log}"
    for stage in ("offer posted", "matched", "agreed", "running", "results submitted", "downloading", "done"):
        assert f"[{stage}]" in err, err
    assert "WEB3_PRIVATE_KEY" not in err and dev_private_key(CREATOR).removeprefix("0x") not in out + err

    (deal_view,) = [d for d in solver.core.deals(party=creator)]
    deal_id = deal_view.deal_id
    results = data_dir / "downloaded-files" / deal_id
    cid, count = c.result(deal_id)
    assert c.agreement(deal_id).state == S.RESULTS_ACCEPTED and count == 1
    assert directory_cid(results) == cid
    assert "moo" in (results / "stdout").read_text() and (results / "exitCode").read_text().strip() == "0"
    assert f"Results: {results}" in out and f"Data CID: {cid}" in out
    assert f"cat {results / 'stdout'}" in out and f"open {results / 'outputs'}" in out
    job_cost = deal_view.deal.job_cost(count)
    assert c.balance_of(creator) == before[0] - job_cost
    assert c.balance_of(provider) == before[1] + job_cost
    assert c.escrow(deal_id).settled
    # The deposit was paid with a permit inside agree: no approval, nothing left standing.
    assert c.allowance(creator) == 0 and int(c.token.nonces(creator)) >= 1

    # The run was recorded locally.
    records = list((data_dir / "jobcreator" / "runs").glob("*.json"))
    assert len(records) == 1 and deal_id in records[0].read_text() and '"stage": "done"' in records[0].read_text()

    # status and fetch from "another machine": a fresh data dir, only the URL and the network.
    elsewhere = tmp_path / "elsewhere"
    runner = CliRunner()
    shown = runner.invoke(status, [deal_id, "--network", NETWORK, "--solver-url", solver.url,
                                   "--data-dir", str(elsewhere)])
    assert shown.exit_code == 0, shown.output
    assert "ResultsAccepted" in shown.output and cid in shown.output and provider in shown.output
    got = runner.invoke(fetch, [deal_id, "--network", NETWORK, "--solver-url", solver.url,
                                "--data-dir", str(elsewhere)])
    assert got.exit_code == 0, got.output
    fetched = elsewhere / "downloaded-files" / deal_id
    assert directory_cid(fetched) == cid and (fetched / "stdout").read_text() == (results / "stdout").read_text()
    assert f"cat {fetched / 'stdout'}" in got.output

    bad = runner.invoke(status, ["0x1234", "--network", NETWORK, "--solver-url", solver.url])
    assert bad.exit_code == 2 and "not a deal id" in bad.output and "Traceback" not in bad.output


def test_tampered_result_is_never_accepted(chain: Chain, solver: Solver, tmp_path: Path) -> None:
    c = chain.contracts
    creator, mediator = address(CREATOR), address(MEDIATOR)
    before = (c.balance_of(creator), c.balance_of(mediator))
    with SolverClient(solver.url) as client:
        stand_in = StandIn(c, client, tmp_path / "provider", tamper=True)
        stand_in.post_offer()
        data_dir = tmp_path / "creator"
        code, out, err = drive(lilypad_run(chain, solver, data_dir, "-i", "Message=tampered"), stand_in)
        stand_in.close()
        (deal,) = solver.core.deals(party=creator)
        # The solver itself refuses to serve a result that is not the one on-chain.
        from lilypad.exceptions import SolverRequestError

        with pytest.raises(SolverRequestError) as refused:
            client.download_result(deal.deal_id, tmp_path / "direct", "bafyunused")
        assert refused.value.status == 409 and refused.value.code == "result_cid_mismatch"
    print(out, err, sep="\n")
    assert code == 1, f"{out}\n{err}\n{stand_in.log}"
    assert "not accepting" in err and "not the one recorded on-chain" in err, err
    assert "[checked]" in err and "mediator rejected" in err + out
    assert c.agreement(deal.deal_id).state == S.MEDIATION_REJECTED
    assert not (data_dir / "downloaded-files" / deal.deal_id).exists()
    d = deal.deal
    results_collateral = d.results_collateral(1)
    assert c.balance_of(creator) == before[0] + results_collateral - d.pricing.mediation_fee
    assert c.balance_of(mediator) == before[1] + d.pricing.mediation_fee


def test_a_non_deterministic_job_is_paid_for_and_says_so(chain: Chain, solver: Solver, tmp_path: Path) -> None:
    from lilypad.cli.run import status

    c = chain.contracts
    creator, provider, mediator = address(CREATOR), address(PROVIDER), address(MEDIATOR)
    before = (c.balance_of(creator), c.balance_of(provider), c.balance_of(mediator))
    with SolverClient(solver.url) as client:
        stand_in = StandIn(c, client, tmp_path / "provider")
        stand_in.post_offer()
        data_dir = tmp_path / "creator"
        code, out, err = drive(lilypad_run(chain, solver, data_dir, "--mediate",
                                           module="nondeterministic:v0.0.1"), stand_in)
        stand_in.close()
    print(out, err, sep="\n")
    (deal,) = solver.core.deals(party=creator)
    assert c.agreement(deal.deal_id).state == S.MEDIATION_NON_DETERMINISTIC, f"{out}\n{err}\n{stand_in.log}"
    # The result was delivered and paid for: the run ends done, and says what happened.
    assert code == 0, f"{out}\n{err}\n{stand_in.log}"
    assert "[checked]" in err and "[done]" in err, err
    assert "found the job non-deterministic" in out and "your mediation fee went to the mediator" in out, out
    results = data_dir / "downloaded-files" / deal.deal_id
    assert directory_cid(results) == c.result(deal.deal_id)[0]
    d, count = deal.deal, c.result(deal.deal_id)[1]
    cost, fee, judge = d.job_cost(count), d.pricing.mediation_fee, d.timeouts.judge_results_collateral
    assert c.balance_of(creator) == before[0] - cost - fee - judge
    assert c.balance_of(provider) == before[1] + cost + judge
    assert c.balance_of(mediator) == before[2] + fee
    shown = CliRunner().invoke(status, [deal.deal_id, "--network", NETWORK, "--solver-url", solver.url,
                                        "--data-dir", str(tmp_path / "elsewhere")])
    assert shown.exit_code == 0, shown.output
    assert "MediationNonDeterministic" in shown.output and "non-deterministic" in shown.output, shown.output


def test_no_match_expires_cleanly_and_escrows_nothing(chain: Chain, solver: Solver, tmp_path: Path) -> None:
    c = chain.contracts
    creator = address(CREATOR)
    before = (c.balance_of(creator), c.allowance(creator))
    started = time.monotonic()
    code, out, err = drive(lilypad_run(chain, solver, tmp_path / "creator", "-i", "Message=alone",
                                       name_solver=False), None)
    assert code == 1, f"{out}\n{err}"
    assert "no resource provider matched" in err and "nothing was escrowed" in err and "Traceback" not in err
    assert time.monotonic() - started < 40
    (offer,) = solver.core.store.offers("job")
    assert offer.state == "expired" and offer.deal_id is None
    assert (c.balance_of(creator), c.allowance(creator)) == before
    assert solver.core.deals(party=creator) == []


def test_ctrl_c_before_a_match_cancels_the_offer(chain: Chain, solver: Solver, tmp_path: Path) -> None:
    import signal

    c = chain.contracts
    creator = address(CREATOR)
    before = c.balance_of(creator)
    proc = lilypad_run(chain, solver, tmp_path / "creator", "-i", "Message=interrupted")
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + 40
    while "[offer posted]" not in seen and time.monotonic() < deadline and proc.poll() is None:
        seen += proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    code, out, err = drive(proc, None, timeout=20)
    err = seen + err
    assert code == 130, f"{out}\n{err}"
    assert "Interrupted at stage 'offer posted'" in err and "cancelled" in err and "Traceback" not in err
    (offer,) = solver.core.store.offers("job")
    assert offer.state == "cancelled"
    assert c.balance_of(creator) == before and solver.core.deals(party=creator) == []
    (record,) = (tmp_path / "creator" / "jobcreator" / "runs").glob("*.json")
    assert '"interrupted": true' in record.read_text()


def test_bad_input_is_a_one_line_error(chain: Chain, solver: Solver, tmp_path: Path) -> None:
    from lilypad.cli.run import run

    runner = CliRunner()
    base = ["cowsay:v0.0.1", "--network", NETWORK, "--solver-url", solver.url, "--solver-address",
            address(SOLVER), "--mediators", address(MEDIATOR), "--data-dir", str(tmp_path)]
    env = {"WEB3_PRIVATE_KEY": dev_private_key(CREATOR)}
    cases = [
        (["-i", "no-equals-sign"], "-i/--input"),
        (["--price", "lots"], "--price"),
        (["--mediation-chance", "150"], "--mediation-chance"),
    ]
    for extra, needle in cases:
        result = runner.invoke(run, base + extra, env=env)
        assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output
    big = tmp_path / "inputs"
    big.mkdir()
    (big / "huge.bin").write_bytes(b"\0" * (10 * 1024 * 1024 + 1))
    result = runner.invoke(run, base + ["--inputs-path", str(big)], env=env)
    assert result.exit_code == 1 and "capped at 10 MB" in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)
    nokey = runner.invoke(run, base, env={"WEB3_PRIVATE_KEY": ""})
    assert nokey.exit_code == 2 and "no key" in nokey.output


def test_the_shared_steps_refuse_another_deployment_and_a_deal_that_is_not_the_offer(
        chain: Chain, solver: Solver, tmp_path: Path) -> None:
    dep = chain.contracts.deployment
    with SolverClient(solver.url, retries=0) as client:
        domain = check_solver_domain(client, dep)
        assert (domain.chain_id, domain.verifying_contract.lower()) == (dep.chain_id,
                                                                        dep.contracts["controller"].lower())
        elsewhere = dep.model_copy(update={"contracts": {**dep.contracts, "controller": "0x" + "11" * 20}})
        with pytest.raises(SolverDomainMismatchError) as mismatch:
            check_solver_domain(client, elsewhere)
        assert (mismatch.value.chain_id, mismatch.value.controller) == (dep.chain_id, "0x" + "11" * 20)
        assert mismatch.value.solver_controller.lower() == dep.contracts["controller"].lower()

        # A real match, then the deal checked against an offer it was not made for.
        provider = StandIn(chain.contracts, client, tmp_path / "provider")
        provider.post_offer()
        creator = account_from_private_key(dev_private_key(CREATOR))
        mine = JobOffer(job_creator=creator.address, solver=address(SOLVER), mediators=[address(MEDIATOR)],
                        inputs={"Message": "steps"},
                        module=JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit="ab" * 20))
        offer_id = client.post_job_offer(sign_offer(mine, creator, domain))
        deadline = time.monotonic() + 30
        while (view := client.job_offer(offer_id)).state == "open" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert view.state == "matched" and view.deal_id
        assert checked_deal(client, view.deal_id, mine, offer_id).terms.members.job_creator == creator.address
        other = mine.model_copy(update={"pricing": mine.pricing.model_copy(
            update={"instruction_price": mine.pricing.instruction_price // 2})})
        with pytest.raises(DealTermsError) as refused:
            checked_deal(client, view.deal_id, other, offer_id)
        assert refused.value.offer_id == offer_id and refused.value.problems

