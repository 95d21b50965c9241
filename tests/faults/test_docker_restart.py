"""The Docker engine is restarted mid-job (issue #8, Faults). Soak only, and run last by
``make soak``: restarting dockerd stops every container on the machine, everyone's.

A long job (tests/faults/modules/sleeper, 20 s, offered as the built-in ``fault-sleeper:v1`` from a
built-in modules directory set with ``LILYPAD_BUILTIN_MODULES_DIR``: the market takes no local paths) is running in its container when dockerd is
stopped (SIGTERM, as an init system would) and started again the way ``make setup`` starts it.
The run fails; the provider retries it (``--max-run-attempts``) once the engine is back, or, if
it runs out of attempts, gives the deal up to its on-chain submit timeout (pushed with
``evm_increaseTime``). Either way the deal ends per protocol with the escrow settled, no
container of this network is left, and the provider, still the same process, runs the next job."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fault_support import containers_under, docker_info_ok, lilypad_run_args, push_time, wait_for, wait_until  # type: ignore[import-not-found]

pytestmark = pytest.mark.soak

SLEEPER = Path(__file__).resolve().parent / "modules" / "sleeper"
MODULES = Path(__file__).resolve().parents[2] / "modules"
DOCKERD_LOG = os.environ.get("DOCKERD_LOG", "/var/log/lilypad-dockerd.log")


def dockerd_pid() -> int | None:
    out = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True)
    pids = out.stdout.split()
    return int(pids[0]) if out.returncode == 0 and len(pids) == 1 else None


def restart_dockerd(pid: int) -> None:
    """SIGTERM dockerd, wait for it to exit, start it again with the same command line, as
    ``make docker-engine`` does (setsid nohup ... >> the log), and wait for ``docker info``."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    os.kill(pid, signal.SIGTERM)
    assert wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=90), "dockerd did not stop"
    with open(DOCKERD_LOG, "ab") as log:
        subprocess.Popen([c.decode() for c in cmdline], stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    assert wait_until(docker_info_ok, timeout=120, every=1.0), f"dockerd did not come back (log {DOCKERD_LOG})"


def running_containers(root: Path) -> list[str]:
    return containers_under(root, running=True)


def test_docker_engine_restart_mid_job(tmp_path, start_network):
    if os.geteuid() != 0:
        pytest.skip("restarting the Docker engine needs root")
    if shutil.which("dockerd") is None or not docker_info_ok():
        pytest.skip("no local Docker engine to restart (make setup starts one)")
    pid = dockerd_pid()
    if pid is None:
        pytest.skip("dockerd is not one local process here (a remote or socket-activated engine?)")

    builtin = tmp_path / "builtin-modules"
    shutil.copytree(MODULES / "cowsay", builtin / "cowsay")
    shutil.copytree(SLEEPER, builtin / "fault-sleeper")
    net = start_network()
    try:
        net.env["LILYPAD_BUILTIN_MODULES_DIR"] = str(builtin)  # the provider's and the clients'
        provider = net.add_provider("provider", "--max-run-attempts", "3")
        before = net.token_balances()
        long_dir = tmp_path / "client-long"
        client = subprocess.Popen(lilypad_run_args(net, long_dir, "fault-sleeper:v1", "-i", "Seconds=20", "--timeout", "400"),
                                  env=net.client_env(long_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
        try:
            wait_for(lambda: running_containers(tmp_path), timeout=180, what="the long job's container", net=net)
            time.sleep(3)  # well into the run
            restart_dockerd(pid)
            provider_pid = provider.proc.pid
            # Retried on the restarted engine, or given up: then the submit timeout ends the deal.
            end = time.monotonic() + 150
            while client.poll() is None and time.monotonic() < end:
                if "run_given_up" in provider.log_path.read_text(errors="replace"):
                    from web3 import Web3

                    push_time(Web3(Web3.HTTPProvider(f"http://127.0.0.1:{net.rpc_port}")), 3600)
                    break
                time.sleep(1)
            output, _ = client.communicate(timeout=150)
        finally:
            if client.poll() is None:
                client.kill()
        log = provider.log_path.read_text(errors="replace")
        if client.returncode == 0:  # retried: the client got a verified result of the second run
            (downloaded,) = (long_dir / "downloaded-files").iterdir()
            # Not the run the engine killed (exit 137, no report) delivered as if it were the result.
            assert (downloaded / "exitCode").read_text() == "0", "a run killed by the engine restart was delivered"
            assert (downloaded / "outputs" / "report").read_text().startswith("slept 20s")
            outcome = "retried and completed"
        else:
            assert "run_given_up" in log, output
            outcome = "given up, submit timeout"
        wait_for(lambda: net.token_balances()["payments"] == 0, timeout=60, what="the escrow to settle", net=net)
        after = net.token_balances()
        from lilypad.client import SolverClient

        with SolverClient(net.solver_url) as solver:
            (deal,) = solver.deals()
        assert deal.state in ("ResultsAccepted", "TimeoutSubmitResults"), deal.state
        assert sum(after.values()) == sum(before.values())
        assert wait_until(lambda: containers_under(tmp_path) == [], timeout=60), \
            f"containers left behind: {containers_under(tmp_path)}\n{net.logs()}"
        assert provider.alive and provider.proc.pid == provider_pid, "the provider rode it out, not restarted"

        next_dir = tmp_path / "client-next"
        out = subprocess.run(lilypad_run_args(net, next_dir, "cowsay:v0.0.1", "-i", "Message=after the restart"),
                             env=net.client_env(next_dir), capture_output=True, text=True, timeout=240)
        assert out.returncode == 0, out.stdout + out.stderr + net.logs()
        print(f"\ndocker restart mid-job: {outcome}; deal state {deal.state}; next job ok")
    finally:
        net.stop()
        if not docker_info_ok() and dockerd_pid() is None:  # never leave the machine without its engine
            subprocess.run(["bash", "-c", f"setsid nohup dockerd >>{DOCKERD_LOG} 2>&1 </dev/null &"])
