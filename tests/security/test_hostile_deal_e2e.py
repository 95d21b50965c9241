"""Untrusted code through a real deal: a hostile module offered as a built-in, run by a real
`lilypad resource-provider` for `lilypad run` clients. The sandbox stops each attack, the deal
settles per protocol (the module's failure is its result: accepted and paid), and the same
provider process then runs an honest job."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from lilypad.devnet.network import LocalNetwork

HOSTILE = Path(__file__).resolve().parent / "modules" / "hostile"
MODULES = Path(__file__).resolve().parents[2] / "modules"


def lilypad_run(net: LocalNetwork, data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
    return subprocess.run([exe, "run", *args, "--network", "ethereum:local:foundry", "--solver-url", net.solver_url,
                           "--data-dir", str(data_dir)], env=net.client_env(data_dir), capture_output=True,
                          text=True, timeout=300)


def test_hostile_modules_through_real_deals_leave_the_provider_serving(tmp_path, start_network):
    builtin = tmp_path / "builtin-modules"
    shutil.copytree(MODULES / "cowsay", builtin / "cowsay")
    shutil.copytree(HOSTILE, builtin / "hostile")
    (builtin / "hostile" / "VERSION").write_text("v1.0.0\n")
    with start_network() as net:
        net.env["LILYPAD_BUILTIN_MODULES_DIR"] = str(builtin)  # the provider's and the clients'
        provider = net.add_provider()
        before = net.token_balances()
        for attack, check in (("network", "wget=fail"), ("escape", "write:/etc/escape=fail"), ("memory", None)):
            out = lilypad_run(net, tmp_path / f"client-{attack}", "hostile:v1.0.0", "-i", f"Attack={attack}")
            assert out.returncode == 0, f"{attack}: {out.stdout}{out.stderr}\n{net.logs()}"
            assert "result accepted" in out.stdout, out.stdout
            (result,) = (tmp_path / f"client-{attack}" / "downloaded-files").iterdir()
            if check is not None:
                assert check in (result / "outputs" / "report").read_text(), attack
            else:  # the memory bomb was killed by the memory limit: its (failed) run is its result
                assert (result / "exitCode").read_text() != "0"
            assert provider.alive, f"the provider died during the {attack} attack\n{provider.log_tail()}"
        honest = lilypad_run(net, tmp_path / "client-honest", "cowsay:v0.0.1", "-i", "Message=still serving")
        assert honest.returncode == 0 and "still serving" in honest.stdout + "".join(
            p.read_text() for p in (tmp_path / "client-honest" / "downloaded-files").glob("*/stdout")), honest.stdout
        after = net.token_balances()
        assert after["payments"] == 0  # every deal settled
        assert sum(after.values()) == sum(before.values())
        assert after["provider"] > before["provider"]  # paid for four jobs done
