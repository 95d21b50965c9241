"""The resource provider daemon against a real anvil, real contracts and a real solver.

The provider (and, in tests/mediator, the mediator) runs as a subprocess of
its CLI command; the job creator is this test: it signs the job offer with
TEST::1's key and does its on-chain steps with :mod:`lilypad.chain`.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lilypad.devnet.processes import ManagedProcess, dev_private_key, free_port
from lilypad.protocol.deal import AgreementState, Deal, DealTimeouts

from harness import DevChain

CREATOR, PROVIDER, MEDIATOR, SOLVER = 1, 2, 3, 4
NETWORK = "ethereum:local:foundry"


def address(index: int) -> str:
    from eth_account import Account

    return Account.from_key(dev_private_key(index)).address


@dataclass
class Devnet:
    root: Path
    rpc_port: int
    solver_url: str
    deployments: Path
    contracts: Any
    procs: list[ManagedProcess] = field(default_factory=list)

    def env(self, key_index: int, **extra: str) -> dict[str, str]:
        return {"APE_FOUNDRY_HOST": f"http://127.0.0.1:{self.rpc_port}", "LILYPAD_DEPLOYMENTS_DIR": str(self.deployments),
                "WEB3_PRIVATE_KEY": dev_private_key(key_index), "PYTHONUNBUFFERED": "1", **extra}

    def daemon(self, command: str, name: str, key_index: int, *args: str, **extra: str) -> ManagedProcess:
        module, func = {"resource-provider": ("resource_provider", "resource_provider"),
                        "mediator": ("mediator", "mediator")}[command]
        code = f"from lilypad.cli.{module} import {func}; {func}(prog_name='lilypad {command}')"
        proc = ManagedProcess(name, [sys.executable, "-c", code, "--network", NETWORK, "--solver-url",
                                     self.solver_url, "--poll-interval", "0.3", *args],
                              self.root / "logs" / f"{name}.log", env=self.env(key_index, **extra)).start()
        self.procs.append(proc)
        return proc

    def provider(self, name: str = "provider", *args: str, **extra: str) -> ManagedProcess:
        return self.daemon("resource-provider", name, PROVIDER, "--data-dir", str(self.root / name),
                           "--mediators", address(MEDIATOR), "--solver-address", address(SOLVER),
                           "--cpu", "1000", "--ram", "1024", "--disk", "1000", "--gpu", "0",
                           "--offer-modules", "cowsay:v0.0.1", *args, **extra)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log_tail(60)}" for p in self.procs)


def wait_until(what: str, check: Callable[[], Any], net: Devnet, timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}\n{net.logs()}")


@pytest.fixture
def _function_isolation() -> Iterator[None]:
    """No chain snapshot per test here: ape would revert each test's deals on the chain while
    the solver (whose chain watcher then finds its cursor ahead of the head) and the providers
    remember them, so a deal of one test would keep its provider's slot busy in the next."""
    yield


@pytest.fixture(scope="module")
def devnet(devchain: DevChain, devchain_contracts: Any) -> Iterator[Devnet]:
    """The harness's chain of this module, connected in-process, and `lilypad solver` on it."""
    from lilypad.devnet.processes import wait_for_port

    root, solver_port = devchain.root, free_port()
    solver = ManagedProcess("solver", [str(Path(sys.executable).parent / "lilypad"), "solver", "--network",
                                       "ethereum:local", "--port", str(solver_port), "--data-dir",
                                       str(root / "solver"), "--solver-address", address(SOLVER)],
                            root / "logs" / "solver.log", env=devchain.env).start()
    net = Devnet(root, devchain.port, f"http://127.0.0.1:{solver_port}", devchain.deployments, devchain_contracts,
                 [solver])
    try:
        wait_for_port(solver_port, proc=solver.proc, timeout=60)
        yield net
    finally:
        for proc in reversed(net.procs):
            proc.stop()


# --------------------------------------------------------------------------
# The job creator's side
# --------------------------------------------------------------------------


def post_job(net: Devnet, message: str, timeouts: DealTimeouts | None = None) -> str:
    """Post a cowsay job offer as TEST::1; its id."""
    from lilypad.modules.resolve import ModuleResolver
    from lilypad.client import SolverClient
    from lilypad.protocol.offers import DEFAULT_TIMEOUTS, JobModule, JobOffer, ResourceSpec
    from lilypad.protocol.signing import sign_offer

    resolved = ModuleResolver(net.root / "creator-modules").resolve("cowsay:v0.0.1")
    with SolverClient(net.solver_url) as client:
        offer = JobOffer(solver=address(SOLVER), job_creator=address(CREATOR),
                         module=JobModule(ref="cowsay:v0.0.1", repo=resolved.repo, commit=resolved.commit),
                         inputs={"Message": message}, spec=ResourceSpec(cpu=100, ram=64),
                         mediators=[address(MEDIATOR)], timeouts=timeouts or DEFAULT_TIMEOUTS)
        return client.post_job_offer(sign_offer(offer, dev_private_key(CREATOR), client.offer_domain()))


def matched_deal(net: Devnet, job_offer_id: str) -> tuple[str, Deal]:
    from lilypad.client import SolverClient

    with SolverClient(net.solver_url) as client:
        deal_id = wait_until("a match", lambda: client.job_offer(job_offer_id).deal_id, net)
        return deal_id, client.deal(deal_id).terms


def creator_agrees(net: Devnet, deal: Deal) -> Any:
    from lilypad.protocol.accounts import account_from_private_key

    creator = account_from_private_key(dev_private_key(CREATOR))
    net.contracts.ensure_allowance(creator, deal.job_creator_deposit + deal.pricing.mediation_fee)
    net.contracts.agree(deal, creator)
    return creator


def wait_state(net: Devnet, deal: Deal, state: AgreementState, timeout: float = 40.0) -> None:
    wait_until(state.name, lambda: net.contracts.state(deal) == state, net, timeout)


def local_status(db: Path, deal_id: str) -> str | None:
    if not db.exists():
        return None
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT status FROM deals WHERE deal_id = ?", (deal_id,)).fetchone()
    return None if row is None else row[0]


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_happy_path_provider_is_paid(devnet):
    provider = devnet.provider("provider-happy")
    try:
        before = devnet.contracts.balance_of(address(PROVIDER))
        deal_id, deal = matched_deal(devnet, post_job(devnet, "happy"))
        assert deal.members.resource_provider == address(PROVIDER)
        creator = creator_agrees(devnet, deal)
        wait_state(devnet, deal, AgreementState.RESULTS_SUBMITTED)
        cid, count = devnet.contracts.result(deal)
        assert cid and cid.startswith("baf") and count == 1
        devnet.contracts.accept_result(deal, creator)
        assert devnet.contracts.state(deal) == AgreementState.RESULTS_ACCEPTED
        assert devnet.contracts.balance_of(address(PROVIDER)) == before + deal.job_cost(1)
        db = devnet.root / "provider-happy" / "provider.db"
        wait_until("the provider to see the deal done", lambda: local_status(db, deal_id) == "done", devnet)
        assert '"event": "state_change", "component": "provider", "entity": "deal"' in provider.log_tail(200)
        assert dev_private_key(PROVIDER)[-20:] not in provider.log_path.read_text()
    finally:
        provider.stop()


def test_restart_resumes_an_agreed_deal(devnet):
    provider = devnet.provider("provider-restart")
    db = devnet.root / "provider-restart" / "provider.db"
    try:
        deal_id, deal = matched_deal(devnet, post_job(devnet, "restart"))
        wait_until("the provider to agree", lambda: local_status(db, deal_id) not in (None, "new"), devnet)
        provider.kill()
        assert devnet.contracts.agreement(deal).resource_provider_agreed
        creator = creator_agrees(devnet, deal)
        assert devnet.contracts.state(deal) == AgreementState.DEAL_AGREED
        provider = devnet.provider("provider-restart")
        wait_state(devnet, deal, AgreementState.RESULTS_SUBMITTED)
        devnet.contracts.accept_result(deal, creator)
        wait_until("the restarted provider to finish", lambda: local_status(db, deal_id) == "done", devnet)
    finally:
        provider.stop()


def test_provider_claims_timeout_when_creator_never_judges(devnet):
    provider = devnet.provider("provider-timeout", "--results-collateral-multiple", "2")
    try:
        before = devnet.contracts.balance_of(address(PROVIDER))
        timeouts = DealTimeouts(judge_results=3)
        deal_id, deal = matched_deal(devnet, post_job(devnet, "never judged", timeouts))
        creator_agrees(devnet, deal)
        wait_state(devnet, deal, AgreementState.TIMEOUT_JUDGE_RESULTS, timeout=90)
        assert devnet.contracts.balance_of(address(PROVIDER)) > before
    finally:
        provider.stop()
