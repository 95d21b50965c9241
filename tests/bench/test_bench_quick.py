"""The benchmarks never rot: `bench/run.py --quick` on the cheapest real section
(the matcher at scale) writes the expected JSON and report; the statistics and
the log parsing the other sections rely on behave."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import CliJob, summarise  # noqa: E402
from bench.overhead import STAGES, provider_events, stage_breakdown  # noqa: E402


def test_quick_matching_run_writes_json_and_report(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "matching",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["mode"] == "quick"
    assert results["machine"]["cores"] >= 1 and results["machine"]["versions"]["python"]
    sec = results["sections"]["matching"]
    assert not sec.get("error") and not sec.get("skipped")
    fig = sec["figures"]["match_all.10k_jobs_x_1k_offers"]
    assert fig["unit"] == "s" and fig["target"] == "< 1 s" and isinstance(fig["met"], bool)
    stats = fig["stats"]
    assert stats["n"] == 2 and 0 < stats["min"] <= stats["median"] <= stats["max"]
    assert sec["figures"]["memory.10k_jobs_x_1k_offers"]["value"] >= 0
    assert "growth.1k_to_10k_jobs_x_1k_offers" in sec["figures"]
    report = (tmp_path / "latest.md").read_text()
    assert "Matching at scale" in report and "match_all.10k_jobs_x_1k_offers" in report and "cores" in report


def test_summarise_gives_median_and_spread() -> None:
    s = summarise([5, 1, 3, 2, 4])
    assert (s["n"], s["median"], s["min"], s["max"], s["iqr"]) == (5, 3, 1, 5, 2)
    assert s["p10"] == 1.4 and s["p90"] == 4.6
    assert summarise([7])["median"] == summarise([7])["p90"] == 7


def test_stage_breakdown_from_the_run_record_and_the_provider_log(tmp_path: Path) -> None:
    deal = "0x" + "ab" * 32
    log = tmp_path / "provider.log"
    log.write_text(
        f'2026-01-01 00:00:03,500 lilypad.provider INFO {{"deal_id": "{deal}", "event": "job_started"}}\n'
        f'2026-01-01 00:00:04,000 lilypad.provider INFO {{"event": "state_change", "entity": "deal", '
        f'"id": "{deal}", "old": "running", "new": "ran"}}\n'
        f'2026-01-01 00:00:04,250 lilypad.provider INFO {{"deal_id": "{deal}", "event": "result_posted"}}\n'
        "2026-01-01 00:00:05,000 httpx INFO not json\n")
    events = provider_events(log)[deal]
    t0 = events["job_started"] - 3.5
    assert events["ran"] - t0 == 4.0 and events["result_posted"] - t0 == 4.25
    times = {"preparing": 1.0, "offer posted": 1.1, "matched": 1.3, "agreed": 2.0, "results submitted": 4.5,
             "accepted": 4.75, "done": 4.8}
    record = {"stage_times": {k: t0 + v for k, v in times.items()}}
    job = CliJob(0, 5.5, t0, t0 + 5.5, "", record)
    got = stage_breakdown(job, events)
    assert got is not None and list(got) == [name for name, _ in STAGES]
    assert abs(sum(got.values()) - 5.5) < 1e-6
    assert abs(got["container"] - 0.5) < 1e-6 and abs(got["cli_start"] - 1.0) < 1e-6
    assert stage_breakdown(CliJob(0, 1, t0, t0 + 1, "", {}), events) is None
