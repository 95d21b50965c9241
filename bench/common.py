"""Shared pieces of the benchmarks: statistics, the machine, a devnet, the
``lilypad run`` front door, the chain's transactions for a job, and process
CPU/memory read from ``/proc``.

Every section module exposes ``run(quick: bool) -> dict`` returning a
*section*: ``{"title", "figures", "tables", "notes", "skipped"}``. A figure is
``{"unit", "stats" | "value", "target"?, "met"?, "note"?}`` where ``stats`` is
:func:`summarise` of the repeated measurements.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

__all__ = [
    "NETWORK",
    "ROOT",
    "ChainLedger",
    "ProcSample",
    "Tx",
    "CliJob",
    "cli_job",
    "docker_pids",
    "finish_cli_job",
    "start_cli_job",
    "compiled",
    "devnet",
    "figure",
    "lilypad_exe",
    "machine_info",
    "proc_sample",
    "section",
    "summarise",
    "system_cpu",
    "timed",
]

NETWORK = "ethereum:local:foundry"
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# --------------------------------------------------------------------------
# Statistics and result shapes
# --------------------------------------------------------------------------


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile ``q`` (0..1) of already sorted values."""
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def summarise(values: Iterable[float]) -> dict[str, float | int]:
    """Median and spread of repeated measurements: n, median, p10, p90, IQR
    (p75 - p25), min, max and mean."""
    xs = sorted(float(v) for v in values)
    if not xs:
        raise ValueError("no measurements to summarise")
    return {
        "n": len(xs), "median": statistics.median(xs), "p10": _quantile(xs, 0.10), "p90": _quantile(xs, 0.90),
        "iqr": _quantile(xs, 0.75) - _quantile(xs, 0.25), "min": xs[0], "max": xs[-1],
        "mean": statistics.fmean(xs),
    }


def figure(unit: str, values: Iterable[float] | None = None, *, value: float | None = None,
           target: str | None = None, met: bool | None = None, note: str | None = None) -> dict[str, Any]:
    """One reported figure: repeated ``values`` (summarised) or a single ``value``."""
    out: dict[str, Any] = {"unit": unit}
    if values is not None:
        out["stats"] = summarise(values)
    if value is not None:
        out["value"] = value
    if target is not None:
        out["target"] = target
    if met is not None:
        out["met"] = bool(met)
    if note:
        out["note"] = note
    return out


def section(title: str, *, skipped: str | None = None) -> dict[str, Any]:
    """An empty section result, or a skipped one with its reason."""
    return {"title": title, "figures": {}, "tables": [], "notes": [], "skipped": skipped}


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    """``with timed() as elapsed:`` ... ``elapsed()`` seconds so far (monotonic)."""
    start = time.perf_counter()
    yield lambda: time.perf_counter() - start


# --------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------


def _cmd_version(args: list[str]) -> str | None:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if out.returncode == 0 and text else None


def _pkg_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Cores, memory, CPU model, kernel, load, and the versions of the tools measured."""
    meminfo: dict[str, int] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            meminfo[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    solc = sorted(p.name.removeprefix("solc-v") for p in (Path.home() / ".solcx").glob("solc-v*"))
    anvil = shutil.which("anvil") or str(ROOT / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
    return {
        "cores": os.cpu_count(),
        "memory_bytes": meminfo.get("MemTotal"),
        "memory_available_bytes": meminfo.get("MemAvailable"),
        "cpu_model": model,
        "os": f"{platform.system()} {platform.release()}",
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": {
            "python": platform.python_version(),
            "ape": _pkg_version("eth-ape"),
            "ape-foundry": _pkg_version("ape-foundry"),
            "web3": _pkg_version("web3"),
            "anvil": (_cmd_version([anvil, "--version"]) or "").removeprefix("anvil Version: ") or None,
            "docker": _cmd_version(["docker", "version", "--format", "{{.Server.Version}}"]),
            "solc": solc[-1] if solc else None,
            "lilypad": _cmd_version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        },
    }


# --------------------------------------------------------------------------
# A devnet of real processes, and the `lilypad run` front door
# --------------------------------------------------------------------------


def lilypad_exe() -> str:
    return shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")


@contextmanager
def devnet(prefix: str, **start: Any) -> Iterator[Any]:
    """A :class:`~lilypad.devnet.network.LocalNetwork` (anvil, deployed contracts,
    solver) in a fresh temporary directory, stopped on leaving."""
    from lilypad.devnet.network import LocalNetwork

    root = Path(tempfile.mkdtemp(prefix=f"lilypad-bench-{prefix}-"))
    net = LocalNetwork.start(root, **start)
    try:
        yield net
    finally:
        net.stop()


@dataclass
class CliJob:
    """One ``lilypad run``: exit status, wall seconds, output and its run record."""

    returncode: int
    wall: float
    started_at: float  # Unix time just before the process was started
    ended_at: float
    output: str
    record: dict[str, Any] | None


def _newest_record(data_dir: Path, before: set[str]) -> dict[str, Any] | None:
    runs = data_dir / "jobcreator" / "runs"
    new = sorted(p for p in runs.glob("*.json") if p.name not in before) if runs.is_dir() else []
    return json.loads(new[-1].read_text()) if new else None


def start_cli_job(net: Any, data_dir: Path, module: str, inputs: dict[str, str], *extra: str,
                  private_key: str | None = None) -> tuple[subprocess.Popen, set[str], float]:
    """Start ``lilypad run MODULE -i K=V ...`` as the devnet's job creator (or ``private_key``)."""
    env = net.client_env(data_dir)
    if private_key:
        env["WEB3_PRIVATE_KEY"] = private_key
    args = [lilypad_exe(), "run", module, "--network", NETWORK, "--solver-url", net.solver_url,
            "--data-dir", str(data_dir), "--timeout", "600", *extra]
    for key, value in inputs.items():
        args += ["-i", f"{key}={value}"]
    runs = data_dir / "jobcreator" / "runs"
    before = {p.name for p in runs.glob("*.json")} if runs.is_dir() else set()
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(data_dir / "lilypad-run.out", "ab") as log:  # a file, not a pipe: nothing blocks on output
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, before, started


def finish_cli_job(proc: subprocess.Popen, data_dir: Path, before: set[str], started: float,
                   timeout: float = 600) -> CliJob:
    proc.wait(timeout=timeout)
    ended = time.time()
    output = (data_dir / "lilypad-run.out").read_text(errors="replace")
    return CliJob(proc.returncode, ended - started, started, ended, output, _newest_record(data_dir, before))


def cli_job(net: Any, data_dir: Path, module: str, inputs: dict[str, str], *extra: str,
            private_key: str | None = None) -> CliJob:
    """Run ``lilypad run`` to the end; raises RuntimeError (with the logs) if it fails."""
    proc, before, started = start_cli_job(net, data_dir, module, inputs, *extra, private_key=private_key)
    job = finish_cli_job(proc, data_dir, before, started)
    if job.returncode != 0:
        raise RuntimeError(f"lilypad run {module} failed ({job.returncode}):\n{job.output[-3000:]}\n{net.logs()}")
    return job


# --------------------------------------------------------------------------
# The chain: compiled ABIs, and every transaction of a job
# --------------------------------------------------------------------------


def compiled() -> dict[str, dict[str, Any]]:
    """Contract name -> ape's compiled contract type (``abi``, ``deploymentBytecode``)."""
    path = ROOT / ".build" / "__local__.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `ape compile` (or `make compile`)")
    return json.loads(path.read_text())["contractTypes"]


@dataclass(frozen=True)
class Tx:
    """One mined transaction: who sent it, what it called, gas and calldata."""

    block: int
    party: str
    sender: str
    to: str
    function: str
    gas_used: int
    calldata_bytes: int
    calldata_nonzero: int
    ok: bool
    tx_hash: str = ""


class ChainLedger:
    """Reads every transaction anvil mined, naming senders (``parties``) and functions."""

    def __init__(self, rpc_url: str, parties: dict[str, str], names: dict[str, str] | None = None) -> None:
        from eth_utils import function_abi_to_4byte_selector
        from web3 import Web3

        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
        self.parties = {a.lower(): n for a, n in parties.items()}
        self.names = {a.lower(): n for a, n in (names or {}).items()}
        self.selectors: dict[bytes, str] = {}
        for ct in compiled().values():
            for item in ct.get("abi", []):
                if item.get("type") == "function":
                    self.selectors.setdefault(function_abi_to_4byte_selector(item), item["name"])

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def since(self, block: int, to_block: int | None = None) -> list[Tx]:
        """Transactions in blocks ``block+1 .. to_block`` (default: the head)."""
        out = []
        last = self.head() if to_block is None else to_block
        for number in range(block + 1, last + 1):
            blk = self.w3.eth.get_block(number, full_transactions=True)
            for tx in blk.transactions:
                receipt = self.w3.eth.get_transaction_receipt(tx["hash"])
                data = bytes(tx["input"])
                sender = str(tx["from"]).lower()
                to = str(tx["to"] or "").lower()
                fn = self.selectors.get(data[:4], data[:4].hex() or "transfer")
                out.append(Tx(number, self.parties.get(sender, sender), sender, self.names.get(to, to), fn,
                              int(receipt["gasUsed"]), len(data), sum(1 for b in data if b), receipt["status"] == 1,
                              "0x" + bytes(tx["hash"]).hex()))
        return out

    def rpc(self, method: str, params: list[Any]) -> Any:
        return self.w3.provider.make_request(method, params)


# --------------------------------------------------------------------------
# Processes: CPU and memory from /proc
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcSample:
    rss: int  # bytes
    cpu: float  # seconds of user + system, its reaped children's included


def proc_sample(pid: int) -> ProcSample | None:
    """RSS and CPU seconds of ``pid`` (None if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ProcSample(rss_pages * _PAGE, (utime + stime + cutime + cstime) / _CLK_TCK)


_DOCKER_COMMS = ("dockerd", "containerd", "containerd-shim", "containerd-shi", "runc", "docker-proxy")


def docker_pids() -> list[int]:
    """The Docker engine's processes (dockerd, containerd and the per-container shims)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm.startswith(_DOCKER_COMMS):
                pids.append(int(entry.name))
    return pids


def system_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (all cores)."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return (total - idle) / _CLK_TCK, total / _CLK_TCK
