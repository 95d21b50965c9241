"""``make demo``: a local network of real processes, then a cowsay job through ``lilypad run``.

    python -m lilypad.devnet.demo [MESSAGE]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lilypad.devnet.network import LocalNetwork

__all__ = ["main"]


def _lp(amount: int) -> str:
    return f"{amount / 10**18:+.4f} LP"


def main(argv: list[str] | None = None) -> int:
    message = " ".join(argv if argv is not None else sys.argv[1:]) or "Hello from the lilypad demo!"
    root = Path(tempfile.mkdtemp(prefix="lilypad-demo-"))
    print(f"demo: starting anvil, deploying the contracts and starting the solver (state in {root})")
    net = LocalNetwork.start(root)
    try:
        net.add_provider()
        net.add_mediator()
        print("demo: resource provider and mediator started; running the job as a CLI user would:")
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
        after = net.token_balances()
        print("demo: who was paid what (LP):")
        for name in ("job_creator", "provider", "mediator", "payments"):
            print(f"  {name:<12} {_lp(after[name] - before[name])}")
        return 0
    finally:
        net.stop()
        print(f"demo: stopped everything it started (logs in {root / 'logs'})")


if __name__ == "__main__":
    raise SystemExit(main())
