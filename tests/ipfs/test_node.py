"""``lilypad.ipfs.node.KuboNode``: a private kubo repository and daemon, on loopback only."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from lilypad.exceptions import IpfsUnavailableError
from lilypad.ipfs.client import EMPTY_RAW_BLOCK
from lilypad.ipfs.node import KuboNode


def listening_ports(pid: int) -> set[tuple[str, int]]:
    """The (address, port) TCP sockets process ``pid`` listens on (from /proc)."""
    import os

    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                host, port = cols[1].split(":")
                addr = socket.inet_ntoa(bytes.fromhex(host)[::-1]) if table == "tcp" else host
                found.add((addr, int(port, 16)))
    return found


def test_config_is_private_and_on_loopback(tmp_path: Path) -> None:
    peer = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWLU5hg5det3gWTqst5Ectsw3rziQFUxYnwALFDaKZB56X"
    node = KuboNode(tmp_path / "repo").init(peers=[peer])
    config = json.loads((tmp_path / "repo" / "config").read_text())
    assert config["Addresses"]["API"] == f"/ip4/127.0.0.1/tcp/{node.api_port}"
    assert config["Addresses"]["Gateway"] == f"/ip4/127.0.0.1/tcp/{node.gateway_port}"
    assert config["Addresses"]["Swarm"] == [f"/ip4/127.0.0.1/tcp/{node.swarm_port}"]
    assert config["Bootstrap"] == [] and config["Discovery"]["MDNS"]["Enabled"] is False
    assert config["Routing"]["Type"] == "none" and config["AutoConf"]["Enabled"] is False
    assert node.peers() == [peer]
    assert node.multiaddr == f"/ip4/127.0.0.1/tcp/{node.swarm_port}/p2p/{node.peer_id()}"
    with pytest.raises(IpfsUnavailableError, match="/p2p/"):
        node.init(peers=["/ip4/127.0.0.1/tcp/4001"])


def test_daemon_listens_on_loopback_only_and_keeps_identity_and_ports(tmp_path: Path) -> None:
    node = KuboNode(tmp_path / "repo")
    with node:
        pid = node.process.proc.pid  # type: ignore[union-attr]
        listening = listening_ports(pid)
        assert {("127.0.0.1", node.api_port), ("127.0.0.1", node.gateway_port),
                ("127.0.0.1", node.swarm_port)} <= listening
        assert all(addr == "127.0.0.1" for addr, _ in listening), listening
        with node.client() as client:
            assert client.identity()["ID"] == node.peer_id()
            assert client.cat(EMPTY_RAW_BLOCK) == b"", "start() stored the empty block"
        first = (node.peer_id(), node.api_port, node.gateway_port, node.swarm_port)
    assert not node.alive
    again = KuboNode(tmp_path / "repo")
    with again:
        assert (again.peer_id(), again.api_port, again.gateway_port, again.swarm_port) == first
    log = (tmp_path / "repo.log").read_text()
    assert "PrivKey" not in log and "Daemon is ready" in log


def test_a_daemon_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    first = KuboNode(tmp_path / "one")
    with first:
        clash = KuboNode(tmp_path / "two", api_port=first.api_port)  # the port is taken
        with pytest.raises(IpfsUnavailableError, match="ipfs daemon exited"):
            clash.start(timeout=30)
        clash.stop()
