"""`lilypad --help` stays instant: every command's help loads click and lilypad's CLI
modules only (ape, web3, pydantic, docker... are imported when a command runs)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, sys
    import click
    from lilypad.cli import main

    def paths(group, prefix):
        for name, command in sorted(group.commands.items()):
            yield [*prefix, name]
            if isinstance(command, click.Group):
                yield from paths(command, [*prefix, name])

    shown = 0
    for path in [[], *paths(main, [])]:
        try:
            main.main([*path, "--help"], prog_name="lilypad", standalone_mode=False)
        except SystemExit:
            pass
        shown += 1
    third_party = sorted({m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names))
    ours = sorted(m for m in sys.modules if m.startswith("lilypad."))
    print(json.dumps({"shown": shown, "third_party": third_party, "ours": ours}))
""")


def test_every_help_imports_only_click_and_the_cli():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["shown"] > 15  # the root, every command and subcommand
    heavy = [m for m in out["third_party"] if m != "click" and not m.startswith(("_", "lilypad"))]
    assert not heavy, f"--help imported {heavy}"
    modules = [m for m in out["ours"] if not m.startswith("lilypad.cli") and m != "lilypad.exceptions"]
    assert not modules, f"--help imported {modules}"
