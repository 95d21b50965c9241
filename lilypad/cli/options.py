"""Options the long-running services share (``resource-provider``, ``mediator``, ``jobcreator``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

__all__ = ["service_options"]


def service_options(role: str, state: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--network``, ``--solver-url``, ``--web3-private-key`` and ``--data-dir``,
    with their environment twins; ``role`` and ``state`` go into the help."""
    decorators = [
        click.option("--network", envvar="LILYPAD_NETWORK", show_envvar=True, default="ethereum:local:foundry",
                     show_default=True, help="ape network choice (ECOSYSTEM:NETWORK:PROVIDER)."),
        click.option("--solver-url", envvar="LILYPAD_SOLVER_URL", show_envvar=True, default="http://127.0.0.1:8080",
                     show_default=True, help="The solver's base URL."),
        click.option("--web3-private-key", envvar="WEB3_PRIVATE_KEY", show_envvar=True, default=None,
                     help=f"The {role}'s private key (never logged)."),
        click.option("--data-dir", envvar="LILYPAD_DATA_DIR", show_envvar=True, default=None,
                     type=click.Path(file_okay=False, path_type=Path), help=f"State directory ({state})."),
    ]

    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply
