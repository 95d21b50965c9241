"""The ``lilypad`` command. Heavy imports are deferred so ``--help`` is instant.

One module per command (``run.py`` holds ``run``, ``status`` and ``fetch``);
``options.py`` defines every option several commands share, ``_common.py`` the
click classes that turn a :class:`~lilypad.exceptions.LilypadError` into a clean
error and the invocation's one :class:`~lilypad.settings.LilypadSettings`, kept
in the root context's ``obj`` and passed to what needs it.
"""

from __future__ import annotations

import atexit
import gc
from typing import TYPE_CHECKING

import click

from lilypad.cli._common import LilypadGroup, pass_settings

if TYPE_CHECKING:
    from lilypad.settings import LilypadSettings

__all__ = ["main"]


@click.group(cls=LilypadGroup,
             context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "LILYPAD"})
def main() -> None:
    """lilypad: a trustless marketplace for containerised compute, settled on-chain."""
    # A command that connected to a chain holds ape's and web3's whole object graph;
    # the interpreter's collections while finalizing it took 0.6-1.2 s at every exit
    # (`lilypad run`'s largest fixed cost after connecting). Registered first, so it
    # runs after every other exit handler, just before finalization.
    atexit.register(gc.freeze)


def _register() -> None:
    from lilypad.cli.devnet import devnet
    from lilypad.cli.doctor import doctor
    from lilypad.cli.jobcreator import jobcreator
    from lilypad.cli.mediator import mediator
    from lilypad.cli.module import module
    from lilypad.cli.resource_provider import resource_provider
    from lilypad.cli.run import fetch, run, status
    from lilypad.cli.solver import solver
    from lilypad.cli.twin import twin

    main.add_command(module)
    main.add_command(solver)
    main.add_command(resource_provider)
    main.add_command(mediator)
    main.add_command(run)
    main.add_command(status)
    main.add_command(fetch)
    main.add_command(jobcreator)
    main.add_command(jobcreator, name="bridge")
    main.add_command(doctor)
    main.add_command(devnet)
    main.add_command(twin)


@main.command()
def version() -> None:
    """Print lilypad's version."""
    from lilypad import __version__

    click.echo(f"lilypad {__version__}")


@main.command()
@click.option("--network", default="ethereum:local", show_default=True, help="ECOSYSTEM:NETWORK of the deployment.")
@pass_settings
def addresses(settings: LilypadSettings, network: str) -> None:
    """Print the contract addresses recorded in the deployments file."""
    from lilypad.protocol.deployments import load_deployment

    ecosystem, _, name = network.partition(":")
    deployment = load_deployment(ecosystem, name or "local", settings.deployments_dir)
    click.echo(f"{deployment.ecosystem}:{deployment.network} (chain {deployment.chain_id})")
    for key, address in deployment.contracts.items():
        click.echo(f"  {key:<12} {address}")


_register()
