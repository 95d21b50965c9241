"""A local Bacalhau cluster: one orchestrator and N compute nodes, each its own process.

:class:`LocalCluster` runs ``bacalhau serve`` (the pinned v1.9.3 from
``make bacalhau``, :func:`lilypad.toolchain.find_go_tool`) as separate
processes on this machine: an orchestrator (API and NATS on 127.0.0.1) and
compute nodes joining it over NATS on loopback, each with its own data
directory, API port and local-publisher port, plus Debian's
``docker-registry`` on 127.0.0.1 (compute nodes only run images that have a
registry digest; :mod:`lilypad.executor.bacalhau.runner` pushes there). It is
what ``lilypad devnet up --executor bacalhau`` and the tests start.

Every process gets ``AWS_EC2_METADATA_DISABLED=true`` (else the orchestrator
probes the cloud metadata service at 169.254.169.254), analytics and update
checks off, the web UI off. **Limitation**: Bacalhau's local publisher listens
on 0.0.0.0 whatever its configured address (``pkg/publisher/local/server.go``
hard-codes it); only the advertised result URLs say 127.0.0.1. Firewall those
ports or run the cluster in a network namespace where that matters.

Compute nodes allow the local input source under ``allowed_local_paths``
(``Compute.AllowListedLocalPaths``, doublestar globs) so that a provider on
the same machine can give a job inputs larger than fit inline.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lilypad.devnet.processes import ManagedProcess, free_port, wait_for_port
from lilypad.exceptions import BacalhauError, DevnetError

if TYPE_CHECKING:
    from lilypad.executor.bacalhau.api import NodeCapacity

__all__ = ["BACALHAU_ENV", "ComputeNode", "LocalCluster", "find_registry_binary", "registry_config"]

log = logging.getLogger(__name__)

BACALHAU_ENV = {"AWS_EC2_METADATA_DISABLED": "true", "BACALHAU_DISABLE_UPDATE_CHECK": "true"}
"""Environment every ``bacalhau`` process gets (no IMDS probe, no update check)."""


def find_registry_binary() -> str:
    """Debian's ``docker-registry`` (``make setup`` installs it); BacalhauError if missing."""
    path = shutil.which("docker-registry")
    if path is None:
        raise BacalhauError("docker-registry is not installed (`make setup` installs it from apt: "
                            "apt-get install --no-install-recommends docker-registry)")
    return path


def registry_config(root: Path, port: int) -> dict:
    """A ``docker-registry serve`` configuration: storage under ``root``, HTTP on 127.0.0.1:``port``."""
    return {"version": 0.1, "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{port}"}}


def _base_config(data_dir: Path, api_port: int) -> dict:
    return {"DataDir": str(data_dir), "NameProvider": "puuid", "DisableAnalytics": True,
            "UpdateConfig": {"Interval": "0s"}, "WebUI": {"Enabled": False},
            "API": {"Host": "127.0.0.1", "Port": api_port},
            "Logging": {"Level": "info", "Mode": "default"}}


@dataclass
class ComputeNode:
    """One compute node process of a :class:`LocalCluster`."""

    name: str
    api_port: int
    publisher_port: int
    process: ManagedProcess

    @property
    def alive(self) -> bool:
        return self.process.alive


@dataclass
class LocalCluster:
    """An orchestrator and ``compute_nodes`` compute nodes under ``root`` (see the module docstring).

    ``start()`` returns once the orchestrator lists every compute node as
    CONNECTED; ``stop()`` stops the compute nodes first, then the orchestrator
    and the registry. Usable as a context manager. ``node_cpu``/``node_memory``
    are each node's ``Compute.AllocatedCapacity``.
    """

    root: Path
    compute_nodes: int = 2
    node_cpu: str = "1"
    node_memory: str = "1Gi"
    node_disk: str = "5Gi"
    allowed_local_paths: tuple[str, ...] = ()
    disconnect_timeout: str = "10s"
    binary: Path | None = None
    api_port: int = 0
    nats_port: int = 0
    registry_port: int = 0
    orchestrator: ManagedProcess | None = None
    registry: ManagedProcess | None = None
    nodes: list[ComputeNode] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def registry_host(self) -> str:
        """``127.0.0.1:<port>``: the prefix images are pushed under."""
        return f"127.0.0.1:{self.registry_port}"

    def _write(self, name: str, config: dict) -> Path:
        path = self.root / f"{name}.yaml"
        path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        return path

    def _serve(self, name: str, config: dict) -> ManagedProcess:
        from lilypad.toolchain import find_go_tool

        binary = str(self.binary or find_go_tool("bacalhau"))
        path = self._write(name, config)
        return ManagedProcess(name, [binary, "serve", "-c", str(path), "--name", name], self.root / f"{name}.log",
                              env=dict(BACALHAU_ENV), cwd=self.root).start()

    def start(self, timeout: float = 90.0) -> LocalCluster:
        self.root = Path(self.root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.api_port = self.api_port or free_port()
        self.nats_port = self.nats_port or free_port()
        self.registry_port = self.registry_port or free_port()
        try:
            self._start_registry()
            orchestrator = _base_config(self.root / "orchestrator", self.api_port)
            orchestrator["Orchestrator"] = {
                "Enabled": True, "Host": "127.0.0.1", "Port": self.nats_port,
                "Advertise": f"127.0.0.1:{self.nats_port}",
                "NodeManager": {"DisconnectTimeout": self.disconnect_timeout}}
            self.orchestrator = self._serve("orchestrator", orchestrator)
            wait_for_port(self.api_port, timeout=timeout, proc=self.orchestrator.proc)
            for index in range(1, self.compute_nodes + 1):
                self.add_node(f"lilypad-c{index}")
            self.wait_connected(self.compute_nodes, timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_registry(self) -> None:
        storage = self.root / "registry"
        storage.mkdir(exist_ok=True)
        path = self._write("registry", registry_config(storage, self.registry_port))
        self.registry = ManagedProcess("registry", [find_registry_binary(), "serve", str(path)],
                                       self.root / "registry.log", cwd=self.root).start()
        wait_for_port(self.registry_port, timeout=30, proc=self.registry.proc)

    def add_node(self, name: str) -> ComputeNode:
        """Start one more compute node (it joins the orchestrator)."""
        api_port, publisher_port = free_port(), free_port()
        config = _base_config(self.root / name, api_port)
        config["Compute"] = {
            "Enabled": True, "Orchestrators": [f"nats://127.0.0.1:{self.nats_port}"],
            "Network": {"AdvertisedAddress": "127.0.0.1"},
            "AllocatedCapacity": {"CPU": self.node_cpu, "Memory": self.node_memory, "Disk": self.node_disk},
            "Heartbeat": {"Interval": "2s", "InfoUpdateInterval": "5s", "ResourceUpdateInterval": "1s"},
            "AllowListedLocalPaths": list(self.allowed_local_paths),
        }
        config["Labels"] = {"lilypad-node": name}
        config["Publishers"] = {"Types": {"Local": {"Address": "127.0.0.1", "Port": publisher_port}}}
        node = ComputeNode(name, api_port, publisher_port, self._serve(name, config))
        self.nodes.append(node)
        return node

    def wait_connected(self, count: int, timeout: float = 90.0) -> list[NodeCapacity]:
        """Wait until the orchestrator lists ``count`` CONNECTED compute nodes; their node infos."""
        from lilypad.executor.bacalhau.api import BacalhauClient

        deadline = time.monotonic() + timeout
        with BacalhauClient(self.api_url) as client:
            while True:
                dead = [p for p in self._processes() if not p.alive]
                if dead:
                    raise DevnetError(f"bacalhau process {dead[0].name} exited:\n{dead[0].log_tail()}")
                try:
                    connected = client.connected_compute_nodes()
                except BacalhauError:
                    connected = []
                if len(connected) >= count:
                    return connected
                if time.monotonic() > deadline:
                    raise DevnetError(f"only {len(connected)} of {count} Bacalhau compute nodes connected within "
                                      f"{timeout:.0f}s (logs under {self.root})")
                time.sleep(0.5)

    def wait_busy(self, timeout: float = 60.0) -> str:
        """Wait until the orchestrator sees a compute node with CPU taken (a job running there,
        as its last resource update says); that node's id. The scheduler ranks nodes by
        available capacity, so the next job goes elsewhere."""
        from lilypad.executor.bacalhau.api import BacalhauClient

        deadline = time.monotonic() + timeout
        with BacalhauClient(self.api_url) as client:
            while True:
                busy = [n for n in client.connected_compute_nodes() if n.available_cpu < n.cpu]
                if busy:
                    return busy[0].node_id
                if time.monotonic() > deadline:
                    raise DevnetError(f"no Bacalhau compute node reported a running job within {timeout:.0f}s")
                time.sleep(0.2)

    def _processes(self) -> list[ManagedProcess]:
        found = [self.registry, self.orchestrator] + [n.process for n in self.nodes]
        return [p for p in found if p is not None]

    def stop(self) -> None:
        """Stop the compute nodes, then the orchestrator and the registry (safe to call twice)."""
        for node in self.nodes:
            node.process.stop(timeout=15)
        for process in (self.orchestrator, self.registry):
            if process is not None:
                process.stop(timeout=15)
        self._remove_containers()

    def _remove_containers(self) -> None:
        """Remove job containers a killed compute node left (Bacalhau labels them with its executor)."""
        if not self.nodes:
            return
        try:
            import docker

            engine = docker.from_env()
            for node in self.nodes:
                label = f"bacalhau-executor=bacalhau-{node.name}"
                for container in engine.api.containers(all=True, filters={"label": label}):
                    engine.api.remove_container(container["Id"], force=True)
        except Exception as exc:  # best effort: a stopped node removes its own
            log.warning("could not remove the containers of stopped Bacalhau nodes: %s", exc)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

