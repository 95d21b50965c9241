"""The pure part of ``lilypad devnet``: the ``devnet.json`` model, restart backoff
decisions, health summaries and the status table. No processes, no sockets.

``devnet.json`` (in the data directory) is written by the supervisor
(:mod:`lilypad.devnet.supervisor`) whenever something changes and read by
``lilypad devnet status|logs|down|up``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BRIDGE_KEY",
    "DEVNET_FILE",
    "JOB_CREATOR_KEY",
    "MAX_PROVIDERS",
    "MEDIATOR_KEY",
    "PROVIDER_KEYS",
    "SOLVER_KEY",
    "SUPERVISOR_MODULE",
    "Component",
    "DevnetState",
    "Probe",
    "RestartPolicy",
    "default_data_dir",
    "is_our_process",
    "render_table",
    "summarise",
    "summary_text",
]

DEVNET_FILE = "devnet.json"
SUPERVISOR_MODULE = "lilypad.devnet.supervisor"
#: anvil test-mnemonic account indexes (``ape run deploy`` funds 0..9 with LP and
#: relays smart-contract jobs - no role needed); each provider gets its own key.
JOB_CREATOR_KEY, MEDIATOR_KEY, SOLVER_KEY, BRIDGE_KEY = 1, 3, 4, 9
PROVIDER_KEYS = (2, 5, 6, 7, 8)
MAX_PROVIDERS = len(PROVIDER_KEYS)


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """``LILYPAD_DEVNET_DIR`` (of ``env``; default: the settings), else ``~/.lilypad/devnet``."""
    if env is None:
        from lilypad.settings import get_settings

        return get_settings().devnet_dir
    value = env.get("LILYPAD_DEVNET_DIR")
    return Path(value).expanduser() if value else Path("~/.lilypad/devnet").expanduser()


@dataclass
class Component:
    """One supervised process. ``port``: anvil's RPC port, the solver's HTTP port, or
    the ``--metrics-port`` (``/health``) of a provider, the mediator or the bridge, or a
    kubo node's RPC API port."""

    name: str
    kind: str  # anvil | solver | provider | mediator | bridge | kubo
    port: int
    log: str
    address: str | None = None
    role: str = ""
    pid: int | None = None
    started_at: float | None = None
    restarts: int = 0
    state: str = "starting"  # starting | running | restarting | failed | stopped
    last_exit: int | None = None

    @property
    def health_url(self) -> str:
        if self.kind == "anvil":
            return f"http://127.0.0.1:{self.port}"
        if self.kind == "solver":
            return f"http://127.0.0.1:{self.port}/api/v1/health"
        if self.kind == "kubo":
            return f"http://127.0.0.1:{self.port}/api/v0/version"
        return f"http://127.0.0.1:{self.port}/health"


@dataclass
class DevnetState:
    data_dir: str
    status: str = "starting"  # starting | running | stopping | stopped | failed
    supervisor_pid: int | None = None
    rpc_url: str = ""
    solver_url: str = ""
    deployments_dir: str = ""
    providers: int = 1
    slots: int = 2
    contracts: dict[str, str] = field(default_factory=dict)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    components: list[Component] = field(default_factory=list)
    error: str | None = None
    updated_at: float = 0.0
    #: kubo node name -> ``api``, ``gateway`` and ``multiaddr`` (``kubo-client`` is the job creator's).
    ipfs: dict[str, dict[str, str]] = field(default_factory=dict)
    executor: str = "docker"  # the providers' --executor: docker, or bacalhau (a local cluster, below)
    bacalhau_api: str = ""  # with executor bacalhau: the orchestrator's API
    bacalhau_registry: str = ""  # ... and the registry its compute nodes pull images from

    def component(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    def client_env(self) -> dict[str, str]:
        """What ``lilypad run`` needs to use this network as the job creator."""
        by_role = {a["role"]: a for a in self.accounts}
        return {"APE_FOUNDRY_HOST": self.rpc_url, "LILYPAD_DEPLOYMENTS_DIR": self.deployments_dir,
                "LILYPAD_SOLVER_URL": self.solver_url, "LILYPAD_NETWORK": "ethereum:local:foundry",
                "LILYPAD_MEDIATORS": by_role.get("mediator", {}).get("address", ""),
                "LILYPAD_SOLVER_ADDRESS": by_role.get("solver", {}).get("address", ""),
                "WEB3_PRIVATE_KEY": by_role.get("job creator", {}).get("private_key", ""),
                **({"LILYPAD_IPFS_API": self.ipfs["kubo-client"]["api"]} if "kubo-client" in self.ipfs else {})}

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DevnetState:
        raw = json.loads(text)
        comps = [Component(**c) for c in raw.pop("components", [])]
        known = set(cls.__dataclass_fields__)
        return cls(components=comps, **{k: v for k, v in raw.items() if k in known})

    def save(self, data_dir: Path) -> None:
        """Atomically replace ``data_dir/devnet.json``."""
        path = Path(data_dir) / DEVNET_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(self.to_json())
        os.replace(tmp, path)

    @classmethod
    def load(cls, data_dir: Path) -> DevnetState | None:
        try:
            return cls.from_json((Path(data_dir) / DEVNET_FILE).read_text())
        except FileNotFoundError:
            return None


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff for a crashed component: ``base * 2**(n-1)`` seconds
    (capped) before the n-th consecutive restart; a run longer than ``stable_after``
    resets the count; more than ``max_consecutive`` crashes in a row gives up."""

    base: float = 1.0
    cap: float = 30.0
    stable_after: float = 30.0
    max_consecutive: int = 8

    def after_exit(self, consecutive: int, ran_for: float) -> tuple[int, float | None]:
        """(new consecutive-crash count, seconds to wait before restarting, or ``None``: give up)."""
        n = 1 if ran_for >= self.stable_after else consecutive + 1
        if n > self.max_consecutive:
            return n, None
        return n, min(self.cap, self.base * 2 ** (n - 1))


@dataclass(frozen=True)
class Probe:
    """What ``status`` found about one component."""

    name: str
    pid_alive: bool
    port_open: bool
    healthy: bool
    detail: str = ""

    @property
    def state(self) -> str:
        if self.healthy:
            return "healthy"
        if self.pid_alive:
            return "unhealthy"
        return "down"


def summarise(probes: list[Probe], status: str) -> tuple[str, int]:
    """(one-line verdict, exit code): 0 only when the network runs and every component is healthy."""
    if status != "running":
        return f"devnet {status}", 3 if status == "stopped" else 1
    bad = [p.name for p in probes if not p.healthy]
    if not probes:
        return "devnet running, but no components recorded", 1
    if bad:
        return f"devnet degraded: {', '.join(bad)} not healthy", 1
    return f"devnet healthy: {len(probes)} components", 0


def is_our_process(cmdline: bytes, data_dir: Path, marker: str | None = None) -> bool:
    """Is the process whose ``/proc/PID/cmdline`` is ``cmdline`` one that this
    devnet started: its arguments name ``data_dir`` (and ``marker``, if given)?"""
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    root = str(Path(data_dir).resolve())
    names_dir = any(a == root or a.startswith(root + os.sep) or a.endswith("=" + root) for a in args)
    return names_dir and (marker is None or any(marker in a for a in args))


def _age(seconds: float | None, now: float) -> str:
    if not seconds:
        return "-"
    s = int(max(0, now - seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def render_table(state: DevnetState, probes: dict[str, Probe], now: float) -> str:
    """The human ``status`` table."""
    rows = [("COMPONENT", "STATE", "PID", "PORT", "RESTARTS", "UP", "ADDRESS / ROLE")]
    for c in state.components:
        p = probes.get(c.name)
        who = f"{c.address} ({c.role})" if c.address else c.role
        rows.append((c.name, p.state if p else c.state, str(c.pid or "-"), str(c.port), str(c.restarts),
                     _age(c.started_at, now) if c.pid else "-", who))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows]
    return "\n".join(lines)


def summary_text(state: DevnetState) -> str:
    """What ``up`` prints once the network is healthy: where everything is, the test
    accounts (anvil's public test mnemonic: their keys are no secret) and how to run a job."""
    root = state.data_dir
    out = [f"devnet up in {root}",
           f"  chain (anvil)   {state.rpc_url}  (chain id 31337, state saved in {root}/anvil-state.json)",
           f"  solver          {state.solver_url}  (status page {state.solver_url}/status)",
           f"  deployments     {state.deployments_dir}"]
    out += [f"  {k:<15} {v}" for k, v in sorted(state.contracts.items())]
    if state.executor == "bacalhau":
        out.append(f"  bacalhau        {state.bacalhau_api}  (orchestrator + 2 compute nodes; registry "
                   f"{state.bacalhau_registry}; logs in {root}/bacalhau)")
    out.append("components:")
    out += [f"  {c.name:<11} pid {c.pid or '-':<8} port {c.port:<6} {c.role}" for c in state.components]
    out.append("test accounts (anvil's public test mnemonic; 1000 LP each; never use these keys elsewhere):")
    out += [f"  {a['role']:<12} #{a['index']}  {a['address']}  {a['private_key']}" for a in state.accounts]
    env = state.client_env()
    out.append("run a job as the job creator:")
    out += [f"  export {k}={v}" for k, v in env.items()]
    out.append('  lilypad run cowsay:v0.0.1 -i Message="hello"')
    out.append(f"(or: eval \"$(lilypad devnet env --data-dir {root})\"); then lilypad devnet status | logs [component] "
               "| down")
    return "\n".join(out)
