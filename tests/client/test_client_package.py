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


def test_the_top_level_api_loads_on_first_use() -> None:
    """``import lilypad`` loads nothing of lilypad's subpackages; each public name is the real
    object of its module once asked for; an unknown name is an AttributeError."""
    code = (
        "import sys, lilypad\n"
        "before = sorted(m for m in sys.modules if m.startswith('lilypad.'))\n"
        "from lilypad import run_job, JobRequest, fetch_result, chain_for_client, SolverClient, JobCreatorChain\n"
        "import lilypad.jobcreator.run as r, lilypad.client.chain as c, lilypad.client.solver as s\n"
        "assert (run_job, JobRequest, fetch_result, chain_for_client) == (r.run_job, r.JobRequest, r.fetch_result,"
        " r.chain_for_client)\n"
        "assert (SolverClient, JobCreatorChain) == (s.SolverClient, c.JobCreatorChain)\n"
        "assert set(lilypad.__all__) >= {'run_job', 'JobRequest', 'RunReport', 'deal_status'}\n"
        "try:\n    lilypad.nothing_here\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit(3)\n"
        "print(','.join(before))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == ""
