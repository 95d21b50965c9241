"""The market end to end: every component a real process, a real chain, real containers.

`lilypad run` (the CLI users type) against `lilypad solver`, `lilypad resource-provider` and
`lilypad mediator` processes on an anvil with the contracts deployed by `ape run deploy`.
"""

from __future__ import annotations

import re
import subprocess
import sys
import shutil
from pathlib import Path

import pytest

from e2e_support import run_env  # type: ignore[import-not-found]

TOKEN = 10**18


def lilypad_run(net, data_dir: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
    return subprocess.run(
        [exe, "run", *args, "--network", "ethereum:local:foundry", "--solver-url", net.solver_url,
         "--data-dir", str(data_dir)],
        env=run_env(net, data_dir), capture_output=True, text=True, timeout=timeout,
    )


def balances(net) -> dict[str, int]:
    return net.token_balances()


def start_provider(net, *extra: str, fault: str | None = None):
    return net.add_provider("provider", *extra, fault=fault)


def start_mediator(net):
    return net.add_mediator()


def data_cid(output: str) -> str:
    match = re.search(r"\b(bafy[a-z2-7]{55})\b", output)
    assert match, output
    return match.group(1)


def test_happy_path_cowsay(network, tmp_path):
    start_provider(network)
    before = balances(network)
    out = lilypad_run(network, tmp_path / "client", "cowsay:v0.0.1", "-i", "Message=moo from e2e")
    assert out.returncode == 0, out.stdout + out.stderr + network.logs()
    cid = data_cid(out.stdout)
    downloaded = next((tmp_path / "client" / "downloaded-files").iterdir())
    assert "moo from e2e" in (downloaded / "stdout").read_text()
    assert (downloaded / "exitCode").read_text() == "0"
    from lilypad.results.cid import directory_cid

    assert directory_cid(downloaded) == cid
    after = balances(network)
    cost = after["provider"] - before["provider"]
    assert cost > 0, "the provider is paid"
    assert before["job_creator"] - after["job_creator"] == cost, "the client pays exactly the job cost"
    assert after["payments"] == before["payments"] == 0, "every escrow settled"


def test_checked_result_from_honest_provider_is_accepted_by_mediation(network, tmp_path):
    start_provider(network)
    start_mediator(network)
    before = balances(network)
    out = lilypad_run(network, tmp_path / "client", "stats:v0.0.1", "-i", "Numbers=1,2,3", "--mediate")
    assert out.returncode == 0, out.stdout + out.stderr + network.logs()
    after = balances(network)
    assert after["provider"] > before["provider"], "mediation accepted: provider paid"
    assert after["mediator"] > before["mediator"], "the mediator earned its fee"
    assert after["payments"] == 0


def test_wrong_result_is_rejected_by_mediation_and_provider_slashed(network, tmp_path):
    start_provider(network, fault="wrong-result")
    start_mediator(network)
    before = balances(network)
    out = lilypad_run(network, tmp_path / "client", "stats:v0.0.1", "-i", "Numbers=1,2,3", "--mediate")
    after = balances(network)
    assert after["provider"] < before["provider"], "results collateral slashed" + out.stdout + network.logs()
    assert after["job_creator"] > before["job_creator"] - TOKEN, "client refunded (less the mediation fee)"
    assert after["mediator"] > before["mediator"]
    assert after["payments"] == 0


def test_no_match_expires_cleanly(network, tmp_path):
    before = balances(network)  # no provider at all
    out = lilypad_run(network, tmp_path / "client", "cowsay:v0.0.1", "-i", "Message=anyone?", timeout=120)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert balances(network) == before, "nothing was escrowed"


def test_provider_dying_mid_job_times_out_refunds_client_and_slashes_provider(network, tmp_path):
    """The provider crashes with the deal agreed (an injected fault: it exits abruptly). Once
    the submit window has passed on the chain's clock, the solver's timeout keeper ends the
    deal: the client gets its escrow back plus the provider's submit collateral."""
    import time

    from web3 import Web3

    provider = start_provider(network, fault="die-mid-job")
    before = balances(network)
    data_dir = tmp_path / "client"
    exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
    client = subprocess.Popen(
        [exe, "run", "cowsay:v0.0.1", "-i", "Message=anyone there?", "--network", "ethereum:local:foundry",
         "--solver-url", network.solver_url, "--data-dir", str(data_dir), "--timeout", "120"],
        env=run_env(network, data_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while provider.alive and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not provider.alive, "the provider should have died with the deal agreed\n" + network.logs()
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{network.rpc_port}"))
        w3.provider.make_request("evm_increaseTime", [3600])  # past the submit window
        w3.provider.make_request("evm_mine", [])
        output, _ = client.communicate(timeout=120)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode != 0, output
    after = balances(network)
    assert after["payments"] == 0, "escrow settled by the timeout\n" + output + network.logs()
    assert after["provider"] < before["provider"], "submit collateral slashed"
    assert after["job_creator"] > before["job_creator"], "client refunded and compensated"
    assert after["job_creator"] + after["provider"] == before["job_creator"] + before["provider"]
