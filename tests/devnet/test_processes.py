"""The local-network harness starts real processes and always cleans them up."""

from __future__ import annotations

import socket

import pytest

from lilypad.devnet.processes import deploy_contracts, free_port, start_anvil, dev_private_key
from lilypad.exceptions import DevnetError
from lilypad.protocol.deployments import CONTRACT_NAMES


def test_anvil_and_deploy_then_stop(tmp_path):
    port = free_port()
    anvil = start_anvil(port, tmp_path / "anvil.log")
    try:
        record = deploy_contracts(port, tmp_path / "deployments", tmp_path / "deploy.log")
        assert record["chain_id"] == 31337 and set(record["contracts"]) == set(CONTRACT_NAMES)  # 7, the registry too
    finally:
        anvil.stop()
    assert not anvil.alive
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5)


def test_killed_process_is_reported_dead(tmp_path):
    anvil = start_anvil(free_port(), tmp_path / "anvil.log")
    anvil.kill()
    assert not anvil.alive


def test_a_process_that_dies_before_listening_is_a_clear_error(tmp_path):
    from lilypad.devnet.processes import ManagedProcess, wait_for_port

    proc = ManagedProcess("false", ["false"], tmp_path / "false.log").start()
    with pytest.raises(DevnetError, match="exited with 1 before listening"):
        wait_for_port(free_port(), proc=proc.proc, timeout=10)


def test_dev_keys_are_anvils():
    from eth_account import Account

    assert Account.from_key(dev_private_key(0)).address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
