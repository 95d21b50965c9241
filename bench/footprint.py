"""Section 6: resident memory of each long-running service, idle and under load, and the CPU
each uses while idle (issue 20: < 0.5 % of a core each).

A devnet of real processes: anvil, ``lilypad solver``, ``lilypad
resource-provider`` (4 slots), ``lilypad mediator`` and ``lilypad jobcreator``
(the bridge). Idle: RSS sampled every 0.25 s for a few seconds once all are
up. Under load: sampled the same way while a batch of ``lilypad run`` jobs
(each by its own user) and a batch of smart-contract jobs through the bridge
run at once; a ``lilypad run`` client's own peak RSS is reported too.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench.chain import MAX_UINT, Chain, funded_job_creators
from bench.common import cli_job, devnet, figure, proc_sample, section
from bench.throughput import run_batch, run_sc_batch

__all__ = ["Sampler", "run"]


class Sampler(threading.Thread):
    """Samples the RSS of named pids (and of any extra pids offered) every ``every`` seconds."""

    def __init__(self, pids: dict[str, int], every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pids, self.every = pids, every
        self.samples: dict[str, list[int]] = {name: [] for name in pids}
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            for name, pid in self.pids.items():
                s = proc_sample(pid)
                if s:
                    self.samples[name].append(s.rss)
            self.stop_event.wait(self.every)

    def finish(self) -> dict[str, list[int]]:
        self.stop_event.set()
        self.join(5)
        return self.samples


class _ClientPeaks(threading.Thread):
    """The largest RSS any ``lilypad run`` child of this process reached (sampled)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop_event.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    if int(stat[1]) != me or b"run" not in (entry / "cmdline").read_bytes().split(b"\0"):
                        continue
                except (OSError, IndexError, ValueError):
                    continue
                s = proc_sample(int(entry.name))
                if s:
                    self.peak = max(self.peak, s.rss)
            self.stop_event.wait(0.2)


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, seconds) process ``pid`` has used so far (``/proc/<pid>/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(quick: bool) -> dict[str, Any]:
    out = section("Footprint: resident memory of each service, idle and under load")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        out["skipped"] = "Docker is not available (docker info failed)"
        return out
    from lilypad.cli import main as cli

    have_bridge = "jobcreator" in cli.commands  # asked of the CLI, not of a file path that moves
    cli_jobs, sc_jobs = (2, 1) if quick else (8, 8)
    with devnet("footprint", match_timeout=600.0) as net:
        net.add_provider("provider", "--slots", "4")
        net.add_mediator()
        if have_bridge:
            net.add_bridge("bridge")
        chain = Chain.of(net)
        keys = funded_job_creators(chain, cli_jobs)
        client = None
        if have_bridge:
            from lilypad.devnet.network import JOB_CREATOR, address_of

            payee = address_of(JOB_CREATOR)
            client = chain.deploy("ExampleClient", chain.addresses["controller"], sender=payee)
            chain.send(chain.c["token"].functions.approve(chain.addresses["job_creator"], MAX_UINT), payee)
            chain.send(chain.c["job_creator"].functions.setCallerAllowance(client.address, MAX_UINT), payee)
        # One job first so every service has done real work once (imports, image, caches).
        cli_job(net, net.root / "warm-up", "cowsay:v0.0.1", {"Message": "warm-up"})
        if client is not None:
            run_sc_batch(net, chain, client, payee, 1, "warm-up")
        pids = {name: p.proc.pid for name, p in net.processes.items() if p.proc is not None}
        time.sleep(2.0)
        idle = Sampler(pids)
        cpu0, wall0 = {name: cpu_seconds(pid) for name, pid in pids.items()}, time.monotonic()
        idle.start()
        time.sleep(5.0 if quick else 20.0)
        idle_samples = idle.finish()
        cpu1, idle_wall = {name: cpu_seconds(pid) for name, pid in pids.items()}, time.monotonic() - wall0
        load = Sampler(pids)
        peaks = _ClientPeaks()
        load.start()
        peaks.start()
        worker, problems = None, []

        def sc_load() -> None:
            try:
                run_sc_batch(net, chain, client, payee, sc_jobs, "load")
            except Exception as exc:  # reported, not lost with the thread
                problems.append(f"smart-contract load: {type(exc).__name__}: {str(exc)[:300]}")

        if client is not None:
            worker = threading.Thread(target=sc_load, daemon=True)
            worker.start()
        try:
            run_batch(net, keys, cli_jobs, "load")
        except Exception as exc:
            problems.append(f"lilypad run load: {type(exc).__name__}: {str(exc)[:300]}")
        if worker is not None:
            worker.join(660)
        out["notes"] += [f"load phase incomplete ({p}); the samples taken are still reported" for p in problems]
        load_samples = load.finish()
        peaks.stop_event.set()
        peaks.join(5)
    rows, f = [], out["figures"]
    for name in pids:
        used0, used1 = cpu0.get(name), cpu1.get(name)
        if used0 is not None and used1 is not None:
            share = 100 * (used1 - used0) / idle_wall
            f[f"cpu_idle.{name}"] = figure("% of a core", value=round(share, 2), target="< 0.5 %", met=share < 0.5,
                                           note=f"CPU used while idle over {idle_wall:.0f} s (no job in flight)")
    for name in pids:
        i, l_ = idle_samples.get(name) or [], load_samples.get(name) or []
        if not i or not l_:
            continue
        f[f"rss_idle.{name}"] = figure("MiB", [x / 2**20 for x in i])
        f[f"rss_load.{name}"] = figure("MiB", [x / 2**20 for x in l_], note=f"peak {max(l_) / 2**20:.0f} MiB")
        rows.append([name, round(statistics.median(i) / 2**20, 1), round(statistics.median(l_) / 2**20, 1),
                     round(max(l_) / 2**20, 1)])
    if peaks.peak:
        f["rss_peak.lilypad_run_client"] = figure("MiB", value=round(peaks.peak / 2**20, 1),
                                                  note="largest RSS one lilypad run process reached")
    out["tables"].append({"title": "Resident memory (MiB)", "columns": ["service", "idle median", "load median",
                                                                         "load peak"], "rows": rows})
    out["notes"].append(f"load: {cli_jobs} lilypad run jobs at once" + (f" plus {sc_jobs} smart-contract jobs "
                                                                       "through the bridge" if have_bridge else ""))
    if not have_bridge:
        out["notes"].append("the bridge is not in this checkout: its footprint is not measured")
    return out
