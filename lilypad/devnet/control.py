"""The I/O behind ``lilypad devnet up|status|logs|down``: spawning the supervisor,
probing components, following logs and stopping exactly what a devnet started.

Errors are :class:`~lilypad.exceptions.DevnetError` with a one-line reason; the
CLI turns them into ``click.ClickException``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lilypad.devnet.state import DEVNET_FILE, SUPERVISOR_MODULE, Component, DevnetState, Probe, is_our_process
from lilypad.exceptions import DevnetError

__all__ = [
    "down",
    "follow_logs",
    "http_health",
    "kubo_health",
    "pid_alive",
    "probe",
    "rpc_call",
    "running_supervisor",
    "up",
]


# ---------------------------------------------------------------------- probes
def rpc_call(url: str, method: str, params: list[Any] | None = None, timeout: float = 2.0) -> Any:
    """A JSON-RPC call's result, or ``None`` when it failed."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read()).get("result")
    except (OSError, ValueError):
        return None


def http_health(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """(200 and ``status`` ok, a short detail)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.loads(resp.read() or b"{}")
            return body.get("status") == "ok", str(body.get("status"))
    except urllib.error.HTTPError as err:
        try:
            return False, str(json.loads(err.read()).get("status", err.code))
        except ValueError:
            return False, f"HTTP {err.code}"
    except (OSError, ValueError) as err:
        return False, type(err).__name__


def pid_alive(pid: int | None) -> bool:
    """Is ``pid`` a live process (not a zombie)?"""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _ours(pid: int | None, root: Path, marker: str | None = None) -> bool:
    return bool(pid) and pid_alive(pid) and is_our_process(_cmdline(pid), root, marker)  # type: ignore[arg-type]


def running_supervisor(state: DevnetState | None, root: Path) -> int | None:
    """The pid of this directory's live supervisor, if there is one."""
    if state is None or not state.supervisor_pid:
        return None
    return state.supervisor_pid if _ours(state.supervisor_pid, root, SUPERVISOR_MODULE) else None


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _probe_one(c: Component) -> Probe:
    alive = pid_alive(c.pid)
    port = _port_open(c.port)
    if not port:
        return Probe(c.name, alive, False, False, "port closed")
    if c.kind == "anvil":
        chain = rpc_call(c.health_url, "eth_chainId")
        return Probe(c.name, alive, True, alive and chain is not None, f"chain {int(chain, 16)}" if chain else "")
    if c.kind == "kubo":  # kubo's RPC API answers POST only
        ok, detail = kubo_health(c.health_url)
        return Probe(c.name, alive, True, alive and ok, detail)
    ok, detail = http_health(c.health_url)
    return Probe(c.name, alive, True, alive and ok, detail)


def kubo_health(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """(kubo's ``/api/v0/version`` answered, ``kubo <version>`` or why not)."""
    req = urllib.request.Request(url, b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return True, f"kubo {json.loads(resp.read()).get('Version')}"
    except urllib.error.HTTPError as err:
        return False, f"HTTP {err.code}"
    except (OSError, ValueError) as err:
        return False, type(err).__name__


def probe(state: DevnetState) -> dict[str, Probe]:
    """Probe every component at once (pid, port, health)."""
    with ThreadPoolExecutor(max_workers=max(1, len(state.components))) as pool:
        return {p.name: p for p in pool.map(_probe_one, state.components)}


# ---------------------------------------------------------------------- up
def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def up(root: Path, *, providers: int | None, slots: int | None, foreground: bool = False,
       timeout: float = 300.0, progress: Callable[[str], None] = lambda _: None,
       executor: str | None = None) -> tuple[DevnetState, Any]:
    """Start (or resume) the devnet in ``root`` and wait until every component is healthy.
    Returns the state and the supervisor's ``Popen`` (still running)."""
    root = root.expanduser().resolve()
    state = DevnetState.load(root)
    pid = running_supervisor(state, root)
    if pid:
        raise DevnetError(f"a devnet is already running in {root} (supervisor pid {pid}): see `lilypad devnet "
                          f"status --data-dir {root}`, or stop it with `lilypad devnet down --data-dir {root}`")
    if state is None and root.is_dir() and any(root.iterdir()):
        raise DevnetError(f"{root} is not empty and holds no {DEVNET_FILE}: not a devnet directory; "
                          "pick an empty or new --data-dir")
    providers = providers or (state.providers if state else 1)
    slots = slots or (state.slots if state else 2)
    progress(f"{'resuming' if state else 'starting'} the devnet in {root} ({providers} provider(s), {slots} slot(s))")
    (root / "logs").mkdir(parents=True, exist_ok=True)
    from lilypad.devnet.processes import repo_root

    args = [sys.executable, "-m", SUPERVISOR_MODULE, str(root), "--providers", str(providers), "--slots", str(slots),
            "--executor", executor or (state.executor if state else "docker")]
    log_path = root / "logs" / "supervisor.log"
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(args, stdout=None if foreground else out, stderr=None if foreground else out,
                                stdin=subprocess.DEVNULL, start_new_session=not foreground, cwd=repo_root(),
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(0.5)
        current = DevnetState.load(root)
        if proc.poll() is not None:
            why = current.error if current and current.supervisor_pid == proc.pid and current.error else None
            if proc.returncode == 2:
                why = f"another supervisor already holds {root / 'supervisor.lock'}"
            raise DevnetError(why or f"the supervisor exited with {proc.returncode}; its log ({log_path}):\n"
                              + _log_tail(log_path))
        if current and current.supervisor_pid == proc.pid and current.status == "running":
            probes = probe(current)
            if all(p.healthy for p in probes.values()):
                return current, proc
        if time.monotonic() > deadline:
            bad = [n for n, p in (probe(current) if current else {}).items() if not p.healthy]
            raise DevnetError(f"the devnet in {root} was not healthy within {timeout:.0f}s (not yet: "
                              f"{', '.join(bad) or current.status if current else 'starting'}); it is still "
                              f"running: see `lilypad devnet logs`, or `lilypad devnet down --data-dir {root}`")


# ---------------------------------------------------------------------- down
def _terminate(pid: int, *, group: bool, timeout: float) -> bool:
    """SIGTERM (then SIGKILL) one process, or its whole group when it leads one; True when it is gone."""
    def send(sig: int) -> None:
        try:
            if group and os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    send(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    send(signal.SIGKILL)
    time.sleep(0.3)
    return not pid_alive(pid)


def down(root: Path, *, purge: bool = False, timeout: float = 60.0) -> list[str]:
    """Stop the supervisor recorded in ``root`` (only if it really is this directory's), then any
    child it recorded that is still alive and still ours; ``purge`` deletes the directory. Returns notes."""
    root = root.expanduser().resolve()
    state = DevnetState.load(root)
    if state is None:
        raise DevnetError(f"no devnet in {root} (no {DEVNET_FILE}); nothing stopped" +
                          ("; not deleting a directory that is not a devnet's" if purge and root.exists() else ""))
    notes: list[str] = []
    children = {c.name: c.pid for c in state.components if c.pid}
    sup = running_supervisor(state, root)
    if sup:
        gone = _terminate(sup, group=False, timeout=timeout)
        notes.append(f"stopped the supervisor (pid {sup})" if gone else f"killed the supervisor (pid {sup})")
    elif state.supervisor_pid and pid_alive(state.supervisor_pid):
        notes.append(f"pid {state.supervisor_pid} is not this devnet's supervisor any more: left alone")
    for name, pid in children.items():  # left behind only when the supervisor itself was killed
        if _ours(pid, root):
            _terminate(pid, group=True, timeout=15)
            notes.append(f"stopped {name} (pid {pid}), which outlived its supervisor")
    left = [f"{n} (pid {p})" for n, p in children.items() if _ours(p, root)]
    if left:
        raise DevnetError(f"still running after down: {', '.join(left)}")
    final = DevnetState.load(root) or state
    if final.status not in ("stopped", "failed"):
        final.status = "stopped"
        for c in final.components:
            c.pid, c.state = None, "stopped"
        final.save(root)
    notes.append(f"all {len(children)} recorded component process(es) are gone")
    if purge:
        shutil.rmtree(root)
        notes.append(f"deleted {root}")
    return notes


# ---------------------------------------------------------------------- logs
def log_paths(root: Path) -> dict[str, Path]:
    """Every log the devnet in ``root`` writes, by component name."""
    root = root.expanduser().resolve()
    state = DevnetState.load(root)
    paths = {c.name: Path(c.log) for c in state.components} if state else {}
    for extra in ("supervisor", "deploy"):
        path = root / "logs" / f"{extra}.log"
        if path.exists() or extra == "supervisor":
            paths[extra] = path
    if not state:
        paths.update({p.stem: p for p in sorted((root / "logs").glob("*.log"))})
    return paths


def follow_logs(paths: dict[str, Path], *, lines: int, follow: bool,
                stop: Callable[[], bool] = lambda: False) -> Iterator[str]:
    """The last ``lines`` lines of each log (prefixed with its name when several), then,
    with ``follow``, new lines as they are written (until ``stop()``)."""
    prefix = len(paths) > 1
    offsets: dict[str, int] = {}
    for name, path in paths.items():
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        offsets[name] = len(data)
        for line in data.decode(errors="replace").splitlines()[-lines:] if lines else []:
            yield f"{name:>10} | {line}" if prefix else line
    partial: dict[str, str] = {}
    while follow and not stop():
        quiet = True
        for name, path in paths.items():
            try:
                with open(path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    if size < offsets[name]:
                        offsets[name] = 0  # truncated: start over
                    f.seek(offsets[name])
                    chunk = f.read()
            except OSError:
                continue
            if not chunk:
                continue
            quiet = False
            offsets[name] += len(chunk)
            text = partial.pop(name, "") + chunk.decode(errors="replace")
            *done, rest = text.split("\n")
            if rest:
                partial[name] = rest
            for line in done:
                yield f"{name:>10} | {line}" if prefix else line
        if quiet:
            time.sleep(0.2)
