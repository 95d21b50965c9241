"""Results through IPFS end to end: real kubo daemons, anvil, solver, provider, mediator, Docker.

* the provider pins its result on its kubo node and posts kubo's CID; ``lilypad run`` fetches
  it from the client's own node (connected to the provider's) and verifies it; ``lilypad fetch``
  gets it again from IPFS (own node, or the provider's gateway) with the solver stopped;
* the provider's kubo node is down: a clear error in its log, the result goes to the solver only
  and the job still settles; the client's fetch from IPFS fails and falls back to the solver;
  with the solver and IPFS both down, ``lilypad fetch`` fails with a clear error;
* mediation: the mediator fetches the provider's files (a tolerant comparator needs them) from
  IPFS.

Money is checked the way tests/e2e/test_market_e2e.py checks it (those amounts are unchanged).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from e2e_support import run_env  # type: ignore[import-not-found]

from lilypad.devnet.processes import free_port
from lilypad.results.cid import directory_cid


def lilypad(net, data_dir: Path, command: str, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
    return subprocess.run(
        [exe, command, *args, "--network", "ethereum:local:foundry", "--solver-url", net.solver_url,
         "--data-dir", str(data_dir)],
        env=run_env(net, data_dir), capture_output=True, text=True, timeout=timeout,
    )


def data_cid(output: str) -> str:
    match = re.search(r"Data CID: (bafy[a-z2-7]{55})\b", output)
    assert match, output
    return match.group(1)


def deal_id(output: str) -> str:
    match = re.search(r"^Deal (0x[0-9a-f]{64}):", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def log_events(net, name: str, event: str) -> list[dict]:
    found = []
    for line in (net.root / "logs" / f"{name}.log").read_text(errors="replace").splitlines():
        start = line.find('{"')
        if event in line and start >= 0:
            try:
                record = json.loads(line[start:])
            except ValueError:
                continue
            if record.get("event") == event:
                found.append(record)
    return found


def assert_paid_exactly_the_cost(before: dict[str, int], after: dict[str, int]) -> None:
    cost = after["provider"] - before["provider"]
    assert cost > 0, "the provider is paid"
    assert before["job_creator"] - after["job_creator"] == cost, "the client pays exactly the job cost"
    assert after["payments"] == before["payments"] == 0, "every escrow settled"


def test_result_through_kubo_and_fetched_with_the_solver_down(network, tmp_path):
    provider_node = network.add_kubo("kubo-provider")
    client_node = network.add_kubo("kubo-client")
    network.add_provider("provider", "--ipfs-api", provider_node.api_url)
    before = network.token_balances()
    out = lilypad(network, tmp_path / "client", "run", "cowsay:v0.0.1", "-i", "Message=moo over ipfs",
                  "--ipfs-api", client_node.api_url)
    assert out.returncode == 0, out.stdout + out.stderr + network.logs()
    cid, deal = data_cid(out.stdout), deal_id(out.stdout)
    assert f"result {cid} fetched from ipfs" in out.stderr, out.stderr
    assert_paid_exactly_the_cost(before, network.token_balances())
    with provider_node.client() as kubo:
        assert kubo.pinned(cid), "the provider pinned its result"
    assert [e["result_cid"] for e in log_events(network, "provider", "result_pinned")] == [cid]
    assert directory_cid(tmp_path / "client" / "downloaded-files" / deal) == cid

    network.processes["solver"].stop()  # the solver (and its store) is gone
    for name, option in (("own-node", ["--ipfs-api", client_node.api_url]),
                         ("gateway", ["--ipfs-gateway", provider_node.gateway_url])):
        got = lilypad(network, tmp_path / name, "fetch", deal, *option)
        assert got.returncode == 0, got.stdout + got.stderr
        fetched = tmp_path / name / "downloaded-files" / deal
        assert "moo over ipfs" in (fetched / "stdout").read_text()
        assert directory_cid(fetched) == cid

    provider_node.stop()
    client_node.stop()
    got = lilypad(network, tmp_path / "nothing-up", "fetch", deal, "--ipfs-api", client_node.api_url, timeout=120)
    assert got.returncode != 0
    assert "Traceback" not in got.stderr
    assert f"cannot fetch the result of deal {deal}" in got.stderr, got.stderr
    assert f"IPFS node {client_node.api_url} is unavailable" in got.stderr, got.stderr
    assert "solver" in got.stderr


def test_kubo_down_falls_back_to_the_solver_store(network, tmp_path):
    dead_api = f"http://127.0.0.1:{free_port()}"
    client_node = network.add_kubo("kubo-client")  # up, but nobody it can reach holds the result
    network.add_provider("provider", "--ipfs-api", dead_api)
    before = network.token_balances()
    out = lilypad(network, tmp_path / "client", "run", "cowsay:v0.0.1", "-i", "Message=solver fallback",
                  "--ipfs-api", client_node.api_url, "--ipfs-timeout", "3")
    assert out.returncode == 0, out.stdout + out.stderr + network.logs()
    cid, deal = data_cid(out.stdout), deal_id(out.stdout)
    assert f"result {cid} fetched from solver" in out.stderr, out.stderr
    assert f"IPFS (kubo node {client_node.api_url}) could not serve it: IpfsUnavailableError: " in out.stderr
    assert_paid_exactly_the_cost(before, network.token_balances())
    failed = log_events(network, "provider", "ipfs_add_failed")
    assert failed and all(e["ipfs_api"] == dead_api for e in failed), network.logs()
    assert f"IPFS node {dead_api} is unavailable" in failed[0]["error"]
    assert failed[0]["note"] == "falling back to the solver's result store"
    assert not log_events(network, "provider", "result_pinned")
    assert directory_cid(tmp_path / "client" / "downloaded-files" / deal) == cid


def test_mediator_fetches_the_providers_files_from_ipfs(network, tmp_path):
    provider_node = network.add_kubo("kubo-provider")
    mediator_node = network.add_kubo("kubo-mediator")
    client_node = network.add_kubo("kubo-client")
    network.add_provider("provider", "--ipfs-api", provider_node.api_url)
    network.add_mediator("--ipfs-api", mediator_node.api_url)
    before = network.token_balances()
    # jitter's comparator tolerates small numeric differences: judging needs the provider's files
    out = lilypad(network, tmp_path / "client", "run", "jitter:v0.0.1", "-i", "Numbers=1,2,3,4", "--mediate",
                  "--ipfs-api", client_node.api_url, timeout=400)
    assert out.returncode == 0, out.stdout + out.stderr + network.logs()
    cid = data_cid(out.stdout)
    after = network.token_balances()
    assert after["provider"] > before["provider"], "mediation accepted: provider paid"
    assert after["mediator"] > before["mediator"], "the mediator earned its fee"
    assert after["payments"] == 0
    fetched = log_events(network, "mediator", "provider_result_fetched")
    assert [(e["result_cid"], e["source"]) for e in fetched] == [(cid, "ipfs")], network.logs()


def test_input_files_travel_through_ipfs(network, tmp_path):
    provider_node = network.add_kubo("kubo-provider")
    mediator_node = network.add_kubo("kubo-mediator")
    client_node = network.add_kubo("kubo-client")
    network.add_provider("provider", "--ipfs-api", provider_node.api_url)
    network.add_mediator("--ipfs-api", mediator_node.api_url)
    files = tmp_path / "inputs"
    (files / "more").mkdir(parents=True)
    (files / "numbers.txt").write_text("10\n20\n30\n60\n")
    (files / "text.txt").write_text("files reached the container\n")
    (files / "more" / "empty").write_bytes(b"")
    inputs_cid = directory_cid(files)
    before = network.token_balances()
    out = lilypad(network, tmp_path / "client", "run", "stats:v0.0.1", "--inputs-path", str(files), "--mediate",
                  "--ipfs-api", client_node.api_url, timeout=400)
    assert out.returncode == 0, out.stdout + out.stderr + network.logs()
    assert f"input files {inputs_cid} pinned on IPFS ({client_node.api_url})" in out.stderr, out.stderr
    with client_node.client() as kubo:
        assert kubo.pinned(inputs_cid)
    stdout = (tmp_path / "client" / "downloaded-files" / deal_id(out.stdout) / "stdout").read_text()
    assert "count=4 sum=120.0 mean=30.0" in stdout, stdout
    for name in ("provider", "mediator"):
        fetched = log_events(network, name, "inputs_fetched")
        assert fetched and {(e["inputs_cid"], e["source"]) for e in fetched} == {(inputs_cid, "ipfs")}, \
            network.logs()
    after = network.token_balances()
    assert after["provider"] > before["provider"] and after["mediator"] > before["mediator"]
    assert after["payments"] == 0
