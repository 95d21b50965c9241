"""lilypad: a trustless two-sided marketplace for containerised compute.

Clients pay tokens to run containerised "modules" on providers' nodes; deals
are settled on-chain. This package is kept free of imports so that the CLI
starts fast: import the subpackages you need (``lilypad.modules``,
``lilypad.results``, ``lilypad.protocol``, ...).

An application runs jobs with the names below (docs/guide-cli.md, "From Python"),
each loaded on first use, none of them importing ape where the node's URL is known:

* :func:`run_job` (a :class:`JobRequest` in, a :class:`RunReport` out; its ``echo`` sees
  every stage), :func:`fetch_result` and :func:`deal_status` for a deal id;
* :class:`SolverClient`, the solver's HTTP API;
* :func:`chain_for_client`, the contracts as a job creator uses them
  (:class:`JobCreatorChain` over web3.py, or ape's connection where only ape knows the node).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> the module that defines it (loaded on first use: PEP 562).
_LAZY = {
    "JobRequest": "lilypad.jobcreator.run",
    "RunReport": "lilypad.jobcreator.run",
    "run_job": "lilypad.jobcreator.run",
    "fetch_result": "lilypad.jobcreator.run",
    "deal_status": "lilypad.jobcreator.run",
    "chain_for_client": "lilypad.jobcreator.run",
    "SolverClient": "lilypad.client.solver",
    "JobCreatorChain": "lilypad.client.chain",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lilypad' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
