"""The market end to end with the provider behind a Bacalhau cluster (``--executor bacalhau``).

Real processes throughout: anvil with the deployed contracts, `lilypad solver`, `lilypad
resource-provider --executor bacalhau`, `lilypad mediator`, `lilypad run`, and a Bacalhau
orchestrator with two compute nodes (separate `bacalhau serve` processes on loopback)
plus the image registry they pull from (each node: 250 milli-cores and 512 MiB unless a test says otherwise).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bacalhau_support import start_cluster  # type: ignore[import-not-found]
from e2e_support import run_env  # type: ignore[import-not-found]
from lilypad.executor.bacalhau.api import BacalhauClient
from lilypad.results.cid import directory_cid


def lilypad_run(net, data_dir: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
    return subprocess.run(
        [exe, "run", *args, "--network", "ethereum:local:foundry", "--solver-url", net.solver_url,
         "--data-dir", str(data_dir)],
        env=run_env(net, data_dir), capture_output=True, text=True, timeout=timeout,
    )


SLEEPER_TEMPLATE = {
    "machine": {"gpu": 0, "cpu": 100, "ram": 64},
    "job": {"APIVersion": "V1beta1", "Spec": {
        "Engine": "Docker",
        "Docker": {"Image": "lilypad/busybox:1", "Entrypoint": ["sh", "-c", "sleep 10; echo slept"]},
        "Network": {"Type": "None"}, "Outputs": [{"Name": "outputs", "Path": "/outputs"}],
        "Resources": {"CPU": "0.1", "Memory": "64mb"}, "Timeout": 60}},
}


def use_test_modules(net, tmp_path: Path) -> None:
    """The built-in modules plus ``sleeper`` (sleeps 10 s, prints ``slept``), for every process
    of ``net`` started from now on (provider, ``lilypad run``)."""
    builtin = tmp_path / "modules"
    shutil.copytree(Path(__file__).resolve().parents[2] / "modules", builtin)
    (builtin / "sleeper").mkdir()
    (builtin / "sleeper" / "VERSION").write_text("v0.0.1\n")
    (builtin / "sleeper" / "lilypad_module.json.tmpl").write_text(json.dumps(SLEEPER_TEMPLATE, indent=1))
    net.env["LILYPAD_BUILTIN_MODULES_DIR"] = str(builtin)


def start_run(net, data_dir: Path, *args: str) -> subprocess.Popen:
    """``lilypad run ARGS`` in the background (output on its stdout)."""
    exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
    return subprocess.Popen([exe, "run", *args, "--network", "ethereum:local:foundry", "--solver-url",
                             net.solver_url, "--data-dir", str(data_dir)], env=run_env(net, data_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def cluster(tmp_path):
    cluster = start_cluster(tmp_path / "bacalhau", node_cpu="250m", node_memory="512Mi")
    try:
        yield cluster
    finally:
        cluster.stop()


def start_bacalhau_provider(net, cluster, *extra: str, fault: str | None = None):
    return net.add_provider("provider", "--executor", "bacalhau", "--bacalhau-api", cluster.api_url,
                            "--bacalhau-registry", cluster.registry_host, *extra, fault=fault)


def provider_events(net, event: str) -> list[dict]:
    found = []
    for line in (net.root / "logs" / "provider.log").read_text(errors="replace").splitlines():
        if f'"event": "{event}"' in line:
            found.append(json.loads(line[line.index("{"):]))
    return found


def lilypad_jobs(cluster) -> list[dict]:
    with BacalhauClient(cluster.api_url) as client:
        return [job for job in client.jobs() if str(job.get("Name", "")).startswith("lilypad-")]


def run_cowsay(net, data_dir: Path, message: str) -> str:
    """One paid cowsay job; its CID (checked against the downloaded result)."""
    out = lilypad_run(net, data_dir, "cowsay:v0.0.1", "-i", f"Message={message}")
    assert out.returncode == 0, out.stdout + out.stderr + net.logs()
    cid = re.search(r"\b(bafy[a-z2-7]{55})\b", out.stdout).group(1)
    downloaded = next((data_dir / "downloaded-files").iterdir())
    assert message in (downloaded / "stdout").read_text()
    assert (downloaded / "exitCode").read_text() == "0"
    assert directory_cid(downloaded) == cid
    return cid


def completed_nodes(cluster, job: dict) -> list[str]:
    with BacalhauClient(cluster.api_url) as client:
        return [e.node_id for e in client.executions(job["ID"]) if e.state == "Completed"]


def assert_the_provider_earned_what_the_job_creator_paid(before: dict, after: dict) -> None:
    earned = after["provider"] - before["provider"]
    assert earned > 0
    assert before["job_creator"] - after["job_creator"] == earned
    assert after["payments"] == before["payments"] == 0


def test_one_provider_offers_the_cluster_and_its_jobs_run_on_both_compute_nodes(network, tmp_path):
    """Each compute node has 100 milli-cores, what one ``sleeper`` job asks for: the offer is
    the sum (200); a second job arriving while the first runs (two slots) goes to the other
    node (Bacalhau ranks nodes by available capacity); both are paid."""
    use_test_modules(network, tmp_path)
    cluster = start_cluster(tmp_path / "bacalhau", node_cpu="100m", node_memory="512Mi")
    runs: list[subprocess.Popen] = []
    try:
        start_bacalhau_provider(network, cluster, "--slots", "2")
        before = network.token_balances()
        runs.append(start_run(network, tmp_path / "client0", "sleeper:v0.0.1"))
        busy = cluster.wait_busy(timeout=120)  # the first job runs, and the orchestrator knows it
        runs.append(start_run(network, tmp_path / "client1", "sleeper:v0.0.1"))
        outputs = [run.communicate(timeout=240)[0] for run in runs]
        for i, (run, output) in enumerate(zip(runs, outputs)):
            assert run.returncode == 0, output + network.logs()
            downloaded = next((tmp_path / f"client{i}" / "downloaded-files").iterdir())
            assert (downloaded / "stdout").read_text() == "slept\n"
        offered = provider_events(network, "offer_posted")[0]["spec"]
        assert (offered["cpu"], offered["ram"]) == (200, 1024), offered
        jobs = lilypad_jobs(cluster)
        assert len(jobs) == 2
        nodes = [node for job in jobs for node in completed_nodes(cluster, job)]
        assert sorted(nodes) == ["lilypad-c1", "lilypad-c2"], "one provider, its jobs on two compute nodes"
        assert busy in nodes
        submitted = provider_events(network, "bacalhau_job_submitted")
        assert sorted(e["bacalhau_job_id"] for e in submitted) == sorted(j["ID"] for j in jobs)
        assert_the_provider_earned_what_the_job_creator_paid(before, network.token_balances())
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait()
        cluster.stop()


def test_mediation_reruns_a_bacalhau_result_on_docker_and_accepts_it(network, cluster, tmp_path):
    """The mediator re-runs the job on its own Docker engine: equal CIDs, so accepted."""
    start_bacalhau_provider(network, cluster)
    network.add_mediator()
    before = network.token_balances()
    out = lilypad_run(network, tmp_path / "client", "stats:v0.0.1", "-i", "Numbers=1,2,3", "--mediate")
    assert out.returncode == 0, out.stdout + out.stderr + network.logs()
    after = network.token_balances()
    assert after["provider"] > before["provider"], "mediation accepted: provider paid"
    assert after["mediator"] > before["mediator"]
    assert after["payments"] == 0
    assert len(lilypad_jobs(cluster)) == 1


def test_a_tampered_bacalhau_result_is_rejected_by_mediation(network, cluster, tmp_path):
    start_bacalhau_provider(network, cluster, fault="wrong-result")
    network.add_mediator()
    before = network.token_balances()
    out = lilypad_run(network, tmp_path / "client", "stats:v0.0.1", "-i", "Numbers=1,2,3", "--mediate")
    after = network.token_balances()
    assert after["provider"] < before["provider"], "results collateral slashed" + out.stdout + network.logs()
    assert after["mediator"] > before["mediator"]
    assert after["payments"] == 0


def test_a_restarted_provider_follows_its_bacalhau_job_instead_of_resubmitting(network, cluster, tmp_path):
    """SIGKILL the provider as soon as it has submitted the deal's job to Bacalhau, start it
    again on the same data directory: it follows the job it kept in its state, the deal
    completes and is paid, and the cluster ran one job, once."""
    import time

    provider = start_bacalhau_provider(network, cluster)
    before = network.token_balances()
    client_dir = tmp_path / "client"
    exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
    run = subprocess.Popen([exe, "run", "cowsay:v0.0.1", "-i", "Message=resumed", "--network",
                            "ethereum:local:foundry", "--solver-url", network.solver_url, "--data-dir",
                            str(client_dir)], env=run_env(network, client_dir), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not provider_events(network, "bacalhau_job_submitted") and time.monotonic() < deadline:
            time.sleep(0.1)
        [submitted] = provider_events(network, "bacalhau_job_submitted")
        provider.kill()
        start_bacalhau_provider(network, cluster)
        output, _ = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, output + network.logs()
    assert "resumed" in next((client_dir / "downloaded-files").iterdir()).joinpath("stdout").read_text()
    events = provider_events(network, "bacalhau_job_submitted")
    assert [e["bacalhau_job_id"] for e in events] == [submitted["bacalhau_job_id"]] * 2, events
    jobs = lilypad_jobs(cluster)
    assert [j["ID"] for j in jobs] == [submitted["bacalhau_job_id"]]
    assert int(jobs[0]["Version"]) == 1
    with BacalhauClient(cluster.api_url) as client:
        assert len(client.executions(jobs[0]["ID"])) == 1
    after = network.token_balances()
    assert after["provider"] > before["provider"]
    assert after["payments"] == 0


def test_a_compute_node_killed_mid_job_is_retried_and_the_deal_completes(network, tmp_path):
    """The ``sleeper`` test module (10 s); the compute node running it is SIGKILLed mid-job: Bacalhau places it on
    the other node, the provider delivers that result and is paid; one Bacalhau job."""
    import time

    use_test_modules(network, tmp_path)
    cluster = start_cluster(tmp_path / "bacalhau", node_cpu="250m", node_memory="512Mi", disconnect_timeout="5s")
    try:
        start_bacalhau_provider(network, cluster)
        before = network.token_balances()
        client_dir = tmp_path / "client"
        run = start_run(network, client_dir, "sleeper:v0.0.1")
        try:
            victim = None
            deadline = time.monotonic() + 120
            with BacalhauClient(cluster.api_url) as client:
                while victim is None and time.monotonic() < deadline and run.poll() is None:
                    for job in lilypad_jobs(cluster):
                        running = [e for e in client.executions(job["ID"]) if e.state in ("BidAccepted", "Running")]
                        if running:
                            victim = running[0].node_id
                    time.sleep(0.2)
            assert victim is not None, network.logs()
            time.sleep(2.0)  # well inside the 10 s sleep
            next(n for n in cluster.nodes if n.name == victim).process.kill()
            output, _ = run.communicate(timeout=240)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        assert run.returncode == 0, output + network.logs()
        stdout = next((client_dir / "downloaded-files").iterdir()).joinpath("stdout").read_text()
        assert stdout == "slept\n"
        [job] = lilypad_jobs(cluster)
        with BacalhauClient(cluster.api_url) as client:
            executions = client.executions(job["ID"])
        [done] = [e for e in executions if e.state == "Completed"]
        assert done.node_id != victim
        assert {e.node_id for e in executions} == {"lilypad-c1", "lilypad-c2"}
        assert_the_provider_earned_what_the_job_creator_paid(before, network.token_balances())
    finally:
        cluster.stop()
