"""The devnet supervisor: starts a whole local network in one data directory and keeps it up.

    python -m lilypad.devnet.supervisor DATA_DIR [--providers N] [--slots K] [--executor docker|bacalhau]

It holds ``DATA_DIR/supervisor.lock`` for its lifetime (so two never share a
directory), starts anvil with ``--state DATA_DIR/anvil-state.json`` (the chain
survives a stop), deploys the contracts on a fresh chain (or checks that the
recorded ones still have code on a resumed one), then a kubo node per provider,
one for the mediator and one for the job creator (``kubo-client``), all on
loopback and peered with each other (``DATA_DIR/kubo/<name>``), then the
solver, the resource providers (``--ipfs-api`` their node), a mediator (its
node) and the bridge, each with its own log and health port.
A component that exits is restarted with backoff (:class:`RestartPolicy`) and
counted. With ``--executor bacalhau`` it first starts a Bacalhau orchestrator, two
compute nodes and their image registry (:class:`~lilypad.executor.bacalhau.LocalCluster`,
separate processes on loopback, under ``DATA_DIR/bacalhau``; not restarted if
they exit) and the providers run their jobs there. ``DATA_DIR/devnet.json`` is rewritten on every change. SIGTERM or
SIGINT stops every child it started (anvil last, dumping its state) and exits 0.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lilypad.devnet.network import NETWORK, address_of, lilypad_exe, network_env
from lilypad.devnet.processes import (
    ManagedProcess,
    anvil_args,
    deploy_contracts,
    dev_private_key,
    free_port,
    wait_for_port,
)
from lilypad.devnet.state import (
    BRIDGE_KEY,
    JOB_CREATOR_KEY,
    MAX_PROVIDERS,
    MEDIATOR_KEY,
    PROVIDER_KEYS,
    SOLVER_KEY,
    Component,
    DevnetState,
    RestartPolicy,
)
from lilypad.exceptions import DevnetError, LilypadError
from lilypad.ipfs.node import kubo_env

__all__ = ["EXIT_BUSY", "EXIT_FAILED", "Supervisor", "main"]

log = logging.getLogger("lilypad.devnet.supervisor")
EXIT_FAILED, EXIT_BUSY = 3, 2
STATE_FILE = "anvil-state.json"


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no obstacle
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Supervisor:
    def __init__(self, data_dir: Path, *, providers: int, slots: int, match_timeout: float = 20.0,
                 policy: RestartPolicy | None = None, executor: str = "docker") -> None:
        self.root = Path(data_dir).resolve()
        self.executor = executor
        self.cluster: Any = None  # the local Bacalhau cluster (executor "bacalhau")
        self.providers, self.slots, self.match_timeout = providers, slots, match_timeout
        self.policy = policy or RestartPolicy()
        self.stopping = threading.Event()
        self.procs: dict[str, ManagedProcess] = {}
        self.specs: dict[str, tuple[list[str], dict[str, str]]] = {}
        self.crashes: dict[str, int] = {}
        self.restart_at: dict[str, float] = {}
        self.state = DevnetState(str(self.root))
        self._lock_file: Any = None

    # ------------------------------------------------------------------ state
    def save(self) -> None:
        self.state.updated_at = time.time()
        self.state.save(self.root)

    def _ports(self, previous: DevnetState | None) -> dict[str, int]:
        """Reuse the ports of the previous run where they are still free (stable URLs)."""
        old = {c.name: c.port for c in previous.components} if previous else {}
        taken: set[int] = set()
        names = ["anvil", "solver", *[f"provider-{i}" for i in range(1, self.providers + 1)], "mediator", "bridge",
                 *self._kubo_names()]
        out = {}
        for name in names:
            port = old.get(name)
            if not port or port in taken or not _port_free(port):
                port = free_port()
                while port in taken:
                    port = free_port()
            taken.add(port)
            out[name] = port
        return out

    def _kubo_names(self) -> list[str]:
        """The kubo nodes: one per provider, the mediator's, the job creator's (``kubo-client``)."""
        return [*[f"kubo-provider-{i}" for i in range(1, self.providers + 1)], "kubo-mediator", "kubo-client"]

    def _kubo_nodes(self, ports: dict[str, int]) -> dict[str, Any]:
        """Initialise (once; resumed with their ports and identities) a kubo repository per node
        under ``DATA_DIR/kubo/``, each peered with all the others (kubo's ``Peering.Peers``)."""
        from lilypad.ipfs.node import KuboNode

        nodes = {name: KuboNode(self.root / "kubo" / name, api_port=ports[name]).init()
                 for name in self._kubo_names()}
        for name, node in nodes.items():
            node.init(peers=[other.multiaddr for o, other in nodes.items() if o != name])
        return nodes

    # ------------------------------------------------------------------ run
    def run(self) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        self._lock_file = open(self.root / "supervisor.lock", "w")  # noqa: SIM115 - held for our lifetime
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            log.error("another supervisor holds %s", self.root / "supervisor.lock")
            return EXIT_BUSY
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        previous = DevnetState.load(self.root)
        try:
            self._start(previous)
        except DevnetError as err:
            log.error("start failed: %s", err)
            self.state.status, self.state.error = "failed", str(err)
            self._stop_all()
            self.save()
            return EXIT_FAILED
        if not self.stopping.is_set():
            self.state.status = "running"
            self.save()
            log.info("devnet running: rpc %s, solver %s", self.state.rpc_url, self.state.solver_url)
            self._watch()
        self.state.status = "stopping"
        self.save()
        self._stop_all()
        self.state.status = "stopped"
        self.save()
        log.info("devnet stopped")
        return 0

    def _start(self, previous: DevnetState | None) -> None:
        ports = self._ports(previous)
        rpc_port, solver_port = ports["anvil"], ports["solver"]
        deployments = self.root / "deployments"
        s = self.state
        s.supervisor_pid = os.getpid()
        s.rpc_url, s.solver_url = f"http://127.0.0.1:{rpc_port}", f"http://127.0.0.1:{solver_port}"
        s.deployments_dir, s.providers, s.slots = str(deployments), self.providers, self.slots
        s.accounts = self._accounts()
        s.executor = self.executor
        provider_extra: list[str] = []
        if self.executor == "bacalhau":
            provider_extra = self._start_bacalhau()
        env = network_env(rpc_port, deployments, s.solver_url)
        logs = self.root / "logs"

        def add(name: str, kind: str, args: list[str], *, key: int | None = None, role: str = "",
                extra: dict[str, str] | None = None) -> None:
            child_env = dict(env, **(extra or {}))
            if key is not None:
                child_env["WEB3_PRIVATE_KEY"] = dev_private_key(key)
            self.specs[name] = (args, child_env)
            s.components.append(Component(name=name, kind=kind, port=ports[name], log=str(logs / f"{name}.log"),
                                          address=address_of(key) if key is not None else None, role=role))

        add("anvil", "anvil", anvil_args(rpc_port, state_path=self.root / STATE_FILE, state_interval=30),
            role="chain (JSON-RPC)")
        try:
            kubo = self._kubo_nodes(ports)
        except LilypadError as exc:  # GoToolMissingError: `make setup` builds kubo
            raise DevnetError(f"cannot set up the kubo nodes: {exc}") from None
        for name, node in kubo.items():
            add(name, "kubo", node.daemon_args(), role=f"IPFS node ({name.removeprefix('kubo-')})",
                extra=kubo_env(node.repo))
        s.ipfs = {name: {"api": node.api_url, "gateway": node.gateway_url, "multiaddr": node.multiaddr}
                  for name, node in kubo.items()}
        exe = lilypad_exe()
        add("solver", "solver", [exe, "solver", "--network", NETWORK, "--port", str(solver_port), "--data-dir",
                                 str(self.root / "solver"), "--match-timeout", str(self.match_timeout)],
            key=SOLVER_KEY, role="solver")
        for i in range(1, self.providers + 1):
            name = f"provider-{i}"
            add(name, "provider", [exe, "resource-provider", "--network", NETWORK, "--solver-url", s.solver_url,
                                   "--data-dir", str(self.root / name), "--slots", str(self.slots),
                                   "--metrics-port", str(ports[name]), "--ipfs-api", kubo[f"kubo-{name}"].api_url,
                                   *provider_extra],
                key=PROVIDER_KEYS[i - 1], role="resource provider" + (" (Bacalhau)" if provider_extra else ""))
        add("mediator", "mediator", [exe, "mediator", "--network", NETWORK, "--solver-url", s.solver_url,
                                     "--data-dir", str(self.root / "mediator"), "--metrics-port",
                                     str(ports["mediator"]), "--ipfs-api", kubo["kubo-mediator"].api_url],
            key=MEDIATOR_KEY, role="mediator")
        add("bridge", "bridge", [exe, "jobcreator", "--network", NETWORK, "--solver-url", s.solver_url,
                                 "--data-dir", str(self.root / "bridge"), "--metrics-port", str(ports["bridge"])],
            key=BRIDGE_KEY, role="relayer of smart-contract jobs", extra={"LILYPAD_BRIDGE_FAULT": ""})
        self.save()

        self._spawn("anvil")
        wait_for_port(rpc_port, proc=self.procs["anvil"].proc, timeout=30)
        record_path = deployments / "ethereum-local.json"
        if record_path.is_file():
            record = json.loads(record_path.read_text())
            self._check_resumable(record)
            log.info("resumed the chain from %s", self.root / STATE_FILE)
        else:
            log.info("deploying the contracts (ape run deploy)")
            record = deploy_contracts(rpc_port, deployments, logs / "deploy.log")
        s.contracts = dict(record.get("contracts", {}))
        self.save()
        if self.stopping.is_set():
            return
        for name in kubo:
            self._spawn(name)
        for name, node in kubo.items():
            wait_for_port(ports[name], proc=self.procs[name].proc, timeout=60)
            node.wait_ready(60)
        for node in kubo.values():  # all up: connect now rather than after kubo's peering back-off
            with node.client() as client:
                client.put_empty_block()
            node.connect_peers()
        self._spawn("solver")
        wait_for_port(solver_port, proc=self.procs["solver"].proc, timeout=90)
        rest = [c.name for c in s.components if c.kind in ("provider", "mediator", "bridge")]
        for name in rest:
            self._spawn(name)
        for name in rest:
            wait_for_port(ports[name], proc=self.procs[name].proc, timeout=120)

    def _start_bacalhau(self) -> list[str]:
        """Start a Bacalhau orchestrator, two compute nodes and their registry (separate processes,
        loopback) under ``DATA_DIR/bacalhau``; the providers' options to use it."""
        from lilypad.executor.bacalhau.cluster import LocalCluster

        log.info("starting a Bacalhau cluster (orchestrator + 2 compute nodes) in %s", self.root / "bacalhau")
        try:
            self.cluster = LocalCluster(self.root / "bacalhau", compute_nodes=2,
                                        allowed_local_paths=(f"{self.root}/**",)).start()
        except Exception as exc:  # the binary missing, a node that would not connect, ...
            raise DevnetError(f"the Bacalhau cluster did not start: {exc}") from exc
        self.state.bacalhau_api, self.state.bacalhau_registry = self.cluster.api_url, self.cluster.registry_host
        self.save()
        return ["--executor", "bacalhau", "--bacalhau-api", self.cluster.api_url,
                "--bacalhau-registry", self.cluster.registry_host, "--bacalhau-local-inputs"]

    def _check_resumable(self, record: dict[str, Any]) -> None:
        from lilypad.devnet.control import rpc_call

        url = self.state.rpc_url
        missing = [k for k, addr in record.get("contracts", {}).items()
                   if rpc_call(url, "eth_getCode", [addr, "latest"]) in (None, "0x", "0x0")]
        if missing or not record.get("contracts"):
            raise DevnetError(
                f"cannot resume {self.root}: the chain in {self.root / STATE_FILE} no longer holds the deployed "
                f"contracts ({', '.join(missing) or 'none recorded'}); start fresh with "
                f"`lilypad devnet down --purge --data-dir {self.root}` or use a new --data-dir")

    def _accounts(self) -> list[dict[str, Any]]:
        roles = [("deployer", 0), ("job creator", JOB_CREATOR_KEY), ("solver", SOLVER_KEY),
                 ("mediator", MEDIATOR_KEY), ("bridge", BRIDGE_KEY)]
        roles[2:2] = [(f"provider-{i}", PROVIDER_KEYS[i - 1]) for i in range(1, self.providers + 1)]
        return [{"role": r, "index": i, "address": address_of(i), "private_key": dev_private_key(i)}
                for r, i in roles]

    def _spawn(self, name: str) -> None:
        args, env = self.specs[name]
        comp = self.state.component(name)
        proc = ManagedProcess(name, args, Path(comp.log), env=env).start()
        self.procs[name] = proc
        comp.pid, comp.started_at, comp.state = proc.proc.pid, time.time(), "running"  # type: ignore[union-attr]
        log.info("started %s (pid %s)", name, comp.pid)
        self.save()

    # ------------------------------------------------------------------ supervise
    def _watch(self) -> None:
        while not self.stopping.wait(0.25):
            now = time.time()
            for comp in self.state.components:
                proc = self.procs.get(comp.name)
                if comp.state == "running" and proc is not None and not proc.alive:
                    code = proc.proc.returncode  # type: ignore[union-attr]
                    ran = now - (comp.started_at or now)
                    n, delay = self.policy.after_exit(self.crashes.get(comp.name, 0), ran)
                    self.crashes[comp.name] = n
                    comp.last_exit, comp.pid = code, None
                    if delay is None:
                        comp.state = "failed"
                        log.error("%s exited with %s %d times in a row: giving up", comp.name, code, n)
                    else:
                        comp.state = "restarting"
                        self.restart_at[comp.name] = now + delay
                        log.warning("%s exited with %s after %.1fs: restarting in %.1fs", comp.name, code, ran,
                                    delay)
                    self.save()
                elif comp.state == "restarting" and now >= self.restart_at.get(comp.name, 0):
                    comp.restarts += 1
                    self._spawn(comp.name)

    def _stop_all(self) -> None:
        """Stop the services all at once, then anvil (which dumps the chain's state)."""
        def stop(comp: Component) -> None:
            proc = self.procs.get(comp.name)
            if proc is not None and proc.proc is not None:
                proc.stop(timeout=20)
                log.info("stopped %s (pid %s)", comp.name, proc.proc.pid)
            comp.pid, comp.state = None, "stopped"

        services = [c for c in self.state.components if c.kind != "anvil"]
        threads = [threading.Thread(target=stop, args=(c,)) for c in services]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.cluster is not None:  # compute nodes first, then the orchestrator and registry
            self.cluster.stop()
            log.info("stopped the Bacalhau cluster")
        for comp in self.state.components:
            if comp.kind == "anvil":
                stop(comp)
        self.save()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lilypad.devnet.supervisor", description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--providers", type=int, default=1, choices=range(1, MAX_PROVIDERS + 1))
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--match-timeout", type=float, default=20.0)
    parser.add_argument("--executor", choices=("docker", "bacalhau"), default="docker")
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s supervisor %(levelname)s %(message)s")
    sup = Supervisor(ns.data_dir, providers=ns.providers, slots=ns.slots, match_timeout=ns.match_timeout,
                     executor=ns.executor)
    return sup.run()


if __name__ == "__main__":
    raise SystemExit(main())
