"""Input files end to end, signed by an ape keyfile account: every component a real process.

`lilypad run stats:v0.0.1 --inputs-path DIR --account ALIAS --mediate` against `lilypad solver`,
`lilypad resource-provider` and `lilypad mediator` processes on anvil: the job creator signs the
offer (with the input files' CID) and the upload with its keyfile account, the provider and the
mediator download and verify the files and mount them at /inputs, and the result - which the
mediator reproduces - is computed from them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from e2e_support import JOB_CREATOR, address_of, run_env  # type: ignore[import-not-found]

from lilypad.devnet.processes import dev_private_key
from lilypad.results.cid import directory_cid

ALIAS = "e2ecreator"
PASSPHRASE = "e2e passphrase"


def test_inputs_path_with_an_ape_account_runs_and_is_mediated(network, tmp_path):
    network.add_provider("provider")
    network.add_mediator()
    before = network.token_balances()

    client_dir = tmp_path / "client"
    env = run_env(network, client_dir)
    env.pop("WEB3_PRIVATE_KEY", None)
    env["APE_DATA_FOLDER"] = str(tmp_path / "ape-data")
    imported = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom ape_accounts import import_account_from_private_key\n"
         "print(import_account_from_private_key(sys.argv[1], sys.argv[2], sys.argv[3]).address)",
         ALIAS, PASSPHRASE, dev_private_key(JOB_CREATOR)], env=env, capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip().splitlines()[-1] == address_of(JOB_CREATOR)
    env[f"APE_ACCOUNTS_{ALIAS}_PASSPHRASE"] = PASSPHRASE

    files = tmp_path / "inputs"
    (files / "more").mkdir(parents=True)
    (files / "numbers.txt").write_text("10\n20\n30\n60\n")
    (files / "text.txt").write_text("files reached the container\n")
    (files / "more" / "unused.bin").write_bytes(bytes(range(256)) * 100)
    cid = directory_cid(files)

    exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
    out = subprocess.run(
        [exe, "run", "stats:v0.0.1", "--inputs-path", str(files), "--account", ALIAS, "--mediate",
         "--network", "ethereum:local:foundry", "--solver-url", network.solver_url, "--data-dir", str(client_dir)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr + network.logs()
    assert f"input files {cid} uploaded" in out.stderr
    assert dev_private_key(JOB_CREATOR)[2:] not in out.stdout + out.stderr

    downloaded = next((client_dir / "downloaded-files").iterdir())
    stdout = (downloaded / "stdout").read_text()
    assert "count=4 sum=120.0 mean=30.0" in stdout, stdout
    assert re.search(r"words: total=4 unique=4", stdout), stdout
    assert (downloaded / "exitCode").read_text() == "0"

    after = network.token_balances()
    assert after["provider"] > before["provider"], "mediation accepted the result: the provider is paid"
    assert after["mediator"] > before["mediator"], "the mediator re-ran it from the same input files"
    assert after["payments"] == 0
    for name in ("provider", "mediator"):
        log = network.processes[name].log_path.read_text(errors="replace")
        assert dev_private_key(JOB_CREATOR)[2:] not in log
    assert cid in network.processes["provider"].log_path.read_text(errors="replace"), \
        "the provider logged the inputs CID it ran with"
