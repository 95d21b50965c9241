"""``make demo``: a local network of real processes, then two cowsay jobs: one through
``lilypad run`` as a CLI user, one from a smart contract (``ape run contract_job``: an
``ExampleClient`` calls ``runJob``; the bridge, ``lilypad jobcreator``, delivers the result
CID to its ``submitResults``); then who was paid what.

    python -m lilypad.devnet.demo [MESSAGE]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lilypad.devnet.network import LocalNetwork
from lilypad.devnet.processes import repo_root

__all__ = ["main"]


def _lp(amount: int) -> str:
    return f"{amount / 10**18:+.4f} LP"


def main(argv: list[str] | None = None) -> int:
    message = " ".join(argv if argv is not None else sys.argv[1:]) or "Hello from the lilypad demo!"
    root = Path(tempfile.mkdtemp(prefix="lilypad-demo-"))
    print(f"demo: starting anvil, deploying the contracts and starting the solver (state in {root})")
    net = LocalNetwork.start(root)
    try:
        net.add_provider("provider", "--slots", "2")
        net.add_mediator()
        net.add_bridge()
        print("demo: resource provider, mediator and bridge (lilypad jobcreator) started; "
              "running the job as a CLI user would:")
        print(f'demo: lilypad run cowsay:v0.0.1 -i Message="{message}"\n')
        before = net.token_balances()
        exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
        client_dir = root / "client"
        result = subprocess.run(
            [exe, "run", "cowsay:v0.0.1", "-i", f"Message={message}", "--network", "ethereum:local:foundry",
             "--solver-url", net.solver_url, "--data-dir", str(client_dir)],
            env=net.client_env(client_dir), timeout=300,
        )
        if result.returncode != 0:
            print("\ndemo: the job failed; component logs:\n" + net.logs(), file=sys.stderr)
            return result.returncode
        for stdout in (client_dir / "downloaded-files").glob("*/stdout"):
            print(f"\ndemo: {stdout}:\n{stdout.read_text()}")
        print("demo: now from a smart contract: ape run contract_job (ExampleClient.runCowsay -> runJob -> "
              "the bridge -> submitResults)\n")
        contract_job = subprocess.run(
            [str(Path(sys.executable).parent / "ape"), "run", "contract_job", "--network", "ethereum:local:foundry",
             "--message", f"{message} (from a contract)"],
            env={**os.environ, **net.env}, cwd=repo_root(), timeout=300,
        )
        if contract_job.returncode != 0:
            print("\ndemo: the smart-contract job failed; component logs:\n" + net.logs(), file=sys.stderr)
            return contract_job.returncode
        for stdout in (root / "bridge" / "downloaded-files").glob("*/stdout"):
            print(f"\ndemo: the bridge verified the contract's result before delivering it ({stdout}):\n"
                  f"{stdout.read_text()}")
        after = net.token_balances()
        print("demo: who was paid what (LP):")
        labels = {"job_creator": "job creator (paid for both jobs: the CLI deal and the contract's deposit)",
                  "provider": "resource provider (ran both jobs)", "mediator": "mediator",
                  "bridge": "bridge (paid the contract job's deal, repaid from its deposit)",
                  "payments": "Payments contract (escrow: must be back to 0)",
                  "job_creator_contract": "OnChainJobCreator contract (escrow: must be back to 0)"}
        for name, label in labels.items():
            print(f"  {_lp(after[name] - before[name]):>14}  {label}")
        return 0
    finally:
        net.stop()
        print(f"demo: stopped everything it started (logs in {root / 'logs'})")


if __name__ == "__main__":
    raise SystemExit(main())
