"""The shared observability helpers: state-change and event log lines and the metrics HTTP server."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lilypad.observability import (
    format_event,
    format_state_change,
    log_event,
    log_state_change,
)
from lilypad.observability.metrics import DaemonMetrics, MetricsServer


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers.get("Content-Type", "")


def test_state_change_is_one_json_line_without_secrets(caplog):
    with caplog.at_level(logging.INFO, logger="lilypad.provider"):
        line = log_state_change("provider", "deal", "0xabc", "agreed", "running", reason="picked up",
                                private_key="0xdeadbeef", key="k", tx=None)
    assert caplog.records[-1].getMessage() == line and "\n" not in line
    record = json.loads(line)
    assert record == {"event": "state_change", "component": "provider", "entity": "deal", "id": "0xabc",
                      "old": "agreed", "new": "running", "reason": "picked up", "tx": None}
    assert "deadbeef" not in line


def test_event_line_is_sorted_json_and_a_key_in_a_field_is_never_written(caplog):
    key = "0x" + "5e" * 32
    with caplog.at_level(logging.INFO, logger="lilypad.bridge"):
        line = log_event(logging.getLogger("lilypad.bridge"), "bridge_started", solver="0xAb", resuming=2,
                         private_key=key, web3_private_key=key, key=key, mnemonic="twelve words", fault=None)
    assert caplog.records[-1].getMessage() == line and caplog.records[-1].levelno == logging.INFO
    assert line == '{"event": "bridge_started", "fault": null, "resuming": 2, "solver": "0xAb"}'
    assert key[2:] not in caplog.text and "twelve" not in caplog.text
    # What the benchmarks parse: sorted keys, values through str() when not JSON.
    assert format_event("job_started", deal_id="0x01", at=Path("/x")) == (
        '{"at": "/x", "deal_id": "0x01", "event": "job_started"}')


def test_state_change_key_value_format(monkeypatch):
    monkeypatch.setenv("LILYPAD_LOG_FORMAT", "kv")
    line = format_state_change("mediator", "deal", "0x01", None, "rerunning", chosen="0xAb", note="two words",
                               password="hunter2")
    assert line == ('event=state_change component=mediator entity=deal id=0x01 old=null new=rerunning '
                    'chosen=0xAb note="two words"')


def test_metrics_server_serves_metrics_and_health():
    metrics = DaemonMetrics("provider")
    with MetricsServer(metrics.registry, 0, health=lambda: metrics.health(max_round_age=60)) as server:
        base = f"http://127.0.0.1:{server.port}"
        status, body, ctype = get(base + "/metrics")
        assert status == 200 and ctype.startswith("text/plain")
        assert sample(body.decode(), "lilypad_provider_jobs_total", outcome="succeeded") is None
        metrics.job_finished(1.5, "succeeded")
        metrics.job_finished(40.0, "failed")
        metrics.transitions.labels(status="running").inc()
        metrics.round_done(True)
        metrics.chain_read(head_block=12, head_timestamp=0, eth_wei=3 * 10**18, lp_units=10**18 // 2,
                           locked_units=2 * 10**18)
        text = get(base + "/metrics")[1].decode()
        assert sample(text, "lilypad_provider_jobs_total", outcome="succeeded") == 1
        assert sample(text, "lilypad_provider_jobs_total", outcome="failed") == 1
        assert sample(text, "lilypad_provider_job_duration_seconds_count") == 2
        assert sample(text, "lilypad_provider_job_duration_seconds_bucket", le="2.0") == 1
        assert sample(text, "lilypad_provider_deal_transitions_total", status="running") == 1
        assert sample(text, "lilypad_provider_chain_head_block") == 12
        assert sample(text, "lilypad_provider_chain_head_lag_seconds") > 1e9  # block time 0: very old
        assert sample(text, "lilypad_provider_eth_balance") == 3
        assert sample(text, "lilypad_provider_lp_balance") == 0.5
        assert sample(text, "lilypad_provider_escrow_locked_lp") == 2
        status, body, ctype = get(base + "/health")
        assert status == 200 and ctype == "application/json"
        health = json.loads(body)
        assert health["status"] == "ok" and health["rounds"] == 1 and health["component"] == "provider"
        assert get(base + "/nope")[0] == 404


def test_health_is_503_when_rounds_stall():
    metrics = DaemonMetrics("mediator")
    with MetricsServer(metrics.registry, 0, health=lambda: metrics.health(max_round_age=-1)) as server:
        status, body, _ = get(f"http://127.0.0.1:{server.port}/health")
    assert status == 503 and json.loads(body)["status"] == "stalled"


def test_two_daemons_in_one_process_keep_their_own_counters():
    a, b = DaemonMetrics("provider"), DaemonMetrics("provider")
    a.job_finished(1, "succeeded")
    from lilypad.observability.metrics import render

    assert sample(render(a.registry).decode(), "lilypad_provider_jobs_total", outcome="succeeded") == 1
    assert sample(render(b.registry).decode(), "lilypad_provider_jobs_total", outcome="succeeded") is None


def test_metrics_port_in_use_is_an_error():
    metrics = DaemonMetrics("provider")
    with MetricsServer(metrics.registry, 0) as server, pytest.raises(OSError):
        MetricsServer(metrics.registry, server.port)
