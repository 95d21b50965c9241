"""Start and stop the real processes a local network is made of (no mocks).

Used by the end-to-end tests and by ``lilypad devnet``. Every process gets its
own log file; ``stop`` terminates it and waits, killing it if it will not go.
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
from dataclasses import dataclass, field
from pathlib import Path

from lilypad.exceptions import DevnetError

__all__ = [
    "ANVIL_MNEMONIC",
    "ManagedProcess",
    "anvil_args",
    "deploy_contracts",
    "free_port",
    "repo_root",
    "start_anvil",
    "dev_private_key",
    "wait_for_port",
]

#: anvil's default mnemonic; ape's TEST::n accounts derive from the same one.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DevnetError(f"process exited with {proc.returncode} before listening on port {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise DevnetError(f"nothing listened on port {port} within {timeout:.0f}s")


def dev_private_key(index: int) -> str:
    """The private key of anvil's (and ape's) test account ``index``."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").key.hex()


@dataclass
class ManagedProcess:
    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    proc: subprocess.Popen | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env}, cwd=self.cwd, start_new_session=True,
        )
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """Die abruptly, as a crashed node would."""
        if self.alive:
            os.killpg(self.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
            self.proc.wait(10)  # type: ignore[union-attr]

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def anvil_args(port: int, *, block_time: float | None = None, state_path: Path | None = None,
               state_interval: int = 0, steps_tracing: bool = False) -> list[str]:
    """anvil's command line; ``state_path``: load the chain from it at start, dump it there on
    exit (and every ``state_interval`` seconds), so a stopped network can be resumed;
    ``steps_tracing``: record every opcode, so ``debug_traceTransaction`` has struct logs
    (the gas benchmark's profile; it slows every transaction)."""
    anvil = shutil.which("anvil") or str(
        repo_root() / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
    )
    if not Path(anvil).exists():
        raise DevnetError("anvil not found: run `make setup` (it installs anvil from npm)")
    args = [anvil, "--port", str(port), "--hardfork", "cancun", "--mnemonic", ANVIL_MNEMONIC]
    if block_time:
        args += ["--block-time", str(block_time)]
    if state_path is not None:
        args += ["--state", str(state_path), "--preserve-historical-states"]
        if state_interval:
            args += ["--state-interval", str(state_interval)]
    if steps_tracing:
        args.append("--steps-tracing")
    return args


def start_anvil(port: int, log_path: Path, *, block_time: float | None = None,
                state_path: Path | None = None, steps_tracing: bool = False) -> ManagedProcess:
    args = anvil_args(port, block_time=block_time, state_path=state_path, steps_tracing=steps_tracing)
    proc = ManagedProcess("anvil", args, log_path).start()
    wait_for_port(port, proc=proc.proc)
    return proc


def deploy_contracts(rpc_port: int, deployments_dir: Path, log_path: Path, *extra: str) -> dict:
    """Run ``ape run deploy`` against the anvil on ``rpc_port``; return the deployments record."""
    env = {
        **os.environ,
        "APE_FOUNDRY_HOST": f"http://127.0.0.1:{rpc_port}",
        "LILYPAD_DEPLOYMENTS_DIR": str(deployments_dir),
    }
    env.pop("WEB3_PRIVATE_KEY", None)
    ape = shutil.which("ape") or str(Path(sys.executable).parent / "ape")
    out = subprocess.run(
        [ape, "run", "deploy", "--network", "ethereum:local:foundry", *extra],
        cwd=repo_root(), env=env, capture_output=True, text=True, timeout=600,
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        raise DevnetError(f"deploy failed (log {log_path}): {(out.stdout + out.stderr)[-2000:]}")
    return json.loads((deployments_dir / "ethereum-local.json").read_text())
