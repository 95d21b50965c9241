"""Section 3: smart-contract latency, ``runJob`` transaction -> the client's callback.

A deployed ``ExampleClient`` calls ``runCowsay(message)`` (``runJob`` on
``LilypadOnChainJobCreator``); the real bridge (``lilypad jobcreator``), solver,
provider and a cowsay container do the rest, and ``submitResults`` calls the
client back. Latency is wall time from just before the ``runCowsay``
transaction is sent to when the callback's result is readable on-chain
(polled every 20 ms). Where the time goes comes from the bridge's own job
history (``lilypad jobcreator status JOB --json``).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from typing import Any

from web3.logs import DISCARD

from bench.chain import MAX_UINT, Chain
from bench.common import devnet, figure, lilypad_exe, section

__all__ = ["run", "sc_jobs"]


def sc_jobs(net: Any, chain: Chain, client: Any, payee: str, messages: list[str]) -> list[dict[str, Any]]:
    """Run one cowsay job per message through ``client``, one after another; per job:
    ``id``, ``latency`` (s), ``submit`` (s until the runJob receipt), ``sent_at`` (Unix)."""
    out = []
    for message in messages:
        sent_at = time.time()
        started = time.perf_counter()
        receipt = chain.send(client.functions.runCowsay(message), payee)
        submitted = time.perf_counter() - started
        (event,) = chain.c["job_creator"].events.JobAdded().process_receipt(receipt, errors=DISCARD)
        job_id = int(event.args.id)
        chain.wait_for(lambda j=job_id: client.functions.results(j).call(), timeout=180,
                       what=f"the callback of job {job_id}\n{net.logs()}")
        out.append({"id": job_id, "latency": time.perf_counter() - started, "submit": submitted, "sent_at": sent_at})
    return out


def _history(net: Any, job_id: int) -> list[dict[str, Any]]:
    proc = subprocess.run([lilypad_exe(), "jobcreator", "status", "--json", "--data-dir", str(net.root / "bridge"),
                           str(job_id)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        return []
    return json.loads(proc.stdout).get("history", [])


def run(quick: bool) -> dict[str, Any]:
    out = section("Smart-contract latency: runJob -> client callback (cowsay)")
    from lilypad.cli import main

    if "jobcreator" not in main.commands:
        out["skipped"] = "the bridge daemon (`lilypad jobcreator`) is not in this checkout"
        return out
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        out["skipped"] = "Docker is not available (docker info failed)"
        return out
    from lilypad.devnet.network import JOB_CREATOR, address_of

    n = 2 if quick else 10
    with devnet("sc-latency") as net:
        net.add_provider()
        net.add_mediator()
        net.add_bridge()
        chain = Chain.of(net)
        payee = address_of(JOB_CREATOR)
        client = chain.deploy("ExampleClient", chain.addresses["controller"], sender=payee)
        chain.send(chain.c["token"].functions.approve(chain.addresses["job_creator"], MAX_UINT), payee)
        chain.send(chain.c["job_creator"].functions.setCallerAllowance(client.address, MAX_UINT), payee)
        sc_jobs(net, chain, client, payee, ["warm-up"])
        jobs = sc_jobs(net, chain, client, payee, [f"latency {i}" for i in range(n)])
        histories = {j["id"]: _history(net, j["id"]) for j in jobs}
    latencies = [j["latency"] for j in jobs]
    med = statistics.median(latencies)
    f = out["figures"]
    f["runjob_to_callback"] = figure("s", latencies, target="< 2 s median", met=med < 2.0,
                                     note="runCowsay sent -> client.results(id) set on-chain")
    f["runjob_tx"] = figure("s", [j["submit"] for j in jobs], note="runCowsay sent -> its receipt")
    # Per-state breakdown from the bridge's history: time from runJob to each state first reached.
    steps: dict[str, list[float]] = {}
    for job in jobs:
        seen: dict[str, float] = {}
        for entry in histories.get(job["id"], []):
            seen.setdefault(entry["state"], float(entry["at"]))
        prev = job["sent_at"]
        for state, at in sorted(seen.items(), key=lambda kv: kv[1]):
            steps.setdefault(state, []).append(at - prev)
            prev = at
    if steps:
        out["tables"].append({
            "title": "Where the time goes (bridge job history: time from the previous state, medians)",
            "columns": ["bridge state reached", "median s", "n"],
            "rows": [[state, round(statistics.median(v), 3), len(v)] for state, v in steps.items()]})
    out["notes"].append(f"{n} jobs one after another after one warm-up; anvil auto-mines; the bridge is woken by "
                        "the node's new blocks (eth_subscribe), and polls every 0.25 s while a job is in flight")
    return out
