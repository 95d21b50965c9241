"""Helpers of the fault-injection tests: the contract-job helpers of the bridge's end-to-end tests,
a TCP proxy that can be switched off (an unreachable chain RPC), chain-clock pushes, and the
containers a network's executors left behind."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

E2E = Path(__file__).resolve().parents[1] / "e2e"
if str(E2E) not in sys.path:
    sys.path.insert(0, str(E2E))

from bridge_support import ClientChain, wait_for  # type: ignore[import-not-found]  # noqa: E402

__all__ = ["ClientChain", "TcpProxy", "containers_under", "lilypad_run_args", "push_time", "wait_for"]


def lilypad_run_args(net: Any, data_dir: Path, *args: str) -> list[str]:
    exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
    return [exe, "run", *args, "--network", "ethereum:local:foundry", "--solver-url", net.solver_url,
            "--data-dir", str(data_dir)]


def push_time(w3: Any, seconds: int) -> None:
    """Move anvil's clock forward and mine a block (every window the deals have passes)."""
    w3.provider.make_request("evm_increaseTime", [int(seconds)])
    w3.provider.make_request("evm_mine", [])


def containers_under(root: Path, *, running: bool = False) -> list[str]:
    """Ids of containers (all, or only running ones) whose bind mounts lie under ``root``: the
    ones a network's provider and mediator created, whoever else shares the Docker engine. One
    list call (docker-py's ``containers.list`` inspects each container, and fails when another
    user's container goes away in between)."""
    import docker

    client = docker.from_env()
    try:
        found = []
        for container in client.api.containers(all=not running):
            sources = [m.get("Source", "") for m in container.get("Mounts") or []]
            if any(s.startswith(str(root)) for s in sources):
                found.append(container["Id"])
        return found
    finally:
        client.close()


class TcpProxy:
    """A TCP forwarder ``127.0.0.1:port -> 127.0.0.1:target``. ``down()`` closes the listener
    and every open connection (clients get refused/reset, as with an unreachable node);
    ``up()`` listens again on the same port."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or _free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.accepted = 0

    def up(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            _close(conn)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._listener is not listener:
                _close(client)
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _close(client)
                continue
            self.accepted += 1
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            # OSError: the proxy was stopped (the injected outage) or a peer hung up
            with contextlib.suppress(OSError):
                while data := src.recv(65536):
                    dst.sendall(data)
        finally:
            _close(src)
            _close(dst)
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already disconnected
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def docker_info_ok() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def wait_until(predicate: Any, timeout: float, every: float = 0.5) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())
