"""Smart-contract jobs end to end: client contracts call runJob on a real anvil; `lilypad solver`,
`lilypad resource-provider` and `lilypad jobcreator` (the bridge) are real processes; jobs run in
real containers; the results come back through submitResults (or jobFailed, with the refund)."""

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
from lilypad.results.cid import directory_cid

PENDING, COMPLETED, FAILED = 1, 2, 3  # ExampleJobRunner.Status
JOB_COMPLETED, JOB_FAILED = 3, 4  # LilypadOnChainJobCreator.JobState


@pytest.fixture
def chain(network):
    from ape import project

    return ClientChain(network, project)


def parties(chain) -> dict[str, int]:
    who = {"payee": chain.payee, "bridge": chain.bridge, "provider": address_of(PROVIDER),
           "mediator": address_of(MEDIATOR)}
    out = {name: chain.balance(address) for name, address in who.items()}
    out.update(chain.held())
    return out


def bridge_status(net) -> dict:
    exe = str(Path(sys.executable).parent / "lilypad")
    out = subprocess.run([exe, "jobcreator", "status", "--json", "--data-dir", str(net.root / "bridge")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def local_state(net, job_id: int) -> str | None:
    from lilypad.jobcreator.bridge.store import BridgeJobStore

    with BridgeJobStore(net.root / "bridge" / "bridge.db") as store:
        job = store.get(job_id)
    return None if job is None else job.state.value


def bridge_deals(net) -> list:
    from lilypad.client import SolverClient

    with SolverClient(net.solver_url) as client:
        return client.deals(party=address_of(9))


def test_a_contract_runs_cowsay_and_receives_the_result_cid(network, chain):
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
    # The CID the client got is cowsay's output, as the bridge downloaded and verified it.
    downloaded = network.root / "bridge" / "downloaded-files" / deal_id
    assert "moo from a contract" in (downloaded / "stdout").read_text()
    assert directory_cid(downloaded) == data_id

    after = parties(chain)
    deposit = chain.deposit
    assert after["payee"] - before["payee"] == -deposit  # paid exactly the deposit, once
    assert after["payments"] == 0 and after["job_creator"] == 0  # no escrow left behind
    assert sum(after.values()) == sum(before.values())
    assert after["provider"] > before["provider"]  # the provider was paid for its work
    assert after["bridge"] - before["bridge"] == deposit - (after["provider"] - before["provider"])

    status = bridge_status(network)
    assert status["counts"] == {"delivered": 1}
    assert status["jobs"][0]["deal_id"] == deal_id and status["jobs"][0]["result_cid"] == data_id


def test_ten_jobs_from_three_clients_in_the_same_blocks_complete_exactly_once(network, chain):
    network.add_provider("provider", "--slots", "4")
    network.add_bridge()
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
    assert len({r.blockNumber for r in receipts}) == 2
    ids = [i for r in receipts for i in chain.job_ids(r)]
    assert len(ids) == 10 == len(set(ids))

    wait_for(lambda: all(chain.job_state(i) == JOB_COMPLETED for i in ids), timeout=240,
             what="all ten jobs to complete", net=network)
    completed = [e.args.id for e in chain.job_events("JobCompleted")]
    assert sorted(completed) == sorted(ids)  # each exactly once
    assert chain.job_events("JobFailed") == []
    assert all(cowsay.functions.results(i).call().startswith("bafy") for i in ids[:4])
    assert all(runner.functions.getJob(i).call()[0] == COMPLETED for i in ids[4:7])
    assert all(legacy.functions.results(i).call().startswith("bafy") for i in ids[7:])
    assert len(bridge_deals(network)) == 10  # one deal per job: nothing was run twice

    after = parties(chain)
    assert after["payee"] - before["payee"] == -7 * chain.deposit
    assert chain.balance(legacy.address) - legacy_before == -3 * chain.deposit
    assert after["payments"] == 0 and after["job_creator"] == 0
    assert bridge_status(network)["counts"] == {"delivered": 10}


def test_the_bridge_killed_at_each_step_still_completes_each_job_exactly_once(network, chain):
    network.add_provider()
    runner = chain.deploy("ExampleJobRunner", chain.addresses["controller"])
    chain.authorise(runner)
    before = parties(chain)
    ids = []
    for point in FAULT_POINTS:
        bridge = network.add_bridge("bridge", fault=point)
        (job_id,) = chain.job_ids(chain.send(runner.functions.run("cowsay:v0.0.1", [f"Message=crash {point}"])))
        ids.append(job_id)
        code = bridge.proc.wait(timeout=120)
        assert code == 3, f"the bridge should have died at {point} (exit {code})\n{network.logs()}"
        assert f"LILYPAD_BRIDGE_FAULT={point}" in bridge.log_tail(200)
        restarted = network.add_bridge("bridge")
        wait_for(lambda: chain.job_state(job_id) == JOB_COMPLETED and local_state(network, job_id) == "delivered",
                 timeout=120, what=f"job {job_id} to complete after a crash {point}", net=network)
        restarted.stop()
        assert runner.functions.getJob(job_id).call()[0] == COMPLETED, point

    completed = [e.args.id for e in chain.job_events("JobCompleted")]
    assert sorted(completed) == sorted(ids)
    assert len(bridge_deals(network)) == len(FAULT_POINTS)  # one deal each, despite the crashes
    after = parties(chain)
    assert after["payee"] - before["payee"] == -len(FAULT_POINTS) * chain.deposit
    assert after["payments"] == 0 and after["job_creator"] == 0
    assert sum(after.values()) == sum(before.values())
    assert bridge_status(network)["counts"] == {"delivered": len(FAULT_POINTS)}


def test_jobs_that_cannot_be_done_fail_with_the_payee_refunded(network, chain):
    network.add_provider()
    network.add_bridge()
    runner = chain.deploy("ExampleJobRunner", chain.addresses["controller"])
    reverting = chain.deploy("RevertingClient", chain.job_creator.address)
    guzzler = chain.deploy("GasGuzzlerClient", chain.job_creator.address)
    for client in (runner, reverting, guzzler):
        chain.authorise(client)
    before = parties(chain)

    unknown = chain.job_ids(chain.send(runner.functions.run("cowsay:v9.9.9", ["Message=x"])))[0]
    malformed = chain.job_ids(chain.send(runner.functions.run("cowsay:v0.0.1", ["Message"])))[0]
    # The payee withdraws its approval in the same block as the job: the bridge finds no allowance.
    r1, _ = chain.same_block([(runner.functions.run("cowsay:v0.0.1", ["Message=broke"]), chain.payee),
                              (chain.token.functions.approve(chain.job_creator.address, 0), chain.payee)])
    no_allowance = chain.job_ids(r1)[0]
    wait_for(lambda: chain.job_state(no_allowance) == JOB_FAILED, timeout=60, what="the unfunded job to fail",
             net=network)
    chain.send(chain.token.functions.approve(chain.job_creator.address, 2**256 - 1))
    rejected = chain.job_ids(chain.send(reverting.functions.run(chain.payee)))[0]
    guzzled = chain.job_ids(chain.send(guzzler.functions.run(chain.payee)))[0]
    ids = [unknown, malformed, no_allowance, rejected, guzzled]

    wait_for(lambda: all(chain.job_state(i) == JOB_FAILED for i in ids), timeout=180,
             what="every job to fail", net=network)
    reasons = {e.args.id: e.args.reason for e in chain.job_events("JobFailed")}
    assert "has no tag, branch or commit 'v9.9.9'" in reasons[unknown]
    assert "bad input" in reasons[malformed] and "Message" in reasons[malformed]
    assert "insufficient allowance" in reasons[no_allowance]
    assert reasons[rejected] == reasons[guzzled] == "client callback reverted"
    for job_id in (unknown, malformed, no_allowance):  # the failure callback told the client
        status, _, _, _, reason = runner.functions.getJob(job_id).call()
        assert status == FAILED and reason == reasons[job_id]

    after = parties(chain)
    assert after["payee"] == before["payee"]  # every deposit taken was refunded
    assert after["job_creator"] == 0 and after["payments"] == 0
    assert sum(after.values()) == sum(before.values())
    status = bridge_status(network)
    assert status["counts"] == {"failed": 5}
    assert {j["job_id"]: j["reason"] for j in status["jobs"]}[rejected] == "client callback reverted"


def test_no_provider_means_a_refund_and_only_the_bridge_role_may_run_the_bridge(network, chain):
    from lilypad.devnet.processes import dev_private_key

    impostor = network.add_bridge("impostor", key_index=5)
    assert impostor.proc.wait(timeout=60) != 0
    assert "lacks BRIDGE_ROLE" in impostor.log_tail(20)

    # The bridge signs with an ape keyfile account (alias + passphrase), not a raw key.
    ape_env = {"APE_DATA_FOLDER": str(network.root / "ape-data"), "APE_ACCOUNTS_lilybridge_PASSPHRASE": "pass phrase"}
    imported = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom ape_accounts import import_account_from_private_key\n"
         "import_account_from_private_key('lilybridge', 'pass phrase', sys.argv[1])", dev_private_key(9)],
        env={**os.environ, **ape_env}, capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    bridge = network.lilypad("bridge", "jobcreator", "--network", "ethereum:local:foundry", "--solver-url",
                             network.solver_url, "--data-dir", str(network.root / "bridge"), "--account", "lilybridge",
                             "--match-timeout", "3", extra_env={**ape_env, "WEB3_PRIVATE_KEY": ""})
    runner = chain.deploy("ExampleJobRunner", chain.addresses["controller"])
    chain.authorise(runner)
    before = parties(chain)
    (job_id,) = chain.job_ids(chain.send(runner.functions.run("cowsay:v0.0.1", ["Message=anyone there?"])))
    wait_for(lambda: chain.job_state(job_id) == JOB_FAILED, timeout=90, what="the unmatched job to fail", net=network)
    status, _, _, _, reason = runner.functions.getJob(job_id).call()
    assert status == FAILED and reason == "no resource provider matched the job within 3 s"
    after = parties(chain)
    assert after == before  # the deposit went into escrow and came back; no deal, nothing else moved
    assert bridge_deals(network) == []
    assert dev_private_key(9)[2:] not in bridge.log_tail(500)  # the key is never logged


def test_a_rejected_result_fails_the_job_and_refunds_the_payee(network, chain):
    network.add_provider(fault="wrong-result")
    network.add_mediator()
    network.add_bridge("bridge", "--mediate")
    runner = chain.deploy("ExampleJobRunner", chain.addresses["controller"])
    chain.authorise(runner)
    before = parties(chain)
    (job_id,) = chain.job_ids(chain.send(runner.functions.run("cowsay:v0.0.1", ["Message=check me"])))
    wait_for(lambda: chain.job_state(job_id) == JOB_FAILED, timeout=180, what="mediation to reject", net=network)
    status, _, _, _, reason = runner.functions.getJob(job_id).call()
    assert status == FAILED and reason == "the mediator rejected the provider's result"
    after = parties(chain)
    assert after["payee"] == before["payee"]  # refunded in full
    assert after["provider"] < before["provider"]  # slashed
    assert after["payments"] == 0 and after["job_creator"] == 0
    assert sum(after.values()) == sum(before.values())


def test_the_bridge_rides_out_a_solver_outage(network, chain):
    network.add_provider()
    bridge = network.add_bridge()
    runner = chain.deploy("ExampleJobRunner", chain.addresses["controller"])
    chain.authorise(runner)
    wait_for(lambda: "bridge_started" in bridge.log_tail(100), timeout=60, what="the bridge to start", net=network)
    solver = network.processes["solver"]
    solver.stop()
    (job_id,) = chain.job_ids(chain.send(runner.functions.run("cowsay:v0.0.1", ["Message=after the outage"])))
    wait_for(lambda: '"transient": true' in bridge.log_tail(100), timeout=60,
             what="the bridge to report the outage", net=network)
    assert chain.job_state(job_id) == 2  # funds taken; the offer waits for the solver
    solver.start()
    wait_for(lambda: chain.job_state(job_id) == JOB_COMPLETED, timeout=120,
             what="the job to complete after the solver came back", net=network)
    assert runner.functions.getJob(job_id).call()[0] == COMPLETED
    assert len(bridge_deals(network)) == 1
