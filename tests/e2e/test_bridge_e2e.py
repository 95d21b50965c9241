"""Smart-contract jobs end to end (issue 19): client contracts call runJob on a real anvil;
`lilypad solver`, `lilypad resource-provider`, `lilypad mediator` and `lilypad jobcreator` (a
relayer: no role, no client money) are real processes; jobs run in real containers. The job
creator contract escrows the deposit, is the deal's job creator, delivers the result it reads
from the chain and returns the payee's change; every balance is asserted exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge_support import ClientChain, wait_for  # type: ignore[import-not-found]
from e2e_support import MEDIATOR, PROVIDER, address_of  # type: ignore[import-not-found]
from lilypad.jobcreator.bridge.logic import FAULT_POINTS

PENDING, COMPLETED, FAILED = 1, 2, 3  # ExampleJobRunner.Status
JOB_OPEN, JOB_COMPLETED, JOB_FAILED = 1, 2, 3  # LilypadOnChainJobCreator.JobState
LP = 10**18
JOB_COST = LP  # cowsay: one instruction at the provider's default 1 LP
SECOND_RELAYER = 8


@pytest.fixture
def chain(network):
    from ape import project

    return ClientChain(network, project)


def parties(chain) -> dict[str, int]:
    who = {"payee": chain.payee, "relayer": chain.bridge, "relayer2": address_of(SECOND_RELAYER),
           "provider": address_of(PROVIDER), "mediator": address_of(MEDIATOR)}
    out = {name: chain.balance(address) for name, address in who.items()}
    out.update(chain.held())
    return out


def bridge_status(net, name: str = "bridge") -> dict:
    exe = str(Path(sys.executable).parent / "lilypad")
    out = subprocess.run([exe, "jobcreator", "status", "--json", "--data-dir", str(net.root / name)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def local_state(net, job_id: int) -> str | None:
    from lilypad.jobcreator.bridge.store import BridgeJobStore

    with BridgeJobStore(net.root / "bridge" / "bridge.db") as store:
        job = store.get(job_id)
    return None if job is None else job.state.value


def contract_deals(net, chain) -> list:
    from lilypad.client import SolverClient

    with SolverClient(net.solver_url) as client:
        return client.deals(party=chain.job_creator.address)


def test_a_contract_runs_cowsay_gets_the_chains_result_and_its_change(network, chain):
    from lilypad.client import SolverClient
    from lilypad.results.cid import directory_cid

    network.add_provider()
    network.add_bridge()
    client = chain.deploy("ExampleClient", chain.addresses["controller"])
    chain.authorise(client)
    before = parties(chain)

    receipt = chain.send(client.functions.runCowsay("moo from a contract"))
    (job_id,) = chain.job_ids(receipt)
    data_id = wait_for(lambda: client.functions.results(job_id).call(), timeout=120, what="the callback", net=network)

    (completed,) = [e for e in chain.job_events("JobCompleted") if e.args.id == job_id]
    assert completed.args.callbackSucceeded and completed.args.dataId == data_id
    deal_id = completed.args.dealId
    # The CID the client got is the one the provider stored on-chain: cowsay's output.
    got = network.root / "check"
    with SolverClient(network.solver_url) as solver:
        assert solver.download_result(deal_id, got, data_id) == data_id
    assert "moo from a contract" in (got / "stdout").read_text() and directory_cid(got) == data_id

    after = parties(chain)
    fee = chain.relayer_fee
    # The payee paid the job cost and the relayer's fee, and got the rest of its 4 LP deposit back.
    assert after["payee"] - before["payee"] == -(JOB_COST + fee)
    assert after["relayer"] - before["relayer"] == fee  # the relayer fronted nothing and earned its fee
    assert after["provider"] - before["provider"] == JOB_COST
    assert after["payments"] == 0 and after["job_creator"] == 0  # no escrow left behind
    assert sum(after.values()) == sum(before.values())
    assert bridge_status(network)["counts"] == {"delivered": 1}


def test_two_relayers_complete_ten_jobs_from_three_clients_exactly_once(network, chain):
    network.add_provider("provider", "--slots", "4")
    network.add_bridge()
    network.add_bridge("bridge2", key_index=SECOND_RELAYER)
    cowsay = chain.deploy("ExampleClient", chain.addresses["controller"])
    runner = chain.deploy("ExampleJobRunner", chain.addresses["controller"])
    legacy = chain.deploy("LegacyClient", chain.addresses["job_creator"])  # Lilypad's published interface only
    chain.authorise(cowsay)
    chain.authorise(runner)
    chain.send(chain.token.functions.transfer(legacy.address, 3 * chain.deposit))
    chain.send(legacy.functions.approve(chain.token.address, chain.job_creator.address, 2**256 - 1))
    before = parties(chain)
    legacy_before = chain.balance(legacy.address)

    calls = [(cowsay.functions.runCowsay(f"cow {i}"), chain.payee) for i in range(4)]
    calls += [(runner.functions.run("cowsay:v0.0.1", [f"Message=runner {i}"]), chain.payee) for i in range(3)]
    calls += [(legacy.functions.runCowsay(f"legacy {i}"), chain.payee) for i in range(3)]
    receipts = chain.same_block(calls[:5]) + chain.same_block(calls[5:])
    assert all(r.status == 1 for r in receipts)
    ids = [i for r in receipts for i in chain.job_ids(r)]
    assert len(ids) == 10 == len(set(ids))

    wait_for(lambda: all(chain.job_state(i) == JOB_COMPLETED for i in ids), timeout=240,
             what="all ten jobs to complete", net=network)
    completed = [e.args.id for e in chain.job_events("JobCompleted")]
    assert sorted(completed) == sorted(ids)  # each exactly once, between the two relayers
    assert chain.job_events("JobFailed") == []
    assert all(cowsay.functions.results(i).call().startswith("bafy") for i in ids[:4])
    assert all(runner.functions.getJob(i).call()[0] == COMPLETED for i in ids[4:7])
    assert all(legacy.functions.results(i).call().startswith("bafy") for i in ids[7:])
    assert len(contract_deals(network, chain)) == 10  # one deal per job: nothing was run twice

    after = parties(chain)
    fee = chain.relayer_fee
    assert after["payee"] - before["payee"] == -7 * (JOB_COST + fee)
    assert chain.balance(legacy.address) - legacy_before == -3 * (JOB_COST + fee)
    # The fees went to whichever relayer agreed each deal; together, one fee per job.
    assert (after["relayer"] - before["relayer"]) + (after["relayer2"] - before["relayer2"]) == 10 * fee
    assert after["payments"] == 0 and after["job_creator"] == 0
    assert sum(after.values()) - sum(before.values()) == legacy_before - chain.balance(legacy.address)


def test_the_relayer_killed_at_each_step_still_completes_each_job_exactly_once(network, chain):
    network.add_provider()
    network.add_mediator()
    runner = chain.deploy("ExampleJobRunner", chain.addresses["controller"])
    chain.authorise(runner)
    before = parties(chain)
    ids = []
    check_always = (*chain.defaults[:4], 10_000, chain.defaults[5])
    for point in FAULT_POINTS:
        bridge = network.add_bridge("bridge", fault=point)
        if point == "after-complete":  # only a result that is not settled at once needs `complete`: a checked one
            (job_id,) = chain.job_ids(chain.send(chain.job_creator.functions.runJobWithOptions(
                "cowsay:v0.0.1", [f"Message=crash {point}"], chain.payee, check_always)))
        else:
            (job_id,) = chain.job_ids(chain.send(runner.functions.run("cowsay:v0.0.1", [f"Message=crash {point}"])))
        ids.append(job_id)
        code = bridge.proc.wait(timeout=120)
        assert code == 3, f"the relayer should have died at {point} (exit {code})\n{network.logs()}"
        assert f"LILYPAD_BRIDGE_FAULT={point}" in bridge.log_tail(200)
        restarted = network.add_bridge("bridge")
        wait_for(lambda: chain.job_state(job_id) == JOB_COMPLETED and local_state(network, job_id) == "delivered",
                 timeout=120, what=f"job {job_id} to complete after a crash {point}", net=network)
        restarted.stop()
        if point != "after-complete":
            assert runner.functions.getJob(job_id).call()[0] == COMPLETED, point

    completed = [e.args.id for e in chain.job_events("JobCompleted")]
    assert sorted(completed) == sorted(ids)
    assert len(contract_deals(network, chain)) == len(FAULT_POINTS)  # one deal each, despite the crashes
    after = parties(chain)
    n, fee, mediation = len(FAULT_POINTS), chain.relayer_fee, LP  # the checked job paid the mediator's fee
    assert after["payee"] - before["payee"] == -n * (JOB_COST + fee) - mediation
    assert after["relayer"] - before["relayer"] == n * fee
    assert after["mediator"] - before["mediator"] == mediation
    assert after["payments"] == 0 and after["job_creator"] == 0
    assert sum(after.values()) == sum(before.values())
    assert bridge_status(network)["counts"] == {"delivered": n}


def test_a_reverting_client_pays_and_an_unrunnable_job_is_refunded_when_cancelled(network, chain):
    network.add_provider()
    network.add_bridge()
    runner = chain.deploy("ExampleJobRunner", chain.addresses["controller"])
    reverting = chain.deploy("RevertingClient", chain.job_creator.address)
    for client in (runner, reverting):
        chain.authorise(client)
    before = parties(chain)

    unknown = chain.job_ids(chain.send(runner.functions.run("cowsay:v9.9.9", ["Message=x"])))[0]
    rejected = chain.job_ids(chain.send(reverting.functions.run(chain.payee)))[0]
    wait_for(lambda: chain.job_state(rejected) == JOB_COMPLETED, timeout=120, what="the reverting client's job",
             net=network)
    (event,) = [e for e in chain.job_events("JobCompleted") if e.args.id == rejected]
    assert not event.args.callbackSucceeded  # its callback reverted; it paid for the public result anyway
    wait_for(lambda: "has no tag, branch or commit 'v9.9.9'" in network.processes["bridge"].log_tail(200),
             timeout=60, what="the relayer to find the module unknown", net=network)
    assert chain.job_state(unknown) == JOB_OPEN  # no deal; nothing spent
    # The payee ends it (no deal is live): all its deposit back, the client told through jobFailed.
    chain.send(chain.job_creator.functions.cancelJob(unknown, chain.job_options(unknown)))
    status, _, _, _, reason = runner.functions.getJob(unknown).call()
    assert (status, reason) == (FAILED, "job cancelled")

    after = parties(chain)
    fee = chain.relayer_fee
    assert after["payee"] - before["payee"] == -(JOB_COST + fee)  # only the delivered job was paid for
    assert after["job_creator"] == 0 and after["payments"] == 0
    assert sum(after.values()) == sum(before.values())


def test_no_provider_leaves_the_deposit_safe_and_anyone_may_relay(network, chain):
    from lilypad.devnet.processes import dev_private_key

    # A relayer needs no role: it signs with an ape keyfile account (alias + passphrase) here.
    ape_env = {"APE_DATA_FOLDER": str(network.root / "ape-data"), "APE_ACCOUNTS_lilybridge_PASSPHRASE": "pass phrase"}
    imported = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom ape_accounts import import_account_from_private_key\n"
         "import_account_from_private_key('lilybridge', 'pass phrase', sys.argv[1])", dev_private_key(5)],
        env={**os.environ, **ape_env}, capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    bridge = network.lilypad("bridge", "jobcreator", "--network", "ethereum:local:foundry", "--solver-url",
                             network.solver_url, "--data-dir", str(network.root / "bridge"), "--account", "lilybridge",
                             extra_env={**ape_env, "WEB3_PRIVATE_KEY": ""})
    runner = chain.deploy("ExampleJobRunner", chain.addresses["controller"])
    chain.authorise(runner)
    before = parties(chain)
    (job_id,) = chain.job_ids(chain.send(runner.functions.run("cowsay:v0.0.1", ["Message=anyone there?"])))
    wait_for(lambda: "job offer" in bridge.log_tail(100), timeout=60, what="the offer to be posted", net=network)
    assert chain.job_state(job_id) == JOB_OPEN and contract_deals(network, chain) == []
    chain.send(chain.job_creator.functions.cancelJob(job_id, chain.job_options(job_id)))
    status, _, _, _, reason = runner.functions.getJob(job_id).call()
    assert status == FAILED and reason == "job cancelled"
    assert parties(chain) == before  # the deposit went into escrow and came back; nothing else moved
    assert dev_private_key(5)[2:] not in bridge.log_tail(500)  # the key is never logged


def test_rejected_results_are_retried_then_refunded_with_the_providers_collateral(network, chain):
    network.add_provider(fault="wrong-result")
    network.add_mediator()
    network.add_bridge()
    before = parties(chain)
    chain.send(chain.token.functions.approve(chain.job_creator.address, 2**256 - 1))
    check_always = (*chain.defaults[:4], 10_000, chain.defaults[5])  # the client asks for every result checked
    receipt = chain.send(chain.job_creator.functions.runJobWithOptions(
        "cowsay:v0.0.1", ["Message=check me"], chain.payee, check_always))
    (job_id,) = chain.job_ids(receipt)
    # Each deal's wrong result is rejected; the job tries again, up to three deals, then fails.
    wait_for(lambda: chain.job_state(job_id) == JOB_FAILED, timeout=400, what="three rejections", net=network)
    failed = [e for e in chain.job_events("JobDealFailed") if e.args.id == job_id]
    assert len(failed) == 3
    (ended,) = [e for e in chain.job_events("JobFailed") if e.args.id == job_id]
    deal = contract_deals(network, chain)[0].terms
    collateral = JOB_COST * deal.pricing.results_collateral_multiple
    fees = 3 * deal.pricing.mediation_fee
    after = parties(chain)
    # The payee got its deposit back, less three mediation fees, plus three results collaterals.
    assert ended.args.refunded == chain.deposit - fees + 3 * collateral
    assert after["payee"] - before["payee"] == -fees + 3 * collateral
    assert after["provider"] - before["provider"] == -3 * collateral
    assert after["mediator"] - before["mediator"] == fees
    assert after["relayer"] == before["relayer"]  # no result delivered: no relayer fee
    assert after["payments"] == 0 and after["job_creator"] == 0
    assert sum(after.values()) == sum(before.values())


def test_the_relayer_rides_out_a_solver_outage(network, chain):
    network.add_provider()
    bridge = network.add_bridge()
    runner = chain.deploy("ExampleJobRunner", chain.addresses["controller"])
    chain.authorise(runner)
    wait_for(lambda: "bridge_started" in bridge.log_tail(100), timeout=60, what="the relayer to start", net=network)
    solver = network.processes["solver"]
    solver.stop()
    (job_id,) = chain.job_ids(chain.send(runner.functions.run("cowsay:v0.0.1", ["Message=after the outage"])))
    wait_for(lambda: '"transient": true' in bridge.log_tail(100), timeout=60,
             what="the relayer to report the outage", net=network)
    assert chain.job_state(job_id) == JOB_OPEN  # the deposit is in escrow; the offer waits for the solver
    solver.start()
    wait_for(lambda: chain.job_state(job_id) == JOB_COMPLETED, timeout=120,
             what="the job to complete after the solver came back", net=network)
    assert runner.functions.getJob(job_id).call()[0] == COMPLETED
    assert len(contract_deals(network, chain)) == 1
