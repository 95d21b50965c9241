"""The pure part of ``lilypad devnet``: devnet.json, restart backoff, health verdicts, ownership checks."""

from __future__ import annotations

import os
from pathlib import Path

from lilypad.devnet.state import (
    Component,
    DevnetState,
    Probe,
    RestartPolicy,
    default_data_dir,
    is_our_process,
    render_table,
    summarise,
    summary_text,
)


def _state(tmp_path: Path) -> DevnetState:
    return DevnetState(
        str(tmp_path), status="running", supervisor_pid=42, rpc_url="http://127.0.0.1:9545",
        solver_url="http://127.0.0.1:9080", deployments_dir=str(tmp_path / "deployments"),
        contracts={"token": "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
        accounts=[{"role": "job creator", "index": 1, "address": "0xJC", "private_key": "k1"},
                  {"role": "mediator", "index": 3, "address": "0xMED", "private_key": "k3"},
                  {"role": "solver", "index": 4, "address": "0xSOL", "private_key": "k4"}],
        components=[Component("anvil", "anvil", 9545, str(tmp_path / "logs/anvil.log"), pid=100, started_at=1.0),
                    Component("solver", "solver", 9080, "s.log", address="0xSOL", role="solver", pid=101),
                    Component("provider-1", "provider", 9101, "p.log", address="0xP", pid=102, restarts=2)])


def test_devnet_json_round_trips_through_the_file(tmp_path):
    state = _state(tmp_path)
    state.save(tmp_path)
    loaded = DevnetState.load(tmp_path)
    assert loaded == state
    assert loaded.component("provider-1").restarts == 2
    assert DevnetState.load(tmp_path / "nowhere") is None
    assert not list(tmp_path.glob("*.tmp"))


def test_unknown_keys_from_a_newer_writer_are_ignored(tmp_path):
    text = _state(tmp_path).to_json().replace('"status": "running"', '"status": "running", "future": 1')
    assert DevnetState.from_json(text).status == "running"


def test_health_urls_per_kind(tmp_path):
    s = _state(tmp_path)
    assert s.component("anvil").health_url == "http://127.0.0.1:9545"
    assert s.component("solver").health_url == "http://127.0.0.1:9080/api/v1/health"
    assert s.component("provider-1").health_url == "http://127.0.0.1:9101/health"


def test_client_env_names_the_job_creator_and_the_network(tmp_path):
    env = _state(tmp_path).client_env()
    assert env["WEB3_PRIVATE_KEY"] == "k1" and env["LILYPAD_MEDIATORS"] == "0xMED"
    assert env["LILYPAD_SOLVER_URL"] == "http://127.0.0.1:9080" and env["APE_FOUNDRY_HOST"] == "http://127.0.0.1:9545"


def test_restart_backoff_doubles_caps_resets_and_gives_up():
    policy = RestartPolicy(base=1.0, cap=8.0, stable_after=30.0, max_consecutive=5)
    n, delays = 0, []
    for _ in range(5):
        n, delay = policy.after_exit(n, ran_for=0.5)
        delays.append(delay)
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert policy.after_exit(n, ran_for=0.5) == (6, None)  # crash-looping: give up
    assert policy.after_exit(n, ran_for=60.0) == (1, 1.0)  # it ran stably: start counting again


def test_summarise_is_healthy_only_when_running_and_all_healthy():
    ok = [Probe("anvil", True, True, True), Probe("solver", True, True, True)]
    assert summarise(ok, "running") == ("devnet healthy: 2 components", 0)
    verdict, code = summarise([*ok, Probe("provider-1", True, True, False)], "running")
    assert code == 1 and "provider-1" in verdict
    assert summarise(ok, "stopped")[1] == 3
    assert summarise([], "running")[1] == 1


def test_probe_states():
    assert Probe("x", True, True, True).state == "healthy"
    assert Probe("x", True, False, False).state == "unhealthy"
    assert Probe("x", False, False, False).state == "down"


def test_only_processes_naming_the_data_dir_are_ours(tmp_path):
    root = tmp_path / "dev"
    sup = b"\0".join([b"python", b"-m", b"lilypad.devnet.supervisor", str(root).encode(), b""])
    assert is_our_process(sup, root, "lilypad.devnet.supervisor")
    assert not is_our_process(sup, tmp_path / "other", "lilypad.devnet.supervisor")
    assert not is_our_process(sup, tmp_path / "de", "lilypad.devnet.supervisor")  # a prefix is not a match
    anvil = b"\0".join([b"anvil", b"--port", b"1", b"--state", str(root / "anvil-state.json").encode()])
    assert is_our_process(anvil, root) and not is_our_process(anvil, root, "lilypad.devnet.supervisor")
    assert not is_our_process(b"sleep\x001000\x00", root)
    assert not is_our_process(b"", root)


def test_default_data_dir_env_then_home():
    assert default_data_dir({"LILYPAD_DEVNET_DIR": "/x/y"}) == Path("/x/y")
    assert default_data_dir({}) == Path(os.path.expanduser("~/.lilypad/devnet"))


def test_table_and_summary_show_every_component(tmp_path):
    state = _state(tmp_path)
    probes = {"anvil": Probe("anvil", True, True, True), "solver": Probe("solver", False, False, False)}
    table = render_table(state, probes, now=61.0)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["COMPONENT", "STATE", "PID"]
    assert lines[1].split()[:3] == ["anvil", "healthy", "100"] and "1m00s" in lines[1]
    assert lines[2].split()[:2] == ["solver", "down"]
    assert lines[3].split()[:5] == ["provider-1", "starting", "102", "9101", "2"]
    text = summary_text(state)
    assert "export WEB3_PRIVATE_KEY=k1" in text and "lilypad run cowsay:v0.0.1" in text
    assert all(c.name in text for c in state.components)
