"""Run a private kubo node: ``ipfs init`` a repository, then ``ipfs daemon`` on loopback.

:class:`KuboNode` owns one repository directory (``IPFS_PATH``) and one
``ipfs daemon`` process (the binary :func:`lilypad.toolchain.find_go_tool`
finds, built by ``make setup``). :meth:`KuboNode.init` runs ``ipfs init
--profile test`` once, which already means: no bootstrap peers, MDNS off,
AutoConf off; it then binds the RPC API, the gateway and the swarm (TCP only)
to ``127.0.0.1`` on the given ports and turns routing off (``Routing.Type
none``: no DHT; blocks move by bitswap between nodes connected with
:meth:`KuboNode.connect` or listed in :meth:`KuboNode.init`'s ``peers``,
kubo's ``Peering.Peers``, which it keeps connected). ``IPFS_TELEMETRY=off``
and ``IPFS_CHECK_FOR_UPDATES=false`` are set for every command.
:meth:`KuboNode.start` starts the daemon and waits until its API answers;
:meth:`KuboNode.stop` ends it. The node's identity key stays in its
repository and is never read or logged here.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from lilypad.devnet.processes import ManagedProcess, free_port
from lilypad.exceptions import IpfsUnavailableError
from lilypad.ipfs.client import KuboClient

__all__ = ["KuboNode", "kubo_env"]


def kubo_env(repo: Path) -> dict[str, str]:
    """The environment of every ``ipfs`` command on ``repo``."""
    return {"IPFS_PATH": str(repo), "IPFS_TELEMETRY": "off", "IPFS_CHECK_FOR_UPDATES": "false"}


@dataclass
class KuboNode:
    """A kubo node with its repository at ``repo`` (see the module docstring).
    Ports ``0`` are chosen free by :meth:`init` and kept in the repository's config."""

    repo: Path
    api_port: int = 0
    gateway_port: int = 0
    swarm_port: int = 0
    binary: Path | None = None
    log_path: Path | None = None
    process: ManagedProcess | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.repo = Path(self.repo)
        if self.binary is None:
            from lilypad.toolchain import find_go_tool

            self.binary = find_go_tool("ipfs")

    # ------------------------------------------------------------------ setup
    def _ipfs(self, *args: str) -> str:
        done = subprocess.run([str(self.binary), *args], check=False, capture_output=True, text=True, timeout=60,
                              env={**os.environ, **kubo_env(self.repo)})
        if done.returncode != 0:
            raise IpfsUnavailableError(str(self.repo), f"ipfs {args[0]} failed: {done.stderr.strip()[-500:]}")
        return done.stdout

    @property
    def initialised(self) -> bool:
        return (self.repo / "config").is_file()

    def init(self, peers: list[str] | None = None) -> KuboNode:
        """Create the repository (once) and write its addresses and ``peers``
        (multiaddrs ending ``/p2p/<peer id>``) to its config; returns ``self``."""
        if not self.initialised:
            self.repo.mkdir(parents=True, exist_ok=True)
            self._ipfs("init", "--profile", "test", "--empty-repo")
        config_path = self.repo / "config"
        config = json.loads(config_path.read_text())
        addresses = config["Addresses"]
        self.api_port = self.api_port or _port_of(addresses.get("API")) or free_port()
        self.gateway_port = self.gateway_port or _port_of(addresses.get("Gateway")) or free_port()
        self.swarm_port = self.swarm_port or _port_of((addresses.get("Swarm") or [""])[0]) or free_port()
        addresses["API"] = f"/ip4/127.0.0.1/tcp/{self.api_port}"
        addresses["Gateway"] = f"/ip4/127.0.0.1/tcp/{self.gateway_port}"
        addresses["Swarm"] = [f"/ip4/127.0.0.1/tcp/{self.swarm_port}"]
        config["Bootstrap"] = []
        config.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
        config.setdefault("Routing", {})["Type"] = "none"
        config.setdefault("AutoConf", {})["Enabled"] = False
        config.setdefault("Peering", {})["Peers"] = [_peer_entry(p) for p in peers or []]
        config_path.write_text(json.dumps(config, indent=2))
        return self

    def peer_id(self) -> str:
        """The node's peer id (from its config: no daemon needed)."""
        return str(json.loads((self.repo / "config").read_text())["Identity"]["PeerID"])

    @property
    def multiaddr(self) -> str:
        """Where other nodes connect to this one: ``/ip4/127.0.0.1/tcp/<swarm port>/p2p/<peer id>``."""
        return f"/ip4/127.0.0.1/tcp/{self.swarm_port}/p2p/{self.peer_id()}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def client(self, timeout: float = 60.0) -> KuboClient:
        return KuboClient(self.api_url, timeout=timeout, binary=self.binary)

    # ------------------------------------------------------------------ run
    def daemon_args(self) -> list[str]:
        """The daemon's command line (its environment: :func:`kubo_env`). It names the
        repository (``--repo-dir``, as ``IPFS_PATH`` does) so ``lilypad devnet down`` can tell
        the process is one its devnet started."""
        return [str(self.binary), "--repo-dir", str(self.repo), "daemon", "--migrate=false"]

    def start(self, timeout: float = 60.0) -> KuboNode:
        """Start ``ipfs daemon`` (initialising first if needed) and wait for its API."""
        if not self.initialised or not self.api_port:
            self.init()
        log_path = self.log_path or self.repo.parent / f"{self.repo.name}.log"
        self.process = ManagedProcess("kubo", self.daemon_args(), log_path, env=kubo_env(self.repo)).start()
        self.wait_ready(timeout)
        with self.client() as client:
            client.put_empty_block()  # peers fetching from us get it too (see put_empty_block)
        self.connect_peers()
        return self

    def peers(self) -> list[str]:
        """The multiaddrs of the peers in the config's ``Peering.Peers``."""
        config = json.loads((self.repo / "config").read_text())
        return [f"{addr}/p2p/{peer['ID']}" for peer in (config.get("Peering") or {}).get("Peers") or []
                for addr in peer.get("Addrs") or []]

    def connect_peers(self) -> list[str]:
        """Connect now to each configured peer that is up (kubo's peering would
        only retry after a back-off); the multiaddrs connected."""
        from lilypad.exceptions import IpfsError

        done = []
        with self.client(timeout=10.0) as client:
            for peer in self.peers():
                try:
                    client.connect(peer)
                    done.append(peer)
                except IpfsError:
                    pass  # not up yet: kubo's peering keeps trying
        return done

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the API answers ``/api/v0/id`` with this repository's peer id (another
        node answering on the port does not count; a daemon that exits is an error at once)."""
        deadline = time.monotonic() + timeout
        reason = "not started"
        expected = self.peer_id()
        with self.client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.process is not None and not self.process.alive:
                    raise IpfsUnavailableError(self.api_url, "ipfs daemon exited: " + self.process.log_tail(10))
                try:
                    answered = client.identity().get("ID")
                    if answered == expected:
                        return
                    reason = f"another node ({answered}) answers on the port"
                except IpfsUnavailableError as exc:
                    reason = exc.reason
                time.sleep(0.1)
        raise IpfsUnavailableError(self.api_url, f"the API did not answer within {timeout:.0f}s ({reason})")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def connect(self, other: KuboNode) -> None:
        """Connect this running node to the running node ``other``."""
        with self.client() as client:
            client.connect(other.multiaddr)

    def __enter__(self) -> KuboNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _port_of(multiaddr: str | None) -> int:
    """The TCP port of ``/ip4/127.0.0.1/tcp/PORT`` (0 when none)."""
    parts = (multiaddr or "").split("/")
    if "tcp" in parts:
        i = parts.index("tcp")
        if i + 1 < len(parts) and parts[i + 1].isdigit():
            return int(parts[i + 1])
    return 0


def _peer_entry(multiaddr: str) -> dict[str, object]:
    """kubo's ``Peering.Peers`` entry for ``.../p2p/<peer id>``."""
    head, sep, peer_id = multiaddr.rpartition("/p2p/")
    if not sep or not peer_id:
        raise IpfsUnavailableError(multiaddr, "a peer's multiaddr must end in /p2p/<peer id>")
    return {"ID": peer_id, "Addrs": [head] if head else []}
