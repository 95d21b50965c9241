"""ChainWatcher and TimeoutKeeper against a real anvil with the contracts deployed,
and `lilypad solver --network ...` following that chain in a subprocess."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from lilypad.devnet.processes import ManagedProcess, dev_private_key, free_port, wait_for_port
from lilypad.protocol.accounts import account_from_private_key
from lilypad.protocol.deal import AgreementState, Deal
from lilypad.protocol.offers import JobModule, JobOffer, ResourceOffer
from lilypad.protocol.signing import OfferDomain, sign_offer
from lilypad.solver.service import SolverCore
from lilypad.solver.store import SolverStore
from lilypad.solver.watcher import CHAIN_LOCK, ChainWatcher, TimeoutKeeper

from harness import DevChain

NETWORK = "ethereum:local:foundry"
TOKEN = 10**18
RESULT = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
JC_KEY, RP_KEY, MEDIATOR_KEY, SOLVER_KEY = (dev_private_key(i) for i in (1, 2, 3, 4))
JC, RP, MEDIATOR, SOLVER = (Account.from_key(k) for k in (JC_KEY, RP_KEY, MEDIATOR_KEY, SOLVER_KEY))


# --------------------------------------------------------------------------
# Fixtures: the harness's anvil + deployment of this module, connected in-process
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def contracts(devchain_contracts: Any) -> Any:
    """LilypadContracts on this module's chain (tests/conftest.py's ``devchain``)."""
    return devchain_contracts


@pytest.fixture(scope="module")
def parties(contracts: Any) -> dict[str, Any]:
    jc, rp = account_from_private_key(JC_KEY), account_from_private_key(RP_KEY)
    with CHAIN_LOCK:
        contracts.ensure_allowance(jc, 500 * TOKEN)
        contracts.ensure_allowance(rp, 500 * TOKEN)
    return {"jc": jc, "rp": rp, "solver": account_from_private_key(SOLVER_KEY)}


@pytest.fixture
def domain(contracts: Any) -> OfferDomain:
    return OfferDomain(chain_id=contracts.deployment.chain_id,
                       verifying_contract=contracts.deployment.contracts["controller"])


@pytest.fixture
def core(tmp_path: Path, domain: OfferDomain) -> Iterator[SolverCore]:
    store = SolverStore(tmp_path / "solver.db")
    yield SolverCore(store, domain, solver=SOLVER.address)
    store.close()


def offers(domain: OfferDomain, jobs: int) -> list[Any]:
    resource = sign_offer(ResourceOffer(resource_provider=RP.address, solver=SOLVER.address,
                                        mediators=[MEDIATOR.address], slots=jobs), RP, domain)
    return [resource] + [
        sign_offer(JobOffer(job_creator=JC.address, solver=SOLVER.address, mediators=[MEDIATOR.address],
                            module=JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit=COMMIT),
                            inputs={"Message": f"moo {i}"}), JC, domain)
        for i in range(jobs)
    ]


def make_deals(core: SolverCore, jobs: int) -> list[Deal]:
    for signed in offers(core.domain, jobs):
        core.accept_offer(signed)
    deals = core.match_round()
    assert len(deals) == jobs
    return [record.deal for record in deals]


def on_chain(fn: Callable[..., Any], *args: Any) -> Any:
    with CHAIN_LOCK:
        return fn(*args)


def agree(contracts: Any, parties: dict[str, Any], deal: Deal) -> None:
    on_chain(contracts.agree, deal, parties["jc"])
    on_chain(contracts.agree, deal, parties["rp"])


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def head_time() -> int:
    from ape import chain

    return on_chain(lambda: int(chain.blocks.head.timestamp))


def travel(seconds: int) -> None:
    from ape import chain

    with CHAIN_LOCK:
        chain.provider.make_request("evm_increaseTime", [seconds])
        chain.provider.make_request("evm_mine", [])


class Spy:
    """Counts the core's on_chain_state calls per deal."""

    def __init__(self, core: SolverCore) -> None:
        self.calls: list[tuple[str, AgreementState]] = []
        original = core.on_chain_state

        def spy(deal_id: str, state: AgreementState, *args: Any, **kwargs: Any) -> Any:
            self.calls.append((deal_id, AgreementState(state)))
            return original(deal_id, state, *args, **kwargs)

        core.on_chain_state = spy  # type: ignore[method-assign]


# --------------------------------------------------------------------------
# ChainWatcher
# --------------------------------------------------------------------------


def test_watcher_drives_the_deal_state_and_a_restart_handles_nothing_twice(
    contracts: Any, parties: dict[str, Any], core: SolverCore, tmp_path: Path
) -> None:
    (deal,) = make_deals(core, 1)
    deal_id = "0x" + deal.deal_id.hex()
    assert core.deal(deal_id).state == AgreementState.NONE
    cursor_db = tmp_path / "events.sqlite"
    spy = Spy(core)

    with ChainWatcher(contracts, core, cursor_db, interval=0.1) as watcher:
        agree(contracts, parties, deal)
        record = wait_for(lambda: (r := core.deal(deal_id)).state == AgreementState.DEAL_AGREED and r,
                          what="DealAgreed")
        agreement = on_chain(contracts.agreement, deal_id)
        assert agreement.state == AgreementState.DEAL_AGREED
        assert record.times.created_at == agreement.created_at > 0
        assert record.times.agreed_at == agreement.agreed_at > 0
        assert record.result_cid is None

        on_chain(contracts.add_result, deal, RESULT, 2, parties["rp"])
        record = wait_for(lambda: (r := core.deal(deal_id)).state == AgreementState.RESULTS_SUBMITTED and r,
                          what="ResultsSubmitted")
        assert record.result_cid == RESULT
        assert core.onchain_result_cid(deal_id) == RESULT
        assert record.times.results_submitted_at == on_chain(contracts.agreement, deal_id).results_submitted_at
        # every log has been committed: agree x2 (Negotiating, Agreed) + add_result (state + ResultStored)
        wait_for(lambda: watcher.handled >= 4, what="all four logs")
        assert watcher.errors == 0
    assert watcher.handled == 4
    handled_calls = list(spy.calls)
    assert len(handled_calls) == 4 and {d for d, _ in handled_calls} == {deal_id}

    # A new watcher on the same cursor: nothing is handled again.
    restarted = ChainWatcher(contracts, core, cursor_db, interval=0.1)
    try:
        assert restarted.drain() == 0
        assert (restarted.handled, restarted.skipped) == (0, 0)
        assert spy.calls == handled_calls
        assert core.deal(deal_id).state == AgreementState.RESULTS_SUBMITTED

        # ... and what happens next is handled exactly once.
        on_chain(contracts.accept_result, deal, parties["jc"])
        assert restarted.drain() == 1
        assert restarted.handled == 1
        assert spy.calls[len(handled_calls):] == [(deal_id, AgreementState.RESULTS_ACCEPTED)]
        assert core.deal(deal_id).state == AgreementState.RESULTS_ACCEPTED
        assert core.deal(deal_id).result_cid == RESULT
        assert restarted.drain() == 0
    finally:
        restarted.close()


def test_watcher_commits_logs_of_deals_it_does_not_know(
    contracts: Any, parties: dict[str, Any], core: SolverCore, tmp_path: Path, domain: OfferDomain
) -> None:
    """Another solver's deal: its logs are committed without touching this core."""
    other = SolverCore(SolverStore(tmp_path / "other.db"), domain, solver=SOLVER.address)
    try:
        (deal,) = make_deals(other, 1)
    finally:
        other.store.close()
    from ape import chain

    watcher = ChainWatcher(contracts, core, tmp_path / "events.sqlite", start_block=on_chain(
        lambda: chain.blocks.height) + 1)
    try:
        spy = Spy(core)
        agree(contracts, parties, deal)
        assert watcher.drain() == 2
        assert (watcher.handled, watcher.skipped) == (0, 2)
        assert spy.calls == []
        assert watcher.drain() == 0
    finally:
        watcher.close()


# --------------------------------------------------------------------------
# TimeoutKeeper
# --------------------------------------------------------------------------


def test_timeout_keeper_times_out_overdue_deals_and_tolerates_being_beaten_to_it(
    contracts: Any, parties: dict[str, Any], core: SolverCore, tmp_path: Path
) -> None:
    mine, theirs = make_deals(core, 2)
    ids = ["0x" + d.deal_id.hex() for d in (mine, theirs)]
    watcher = ChainWatcher(contracts, core, tmp_path / "events.sqlite", interval=0.1)
    keeper = TimeoutKeeper(contracts, core, parties["solver"], interval=0.2)
    try:
        for deal in (mine, theirs):
            agree(contracts, parties, deal)
        watcher.drain()
        assert [core.deal(i).state for i in ids] == [AgreementState.DEAL_AGREED] * 2
        assert keeper.step() == []  # the submit window is open
        assert core.overdue_deals(head_time()) == []

        travel(mine.timeouts.submit_results + 5)
        # The job creator times one deal out before the keeper gets to it.
        on_chain(contracts.timeout_submit_result, theirs, parties["jc"])
        assert on_chain(contracts.state, theirs) == AgreementState.TIMEOUT_SUBMIT_RESULTS
        assert {r.deal_id for r, f in core.overdue_deals(head_time())} == set(ids)

        with keeper:
            wait_for(lambda: keeper.sent + keeper.reverted >= 2, what="the keeper's round")
        assert (keeper.sent, keeper.reverted, keeper.errors) == (1, 1, 0)
        assert on_chain(contracts.state, mine) == AgreementState.TIMEOUT_SUBMIT_RESULTS
        assert [core.deal(i).state for i in ids] == [AgreementState.TIMEOUT_SUBMIT_RESULTS] * 2
        assert keeper.step() == []  # nothing overdue any more
        assert keeper.sent == 1

        # The watcher sees the same end state from the logs (idempotently).
        watcher.drain()
        assert watcher.errors == 0
        assert [core.deal(i).state for i in ids] == [AgreementState.TIMEOUT_SUBMIT_RESULTS] * 2
    finally:
        keeper.stop()
        watcher.close()


# --------------------------------------------------------------------------
# `lilypad solver --network ...`
# --------------------------------------------------------------------------


def test_solver_command_connects_watches_and_reports_itself(
    devchain: DevChain, contracts: Any, parties: dict[str, Any], tmp_path: Path, domain: OfferDomain
) -> None:
    port = free_port()
    exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
    env = {
        "APE_FOUNDRY_HOST": devchain.rpc_url,
        "LILYPAD_DEPLOYMENTS_DIR": str(devchain.deployments),
        "WEB3_PRIVATE_KEY": SOLVER_KEY,
        "LILYPAD_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
    }
    proc = ManagedProcess("solver", [exe, "solver", "--network", NETWORK, "--port", str(port),
                                     "--data-dir", str(tmp_path / "solver"), "--watch-interval", "0.2"],
                          tmp_path / "solver.log", env=env, cwd=tmp_path).start()
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        try:
            wait_for_port(port, proc=proc.proc, timeout=50)
        except Exception:
            raise AssertionError(proc.log_tail()) from None
        health = httpx.get(f"{base}/health", timeout=5).json()
        assert health["status"] == "ok"
        assert health["chain_id"] == 31337
        assert health["controller"].lower() == devchain.record["contracts"]["controller"].lower()
        assert health["solver"] == SOLVER.address
        assert isinstance(health["head_block"], int) and health["head_block"] > 0

        # Offers over HTTP -> a deal; agreeing on-chain shows up through the solver's watcher.
        for signed in offers(domain, 1):
            kind = "resource_offers" if signed.kind == "resource" else "job_offers"
            response = httpx.post(f"{base}/{kind}", json=signed.model_dump(mode="json"), timeout=5)
            assert response.status_code == 201, response.text
        deals = wait_for(lambda: httpx.get(f"{base}/deals", params={"party": JC.address}, timeout=5).json()["deals"],
                         what="a match")
        view = deals[0]
        deal = Deal.model_validate(view["terms"])
        assert "0x" + deal.deal_id.hex() == view["deal_id"]
        agree(contracts, parties, deal)
        wait_for(lambda: httpx.get(f"{base}/deals/{view['deal_id']}", timeout=5).json()["state"] == "DealAgreed",
                 what="DealAgreed through the solver's watcher")
    finally:
        proc.stop()
    assert proc.proc is not None and proc.proc.returncode is not None
    assert "Traceback" not in proc.log_tail(200), proc.log_tail(200)
