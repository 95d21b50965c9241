"""Every service's /metrics and /health, scraped from real processes on a real
chain: the numbers move when a job runs (with mediation, so the mediator
re-runs it too)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lilypad.devnet.network import MEDIATOR, NETWORK, LocalNetwork
from lilypad.devnet.processes import free_port


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def health(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait_for(what: str, check, net: LocalNetwork, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except OSError:  # the server is not listening yet
            result = None
        if result:
            return result
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}\n{net.logs()}")


def test_metrics_move_when_a_job_runs(tmp_path, start_network):
    with start_network() as net:
        provider_port, mediator_port = free_port(), free_port()
        net.add_provider("provider", "--metrics-port", str(provider_port))
        net.lilypad("mediator", "mediator", "--network", NETWORK, "--solver-url", net.solver_url, "--data-dir",
                    str(tmp_path / "mediator"), "--metrics-port", str(mediator_port), key_index=MEDIATOR)
        solver_m, provider_m = f"{net.solver_url}/metrics", f"http://127.0.0.1:{provider_port}/metrics"
        mediator_m = f"http://127.0.0.1:{mediator_port}/metrics"

        before = {"solver": wait_for("the provider's offer", lambda: (
            s := scrape(solver_m), value(s, "lilypad_solver_open_offers", kind="resource") >= 1)[-1] and s, net)}
        before["provider"] = wait_for("the provider's chain read", lambda: (
            s := scrape(provider_m), value(s, "lilypad_provider_chain_head_block") > 0)[-1] and s, net)
        before["mediator"] = wait_for("the mediator's metrics", lambda: scrape(mediator_m), net)
        assert value(before["solver"], "lilypad_solver_results_stored") == 0
        assert value(before["solver"], "lilypad_solver_deals", state="MediationAccepted") == 0
        assert value(before["provider"], "lilypad_provider_jobs_total", outcome="succeeded") == 0
        assert value(before["provider"], "lilypad_provider_eth_balance") > 0
        lp_before = value(before["provider"], "lilypad_provider_lp_balance")
        assert lp_before > 0
        code, body = health(f"{net.solver_url}/health")
        assert code == 200 and body["status"] == "ok" and body["head_block"] > 0 and body["open_offers"]["resource"] >= 1
        code, body = health(f"http://127.0.0.1:{provider_port}/health")
        assert code == 200 and body["status"] == "ok" and body["component"] == "provider" and body["rounds"] > 0

        exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
        out = subprocess.run([exe, "run", "stats:v0.0.1", "-i", "Numbers=1,2,3", "--mediate", "--network", NETWORK,
                              "--solver-url", net.solver_url, "--data-dir", str(tmp_path / "client")],
                             env=net.client_env(tmp_path / "client"), capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr + net.logs()

        after = {"solver": wait_for("the solver to see mediation accepted", lambda: (
            s := scrape(solver_m), value(s, "lilypad_solver_deals", state="MediationAccepted") == 1)[-1] and s, net)}
        assert value(after["solver"], "lilypad_solver_results_stored") == 1
        assert value(after["solver"], "lilypad_solver_results_stored_bytes") > 0
        assert value(after["solver"], "lilypad_solver_offers", kind="job", state="matched") == 1
        assert value(after["solver"], "lilypad_solver_queue_depth", queue="awaiting_results") == 0
        assert value(after["solver"], "lilypad_solver_watcher_logs_handled") > 0
        assert value(after["solver"], "lilypad_solver_chain_head_block") > value(
            before["solver"], "lilypad_solver_chain_head_block")

        after["provider"] = wait_for("the provider's paid balance", lambda: (
            s := scrape(provider_m), value(s, "lilypad_provider_lp_balance") > lp_before)[-1] and s, net, 30)
        assert value(after["provider"], "lilypad_provider_jobs_total", outcome="succeeded") == 1
        assert value(after["provider"], "lilypad_provider_job_duration_seconds_count") == 1
        assert value(after["provider"], "lilypad_provider_job_duration_seconds_sum") > 0
        assert value(after["provider"], "lilypad_provider_deal_transitions_total", status="running") == 1
        assert value(after["provider"], "lilypad_provider_escrow_locked_lp") == 0, "every escrow settled"

        after["mediator"] = scrape(mediator_m)
        # the mediator re-runs a checked job twice (MIN_RERUNS): one run cannot tell non-determinism apart
        assert value(after["mediator"], "lilypad_mediator_jobs_total", outcome="succeeded") == 2
        assert value(after["mediator"], "lilypad_mediator_deal_transitions_total", status="accepted") == 1
        code, body = health(f"http://127.0.0.1:{mediator_port}/health")
        assert code == 200 and body["component"] == "mediator"
        log = (tmp_path / "logs" / "provider.log").read_text()
        assert '"event": "state_change", "component": "provider", "entity": "deal"' in log
