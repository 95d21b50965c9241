"""``lilypad mediator``: run the mediator daemon (re-runs checked jobs and judges them).

Options have environment twins (``LILYPAD_SOLVER_URL``, ``WEB3_PRIVATE_KEY``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from lilypad.cli._common import LilypadCommand, pass_settings, serve
from lilypad.cli.options import (
    ipfs_options,
    ipfs_sources,
    metrics_options,
    poll_interval_option,
    required_private_key,
    service_options,
    split_csv,
)

if TYPE_CHECKING:
    from lilypad.settings import LilypadSettings

__all__ = ["mediator"]


@click.command("mediator", cls=LilypadCommand)
@service_options("mediator", "mediator.db, runs, modules")
@click.option("--modules", envvar="LILYPAD_MEDIATOR_MODULES", show_envvar=True, default="",
              help="Modules it re-runs, comma-separated (empty: any).")
@click.option("--reruns", envvar="LILYPAD_MEDIATOR_RERUNS", show_envvar=True, type=click.IntRange(min=2, max=5),
              default=2, show_default=True,
              help="Re-runs of each checked job, at least (a module may ask for more; two runs that disagree "
                   "show the job is non-deterministic).")
@click.option("--stake", envvar="LILYPAD_MEDIATOR_STAKE", show_envvar=True, default="0", show_default=True,
              help="LP to hold staked in the mediator registry: on start, register or add stake up to this "
                   "much (0: leave the stake as it is).")
@poll_interval_option(0.5, "Seconds between deal polls.")
@metrics_options
@ipfs_options
@pass_settings
def mediator(settings: LilypadSettings, network: str, solver_url: str, web3_private_key: str | None,
             data_dir: Path | None, modules: str, reruns: int, stake: str, poll_interval: float,
             metrics_port: int | None, metrics_host: str, ipfs_api: str | None, ipfs_gateway: str | None,
             ipfs_peers: tuple[str, ...], ipfs_timeout: float) -> None:
    """Run a mediator: re-run checked jobs and accept or reject their results."""
    from lilypad.mediator.daemon import Mediator, MediatorConfig
    from lilypad.protocol.allowlist import Allowlist
    from lilypad.protocol.offers import lp

    key = required_private_key(web3_private_key)
    try:
        entries = split_csv(modules)
        Allowlist.parse(list(entries))
        stake_units = lp(stake)
        if stake_units < 0:
            raise ValueError(f"--stake {stake}: a stake cannot be negative")
        config = MediatorConfig(network=network, solver_url=solver_url, private_key=key,
                                data_dir=data_dir or settings.data_dir / "mediator", modules=entries, min_reruns=reruns,
                                deployments_dir=settings.deployments_dir, poll_interval=poll_interval,
                                metrics_port=metrics_port, metrics_host=metrics_host, stake=stake_units,
                                fault=settings.mediator_fault,
                                ipfs=ipfs_sources(ipfs_api, ipfs_gateway, ipfs_peers, ipfs_timeout))
        daemon = Mediator(config)
    except (ValueError, ArithmeticError) as err:  # lp() of a non-number: decimal.InvalidOperation
        raise click.ClickException(str(err)) from None
    serve(daemon)
