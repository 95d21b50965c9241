"""lilypad.client is a client, not the server: importing it loads nothing of lilypad.solver."""

from __future__ import annotations

import subprocess
import sys


def test_the_client_loads_nothing_of_the_solver_server() -> None:
    code = (
        "import sys\n"
        "import lilypad.client as c\n"
        "import lilypad.client.solver, lilypad.client.views\n"
        "[getattr(c, name) for name in c.__all__]\n"
        "c.SolverClient('http://127.0.0.1:1').close()\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('lilypad.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = out.strip().split(",")
    assert {"lilypad.client", "lilypad.client.solver", "lilypad.client.views"} <= set(loaded)
    assert [m for m in loaded if m == "lilypad.solver" or m.startswith("lilypad.solver.")] == []
