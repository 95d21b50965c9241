"""``make demo``: ``lilypad devnet up`` (a supervised local network of real processes in a
temporary data directory), then two cowsay jobs: one through ``lilypad run`` as a CLI user,
one from a smart contract (``ape run contract_job``: an ``ExampleClient`` calls ``runJob``; a
relayer, ``lilypad jobcreator``, carries the job to the market; the job creator contract delivers
the result CID it reads from the chain to ``submitResults`` and returns the payer's change);
then who was paid what, then ``lilypad devnet down``.

    python -m lilypad.devnet.demo [MESSAGE]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from lilypad.devnet.network import lilypad_exe, token_balances
from lilypad.devnet.processes import repo_root
from lilypad.devnet.state import DevnetState

__all__ = ["main"]


def _lp(amount: int) -> str:
    return f"{amount / 10**18:+.4f} LP"


def _devnet(root: Path, *args: str) -> int:
    return subprocess.run([lilypad_exe(), "devnet", *args, "--data-dir", str(root)], timeout=600).returncode


def _down(root: Path) -> None:
    """``lilypad devnet down``, in this process: stopping must not depend on the CLI starting."""
    from lilypad.devnet.control import down
    from lilypad.exceptions import DevnetError

    try:
        for note in down(root):
            print(f"devnet: {note}")
    except DevnetError as err:
        print(f"devnet: {err}", file=sys.stderr)


def _failed(what: str, root: Path, code: int) -> int:
    print(f"\ndemo: {what} failed; the last lines of each component's log:", file=sys.stderr)
    _devnet(root, "logs", "-n", "25")
    return code or 1


def main(argv: list[str] | None = None) -> int:
    message = " ".join(argv if argv is not None else sys.argv[1:]) or "Hello from the lilypad demo!"
    root = Path(tempfile.mkdtemp(prefix="lilypad-demo-")) / "devnet"
    print(f"demo: lilypad devnet up --data-dir {root}  (anvil, the contracts, kubo nodes, solver, provider, "
          "mediator, relayer)")
    code = _devnet(root, "up", "--providers", "1", "--slots", "2")
    if code != 0:
        return _failed("lilypad devnet up", root, code) if (root / "devnet.json").exists() else code
    try:
        state = DevnetState.load(root)
        if state is None:  # `devnet up` succeeded, so this is a bug, not a user's mistake
            return _failed("lilypad devnet up (no devnet.json)", root, 1)
        env = state.client_env()
        print("\ndemo: running the job as a CLI user would:")
        print(f'demo: lilypad run cowsay:v0.0.1 -i Message="{message}"\n')
        before = token_balances(state.rpc_url, Path(state.deployments_dir))
        client_dir = root.parent / "client"
        result = subprocess.run(
            [lilypad_exe(), "run", "cowsay:v0.0.1", "-i", f"Message={message}", "--data-dir", str(client_dir)],
            env={**os.environ, **env, "LILYPAD_DATA_DIR": str(client_dir)}, timeout=300,
        )
        if result.returncode != 0:
            return _failed("the CLI job", root, result.returncode)
        if "LILYPAD_IPFS_API" in env:
            print(f"\ndemo: the provider pinned the result on its kubo node; the job creator's node "
                  f"({env['LILYPAD_IPFS_API']}) fetched it by its on-chain CID (the 'fetched from' line above says "
                  "whether IPFS or the solver's fallback store served it)")
        for stdout in (client_dir / "downloaded-files").glob("*/stdout"):
            print(f"\ndemo: {stdout}:\n{stdout.read_text()}")
        print("demo: now from a smart contract: ape run contract_job (ExampleClient.runCowsay -> runJob: the "
              "deposit into escrow -> a relayer -> the deal -> submitResults with the chain's result and the change "
              "back)\n")
        chain_env = {k: v for k, v in env.items() if k != "WEB3_PRIVATE_KEY"}
        contract_job = subprocess.run(
            [str(Path(sys.executable).parent / "ape"), "run", "contract_job", "--network", "ethereum:local:foundry",
             "--message", f"{message} (from a contract)"],
            env={**os.environ, **chain_env}, cwd=repo_root(), timeout=300,
        )
        if contract_job.returncode != 0:
            return _failed("the smart-contract job", root, contract_job.returncode)
        after = token_balances(state.rpc_url, Path(state.deployments_dir))
        print("demo: who was paid what (LP):")
        labels = {"job_creator": "job creator (paid for both jobs: each one's cost, plus the relayer's fee)",
                  "provider": "resource provider (ran both jobs)", "mediator": "mediator",
                  "bridge": "relayer (fronted nothing; earned its fee)",
                  "payments": "Payments contract (escrow: must be back to 0)",
                  "job_creator_contract": "OnChainJobCreator contract (escrow: must be back to 0)"}
        for name, label in labels.items():
            print(f"  {_lp(after[name] - before[name]):>14}  {label}")
        return 0
    finally:
        print(f"\ndemo: lilypad devnet down --data-dir {root}")
        _down(root)
        print(f"demo: logs kept in {root / 'logs'}")


if __name__ == "__main__":
    raise SystemExit(main())
