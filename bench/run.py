"""Run the benchmarks and write ``bench/results/latest.json`` and ``latest.md``.

    python bench/run.py [--quick] [--only SECTION[,SECTION...]] [--out DIR]

Sections: gas, overhead, sc_latency, throughput, matching, footprint. A section
that cannot run (no Docker, no bridge, ...) records ``skipped`` with the
reason; one that fails records ``error`` and the others still run. The exit
status is 1 if any section failed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, machine_info  # noqa: E402
from bench.report import render_markdown  # noqa: E402

__all__ = ["SECTIONS", "main", "run_sections"]

SECTIONS = ("gas", "overhead", "sc_latency", "throughput", "matching", "footprint")


def run_sections(names: list[str], quick: bool, echo: Any = print) -> dict[str, Any]:
    results: dict[str, Any] = {
        "schema": 1, "mode": "quick" if quick else "full",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(), "sections": {},
    }
    total = time.perf_counter()
    for name in names:
        echo(f"bench: {name} ...")
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            result = module.run(quick)
        except Exception as exc:  # one broken section must not lose the others' figures
            result = {"title": name, "figures": {}, "tables": [], "notes": [], "skipped": None,
                      "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-4000:]}
        result["duration_s"] = round(time.perf_counter() - started, 2)
        results["sections"][name] = result
        status = (f"skipped ({result['skipped']})" if result.get("skipped")
                  else f"ERROR {result['error']}" if result.get("error") else "done")
        echo(f"bench: {name} {status} in {result['duration_s']:.1f} s")
    results["duration_s"] = round(time.perf_counter() - total, 2)
    results["load_average_end"] = list(os.getloadavg())
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller sizes (CI smoke, < 3 min)")
    parser.add_argument("--only", default="", help=f"comma-separated sections (of {', '.join(SECTIONS)})")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results",
                        help="where latest.json and latest.md go (default bench/results)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    results = run_sections(names, args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
    report = render_markdown(results)
    (args.out / "latest.md").write_text(report)
    print(report)
    print(f"bench: wrote {args.out / 'latest.json'} and {args.out / 'latest.md'} in {results['duration_s']:.0f} s")
    return 1 if any(s.get("error") for s in results["sections"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
