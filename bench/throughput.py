"""Section 4: throughput, trivial jobs completed per minute.

One resource provider with several slots (``--slots 8``), a mediator, the
solver and anvil (auto-mining) are real processes; the trivial module is
``cowsay`` (BusyBox ``awk`` in a 2 MB image). A batch of B jobs is submitted at
once as B ``lilypad run`` processes, each by its own funded user (no two
processes share an account's nonces). Throughput is B over the time from the
first start until the last job settled (its run record's final stage); the
time until the last process exited is reported too. While a batch runs, the CPU seconds of every
process group are read from ``/proc`` (services, the Docker engine with its
shims and containers, and the ``lilypad run`` clients, as reaped children),
so the report can say what saturates.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import time
from typing import Any

from web3.logs import DISCARD

from bench.chain import MAX_UINT, Chain, funded_job_creators
from bench.common import (
    cli_job,
    devnet,
    docker_pids,
    figure,
    finish_cli_job,
    proc_sample,
    section,
    start_cli_job,
    system_cpu,
)

__all__ = ["SLOTS", "CpuMeter", "run", "run_batch"]

SLOTS = 8
_MODULE = "cowsay:v0.0.1"
#: Memory one `lilypad run` process may take (measured ~150 MB; margin for safety).
_CLIENT_BYTES = 300 * 2**20
#: Seconds a `lilypad run` may take to exit after its job settled before it is stopped.
_LINGER = 20.0


class CpuMeter:
    """CPU seconds per process group between ``start()`` and ``stop()``."""

    def __init__(self, services: dict[str, int]) -> None:
        self.services = services
        self.before: dict[str, float] = {}
        self.result: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        out = {}
        for name, pid in self.services.items():
            s = proc_sample(pid)
            out[name] = s.cpu if s else 0.0
        out["docker engine + containers"] = sum(s.cpu for s in map(proc_sample, docker_pids()) if s)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        out["lilypad run clients"] = ru.ru_utime + ru.ru_stime
        me = resource.getrusage(resource.RUSAGE_SELF)
        out["bench driver (this process)"] = me.ru_utime + me.ru_stime
        busy, total = system_cpu()
        out["_busy"], out["_total"] = busy, total
        return out

    def start(self) -> None:
        self.before = self._read()

    def stop(self) -> dict[str, float]:
        after = self._read()
        self.result = {k: max(0.0, after[k] - self.before.get(k, 0.0)) for k in after}
        return self.result


def _record_done(data: Any) -> float | None:
    """When the run in ``data`` reached its final stage (Unix time), if it has."""
    import json

    for path in (data / "jobcreator" / "runs").glob("*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        times = record.get("stage_times") or {}
        final = times.get("done") or times.get("failed")
        if final:
            return float(final)
    return None


def run_batch(net: Any, keys: list[str], size: int, tag: str, meter: CpuMeter | None = None,
              linger: float = _LINGER) -> dict[str, Any]:
    """Submit ``size`` jobs at once (one user each). Throughput counts a job when its
    deal settled and its run record says so; processes still running ``linger`` s after
    the last job settled are stopped and counted."""
    if meter:
        meter.start()
    batch_start = time.time()
    started = time.perf_counter()
    procs = []
    for i in range(size):
        data = net.root / "clients" / f"{tag}-{i}"
        procs.append((start_cli_job(net, data, _MODULE, {"Message": f"{tag} {i}"}, private_key=keys[i]), data))
    done_at: dict[int, float] = {}
    lingered = 0
    deadline = time.monotonic() + 900
    while any(proc.poll() is None for (proc, _, _), _ in procs):
        for i, (_, data) in enumerate(procs):
            if i not in done_at and (at := _record_done(data)) is not None:
                done_at[i] = at
        if len(done_at) == size and time.time() - max(done_at.values()) > linger:
            for (proc, _, _), _ in procs:
                if proc.poll() is None:
                    lingered += 1
                    proc.terminate()
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"batch {tag}: {size - len(done_at)} jobs unfinished after 900 s\n{net.logs()}")
        time.sleep(0.25)
    jobs = [finish_cli_job(proc, data, before, at, timeout=30) for (proc, before, at), data in procs]
    wall = time.perf_counter() - started
    cpu = meter.stop() if meter else {}
    failed = [j for j in jobs if j.returncode != 0 and (j.record or {}).get("stage") != "done"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {size} jobs failed; first:\n{failed[0].output[-2000:]}\n{net.logs()}")
    for i, job in enumerate(jobs):
        done_at.setdefault(i, _record_done(procs[i][1]) or job.ended_at)
    settled = max(done_at.values()) - batch_start
    return {"size": size, "wall": settled, "exit_wall": wall, "per_minute": 60.0 * size / settled,
            "per_minute_to_exit": 60.0 * size / wall, "lingered": lingered,
            "latencies": [done_at[i] - job.started_at for i, job in enumerate(jobs)], "cpu": cpu}


def run_sc_batch(net: Any, chain: Chain, client: Any, payee: str, size: int, tag: str,
                 meter: CpuMeter | None = None) -> dict[str, Any]:
    """Submit ``size`` smart-contract jobs at once (``runCowsay`` transactions sent
    back to back, not waiting for receipts); wall until every callback landed."""
    if meter:
        meter.start()
    started = time.perf_counter()
    hashes = [client.functions.runCowsay(f"{tag} {i}").transact({"from": payee, "gas": 3_000_000})
              for i in range(size)]
    ids = []
    for h in hashes:
        receipt = chain.w3.eth.wait_for_transaction_receipt(h, timeout=120)
        ids += [int(e.args.id) for e in chain.c["job_creator"].events.JobAdded().process_receipt(receipt, errors=DISCARD)]
    pending = set(ids)
    first_block = int(chain.w3.eth.block_number) - len(hashes)
    deadline = time.monotonic() + 600
    while pending:  # one eth_getLogs per round, so the driver itself stays light
        done = chain.c["job_creator"].events.JobCompleted().get_logs(from_block=max(0, first_block))
        pending -= {int(e.args.id) for e in done}
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} of {size} smart-contract jobs got no callback\n{net.logs()}")
        time.sleep(0.25)
    wall = time.perf_counter() - started
    cpu = meter.stop() if meter else {}
    return {"size": size, "wall": wall, "per_minute": 60.0 * size / wall, "latencies": [], "cpu": cpu}


def _memory_available() -> int:
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def _has_bridge() -> bool:
    """Whether this checkout has the bridge's command (``lilypad jobcreator``)."""
    from lilypad.cli import main

    return "jobcreator" in main.commands


def run(quick: bool) -> dict[str, Any]:
    out = section(f"Throughput: trivial jobs per minute, one provider with {SLOTS} slots")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        out["skipped"] = "Docker is not available (docker info failed)"
        return out
    plan = [(1, 1), (4, 1)] if quick else [(1, 2), (8, 1), (64, 1)]
    results: dict[int, list[dict[str, Any]]] = {}
    sc_results: dict[int, list[dict[str, Any]]] = {}
    with devnet("throughput", match_timeout=600.0) as net:
        net.add_provider("provider", "--slots", str(SLOTS))
        net.add_mediator()
        keys = funded_job_creators(Chain.of(net), max(b for b, _ in plan))
        cli_job(net, net.root / "warm-up", _MODULE, {"Message": "warm-up"})
        services = {name: p.proc.pid for name, p in net.processes.items() if p.proc is not None}
        for size, repeats in plan:
            need = size * _CLIENT_BYTES
            if _memory_available() < need:
                out["notes"].append(f"batch of {size} skipped: needs ~{need / 2**30:.1f} GiB for the clients, "
                                    f"{_memory_available() / 2**30:.1f} GiB available")
                continue
            for r in range(repeats):
                results.setdefault(size, []).append(
                    run_batch(net, keys, size, f"b{size}-{r}", CpuMeter(services)))
        # The same back end behind one long-running job creator: the bridge (full mode only).
        if quick:
            out["notes"].append("quick mode: smart-contract (bridge) batches not run")
        elif _has_bridge():
            from lilypad.devnet.network import JOB_CREATOR, address_of

            net.add_bridge("bridge")
            chain = Chain.of(net)
            payee = address_of(JOB_CREATOR)
            client = chain.deploy("ExampleClient", chain.addresses["controller"], sender=payee)
            chain.send(chain.c["token"].functions.approve(chain.addresses["job_creator"], MAX_UINT), payee)
            chain.send(chain.c["job_creator"].functions.setCallerAllowance(client.address, MAX_UINT), payee)
            run_sc_batch(net, chain, client, payee, 1, "sc-warm-up")
            services = {name: p.proc.pid for name, p in net.processes.items() if p.proc is not None}
            for size, repeats in plan:
                for r in range(repeats):
                    sc_results.setdefault(size, []).append(
                        run_sc_batch(net, chain, client, payee, size, f"sc{size}-{r}", CpuMeter(services)))
        else:
            out["notes"].append("smart-contract batches skipped: the bridge (`lilypad jobcreator`) is not here")
    for door, found in (("cli", results), ("bridge", sc_results)):
        if found:
            _report(out, door, found)
    return out


_DOORS = {"cli": "lilypad run processes, one user each", "bridge": "runCowsay transactions, a relayer carrying them (the contract is the job creator)"}


def _report(out: dict[str, Any], door: str, results: dict[int, list[dict[str, Any]]]) -> None:
    f = out["figures"]
    best = 0.0
    for size, runs in results.items():
        rates = [r["per_minute"] for r in runs]
        best = max(best, statistics.median(rates))
        f[f"jobs_per_minute.{door}.batch_{size}"] = figure("jobs/min", rates,
                                                           note=f"{size} at once: {_DOORS[door]}")
        lat = [x for r in runs for x in r["latencies"]]
        if lat:
            f[f"job_latency.{door}.batch_{size}"] = figure("s", lat, note="each lilypad run, start to job settled")
        if "per_minute_to_exit" in runs[0]:
            lingered = sum(r["lingered"] for r in runs)
            f[f"jobs_per_minute_to_exit.{door}.batch_{size}"] = figure(
                "jobs/min", [r["per_minute_to_exit"] for r in runs],
                note="counting until the last lilypad run process exited"
                     + (f"; {lingered} still running {_LINGER:.0f} s after its job settled were stopped"
                        if lingered else ""))
    f[f"jobs_per_minute.{door}.saturated"] = figure("jobs/min", value=round(best, 1), target=">= 120",
                                                    met=best >= 120, note="the best batch median")
    largest = results[max(results)][-1]
    cpu, wall = largest["cpu"], largest.get("exit_wall", largest["wall"])  # the CPU meter's window
    busy = cpu.get("_busy", 0.0)
    groups = sorted(((k, v) for k, v in cpu.items() if not k.startswith("_") and v > 0), key=lambda kv: -kv[1])
    table = {"title": f"{door}: CPU seconds by process group during the batch of {largest['size']} "
                      f"({wall:.1f} s): what saturates",
             "columns": ["process group", "CPU s", "cores busy (avg)", "share of machine busy time"], "rows": []}
    for name, seconds in groups:
        table["rows"].append([name, round(seconds, 1), round(seconds / wall, 2),
                              f"{100 * seconds / busy:.0f}%" if busy else "?"])
    table["rows"].append(["whole machine (all processes, others' included)", round(busy, 1), round(busy / wall, 2),
                          f"of {os.cpu_count()} cores"])
    out["tables"].append(table)
    if busy and groups:
        top = groups[0]
        out["notes"].append(
            f"{door}: the machine was {100 * busy / (wall * (os.cpu_count() or 1)):.0f}% busy during the batch of "
            f"{largest['size']}; the largest CPU consumer was {top[0]} ({top[1]:.0f} CPU s, "
            f"{100 * top[1] / busy:.0f}% of busy time)")
    out.setdefault("cpu_by_group", {})[door] = {k: round(v, 2) for k, v in cpu.items()}
