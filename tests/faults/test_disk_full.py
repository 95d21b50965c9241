"""Disk nearly full on the provider's results (issue #8, Faults).

The provider's runs directory (where every job's result directory is written) is a 32 KiB tmpfs,
room for a small result only. A job whose output is larger (cowsay saying 60 KB: ~70 KB of stdout;
the market takes built-in modules or git URLs, not local test modules) cannot produce a result: the provider logs the failed runs, gives the deal up after
``--max-run-attempts``, frees the space and keeps serving; the deal ends by its submit timeout
(the client refunded plus the provider's submit collateral). A small job on the same provider
then succeeds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from fault_support import lilypad_run_args, push_time, wait_for  # type: ignore[import-not-found]
from lilypad.results.cid import directory_cid

TMPFS_SIZE = 32 << 10
BIG_MESSAGE = "fill " * 12_000  # 60 KB, under the 64 KiB limit of one input


def used_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


@pytest.fixture
def tiny_runs_dir(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a 32 KiB tmpfs for the provider's runs directory needs root")
    if shutil.which("mount") is None:
        pytest.skip("no mount(8) on this machine")
    runs = tmp_path / "provider" / "runs"
    runs.mkdir(parents=True)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(runs)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (a container without CAP_SYS_ADMIN?): {out.stderr.strip()}")
    try:
        yield runs
    finally:
        subprocess.run(["umount", "-l", str(runs)], capture_output=True)


def test_full_results_disk_fails_the_job_cleanly_and_the_provider_keeps_serving(tmp_path, tiny_runs_dir,
                                                                                 start_network):
    with start_network() as net:
        provider = net.add_provider("provider", "--max-run-attempts", "2")
        before = net.token_balances()
        big_dir = tmp_path / "client-big"
        big = subprocess.Popen(
            lilypad_run_args(net, big_dir, "cowsay:v0.0.1", "-i", f"Message={BIG_MESSAGE}", "--timeout", "240"),
            env=net.client_env(big_dir), stdout=open(tmp_path / "big.out", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
        try:
            wait_for(lambda: "run_given_up" in provider.log_path.read_text(errors="replace") or big.poll() is not None,
                     timeout=150, what="the provider to give the full-disk job up", net=net)
            assert big.poll() is None, "the client gave up early:\n" + (tmp_path / "big.out").read_text()
            log = provider.log_path.read_text(errors="replace")
            failed_runs = [line for line in log.splitlines() if "the run failed" in line or "run_given_up" in line]
            assert any(re.search(r"No space left|ENOSPC|Errno 28|too large|OutputTooLarge", line) for line in failed_runs), \
                "the provider says why the run failed:\n" + "\n".join(failed_runs[-5:])
            assert provider.alive, net.logs()
            assert used_bytes(tiny_runs_dir) < TMPFS_SIZE // 2, "the failed runs' partial results were deleted"
            # The deal was given up, not answered: past its submit window the solver's keeper ends it.
            from web3 import Web3

            push_time(Web3(Web3.HTTPProvider(f"http://127.0.0.1:{net.rpc_port}")), 3600)
            big.wait(timeout=120)
            output = (tmp_path / "big.out").read_text()
        finally:
            if big.poll() is None:
                big.kill()
        assert big.returncode != 0, output
        assert "Traceback" not in output, output
        after_big = net.token_balances()
        assert after_big["payments"] == 0, "the deal settled by its submit timeout\n" + output + net.logs()
        assert after_big["provider"] < before["provider"], "the provider lost its submit collateral"
        assert sum(after_big.values()) == sum(before.values())

        small_dir = tmp_path / "client-small"
        start = time.monotonic()
        out = subprocess.run(lilypad_run_args(net, small_dir, "cowsay:v0.0.1", "-i", "Message=room for this one"),
                             env=net.client_env(small_dir), capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stdout + out.stderr + net.logs()
        (downloaded,) = (small_dir / "downloaded-files").iterdir()
        assert "room for this one" in (downloaded / "stdout").read_text()
        assert directory_cid(downloaded) in out.stdout
        assert provider.alive and time.monotonic() - start < 180
