"""Section 5: the solver's matcher alone at scale (pure Python, no I/O).

A seeded market like the solver sees: resource offers of five machine shapes
(CPU-only to 4 GPUs), four price levels, mixed mediators and module
allowlists, 1-4 slots each; job offers of five requirement shapes, price
limits, mediators, 30% another module and 5% targeted at one provider. For
each size the matcher is built fresh (``add_resource_offer`` /
``add_job_offer``) and ``match_all`` timed, each size in a fresh interpreter;
the memory figure is that process's RSS growth over building the index and
one ``match_all`` (the offers themselves excluded).
"""

from __future__ import annotations

import gc
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.common import ROOT, figure, section

__all__ = ["market", "measure", "run"]

_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _addr(tag: int, i: int) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(f"0x{tag:02x}{i:038x}")


def market(n_jobs: int, n_offers: int, seed: int = 7) -> tuple[list[Any], list[Any]]:
    """``(resource offers, job offers)`` of a seeded varied market."""
    from lilypad.protocol.deal import DealPricing
    from lilypad.protocol.offers import JobModule, JobOffer, ResourceOffer, ResourceSpec

    rng = random.Random(seed)
    solver = _addr(0xEE, 1)
    m1, m2, m3 = (_addr(0xDD, i) for i in (1, 2, 3))
    providers = [_addr(0xAA, i + 1) for i in range(n_offers)]
    creators = [_addr(0xBB, i + 1) for i in range(max(1, n_jobs // 20))]

    def spec(c: int, g: int, v: int, r: int, d: int) -> ResourceSpec:
        return ResourceSpec(cpu=c, gpu=g, vram=(v,) * g, ram=r, disk=d)

    machines = [spec(1000, 0, 0, 1024, 10), spec(4000, 0, 0, 8192, 100), spec(8000, 1, 24000, 16384, 100),
                spec(16000, 2, 80000, 65536, 1000), spec(32000, 4, 48000, 131072, 1000)]
    needs = [spec(500, 0, 0, 512, 0), spec(1000, 0, 0, 1024, 10), spec(3000, 0, 0, 4096, 50),
             spec(2000, 1, 16000, 8192, 0), spec(8000, 2, 40000, 32768, 500)]

    def pricing(ip: int) -> DealPricing:
        return DealPricing(instruction_price=ip, payment_collateral=10, results_collateral_multiple=2, mediation_fee=1)

    prices, limits = [pricing(ip) for ip in (1, 2, 3, 5)], [pricing(ip) for ip in (2, 3, 5, 5)]
    cowsay = JobModule(ref="cowsay:v0.0.1", repo="https://example.org/x/y", commit=_COMMIT)
    sdxl = JobModule(ref="sdxl:v1", repo="https://example.org/sdxl", commit=_COMMIT)
    template_offer = ResourceOffer(resource_provider=providers[0], solver=solver, mediators=[m1, m2],
                                   spec=machines[-1], pricing=prices[0], created_at=0, expires_at=10**9,
                                   nonce=bytes(32))
    template_job = JobOffer(job_creator=creators[0], solver=solver, mediators=[m1], module=cowsay,
                            spec=needs[0], pricing=limits[0], created_at=0, nonce=bytes(32))
    offers = [template_offer.model_copy(update={
        "resource_provider": providers[i], "nonce": rng.randbytes(32), "created_at": rng.randint(0, 1000),
        "slots": rng.choice([1, 2, 4]), "spec": rng.choice(machines), "pricing": rng.choice(prices),
        "mediators": rng.choice([(m1,), (m2,), (m1, m2)]), "modules": rng.choice([(), (), ("cowsay",), ("sdxl:v1",)]),
    }) for i in range(n_offers)]
    jobs = [template_job.model_copy(update={
        "job_creator": rng.choice(creators), "nonce": rng.randbytes(32), "created_at": rng.randint(0, 10**6),
        "spec": rng.choice(needs), "pricing": rng.choice(limits),
        "mediators": rng.choice([(m1,), (m2,), (m1, m2), (m3,)]),
        "module": cowsay if rng.random() < 0.7 else sdxl,
        "target": None if rng.random() < 0.95 else rng.choice(providers),
    }) for _ in range(n_jobs)]
    return offers, jobs


def _build(offers: list[Any], jobs: list[Any]) -> Any:
    from lilypad.solver.matching import Matcher

    matcher = Matcher()
    for offer in offers:
        matcher.add_resource_offer(offer)
    for job in jobs:
        matcher.add_job_offer(job)
    return matcher


def _rss() -> int:
    from bench.common import proc_sample

    sample = proc_sample(os.getpid())
    return sample.rss if sample else 0


def measure(n_jobs: int, n_offers: int, repeats: int) -> dict[str, Any]:
    """Time ``repeats`` fresh builds and ``match_all`` runs; memory is the growth of this
    process's RSS over building the index and matching once (run it in a fresh process)."""
    offers, jobs = market(n_jobs, n_offers)
    gc.collect()
    base = _rss()
    builds, matches, count, grown = [], [], 0, 0
    for i in range(repeats):
        started = time.perf_counter()
        matcher = _build(offers, jobs)
        built = time.perf_counter()
        found = matcher.match_all({})
        done = time.perf_counter()
        if i == 0:
            grown = _rss() - base
        builds.append(built - started)
        matches.append(done - built)
        count = len(found)
        del matcher, found
        gc.collect()
    return {"jobs": n_jobs, "offers": n_offers, "build": builds, "match": matches, "matches": count, "rss": grown}


def _measure(n_jobs: int, n_offers: int, repeats: int) -> dict[str, Any]:
    """:func:`measure` in a fresh interpreter, so each size's memory starts clean."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from bench.matching import measure; "
            "print(json.dumps(measure(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT), str(n_jobs), str(n_offers), str(repeats)],
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"matching {n_jobs} x {n_offers} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _nlogn(n: int) -> float:
    return n * math.log(n)


def run(quick: bool) -> dict[str, Any]:
    out = section("Matching at scale: the solver's matcher alone")
    job_sizes = (1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    offer_sizes = (1_000,) if quick else (1_000, 10_000)
    repeats = 2 if quick else 3
    rows, f = [], out["figures"]
    by_size: dict[tuple[int, int], dict[str, Any]] = {}
    for n_offers in offer_sizes:
        for n_jobs in job_sizes:
            # The largest size runs once: it alone takes minutes on this machine.
            m = _measure(n_jobs, n_offers, repeats if n_jobs * n_offers < 10**9 else 1)
            by_size[(n_jobs, n_offers)] = m
            key = f"{n_jobs // 1000}k_jobs_x_{n_offers // 1000}k_offers"
            med = statistics.median(m["match"])
            target = met = None
            if (n_jobs, n_offers) == (10_000, 1_000):
                target, met = "< 1 s", med < 1.0
            f[f"match_all.{key}"] = figure("s", m["match"], target=target, met=met,
                                           note=f"{m['matches']:,} matches")
            f[f"build_index.{key}"] = figure("s", m["build"], note="adding every resource and job offer to a fresh matcher")
            f[f"memory.{key}"] = figure("MiB", value=round(m["rss"] / 2**20, 1),
                                        note="RSS growth of a fresh process: index build + one match_all")
            rows.append([f"{n_jobs:,}", f"{n_offers:,}", round(med, 3), round(statistics.median(m["build"]), 3),
                         f"{m['matches']:,}", round(m["rss"] / 2**20, 1)])
    out["tables"].append({"title": "match_all on a fresh matcher (medians)",
                          "columns": ["job offers", "resource offers", "match_all s", "build s", "matches",
                                      "RSS growth MiB"], "rows": rows})
    growth = []
    for n_offers in offer_sizes:
        for small, large in zip(job_sizes, job_sizes[1:]):
            t_small = statistics.median(by_size[(small, n_offers)]["match"])
            t_large = statistics.median(by_size[(large, n_offers)]["match"])
            ratio, bound = t_large / t_small, _nlogn(large) / _nlogn(small)
            growth.append(ratio <= bound * 1.25)
            f[f"growth.{small // 1000}k_to_{large // 1000}k_jobs_x_{n_offers // 1000}k_offers"] = figure(
                "ratio", value=round(ratio, 2), target=f"<= n log n ratio {bound:.2f} (+25% noise)",
                met=ratio <= bound * 1.25, note="match_all time ratio for 10x the job offers")
    out["notes"].append("the time includes building the per-shape index lists on first use; times are wall "
                        f"clock on a shared machine, {repeats} repeats each")
    out["notes"].append("in this market 25% of job offers trust only a mediator no provider trusts (rejected "
                        "at once: the index holds offers per mediator) and 30% ask for a module some providers "
                        "do not allow; once every slot is taken, the jobs left skip full offers in O(1)")
    return out
