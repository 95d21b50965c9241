"""``lilypad resource-provider``: run the resource provider daemon.

Every option has an environment twin (``--solver-url`` and
``LILYPAD_SOLVER_URL``; the key is ``WEB3_PRIVATE_KEY``, the allowlist
``OFFER_MODULES``). Prices are in LP tokens (``1``, ``0.5``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from lilypad.cli._common import LilypadCommand, pass_settings, serve
from lilypad.cli.options import (
    ipfs_options,
    ipfs_sources,
    mediators_option,
    metrics_options,
    payment_collateral_option,
    poll_interval_option,
    price_option,
    required_private_key,
    service_options,
    solver_address_option,
    split_csv,
    trusted_mediators,
)

if TYPE_CHECKING:
    from lilypad.settings import LilypadSettings

__all__ = ["resource_provider"]


@click.command("resource-provider", cls=LilypadCommand)
@service_options("provider", "provider.db, runs, modules")
@click.option("--slots", envvar="LILYPAD_SLOTS", show_envvar=True, type=click.IntRange(min=1), default=1,
              show_default=True, help="Jobs run at once.")
@click.option("--cpu", envvar="LILYPAD_CPU", show_envvar=True, type=click.IntRange(min=0), default=None,
              help="Milli-cores offered per slot (default: detected).")
@click.option("--ram", envvar="LILYPAD_RAM", show_envvar=True, type=click.IntRange(min=0), default=None,
              help="RAM MB offered per slot (default: detected).")
@click.option("--gpu", envvar="LILYPAD_GPU", show_envvar=True, type=click.IntRange(min=0), default=None,
              help="GPUs offered (default: detected).")
@click.option("--disk", envvar="LILYPAD_DISK", show_envvar=True, type=click.IntRange(min=0), default=None,
              help="Disk MB offered (default: detected free space).")
@price_option("Instruction price in LP (fixed price).")
@payment_collateral_option("Payment collateral in LP.")
@click.option("--results-collateral-multiple", envvar="LILYPAD_RESULTS_COLLATERAL_MULTIPLE", show_envvar=True,
              type=click.IntRange(1, 100), default=None,
              help="Results collateral multiple (default: the network's - 2 where mediators are not staked, as on "
                   "a devnet; 40 where they are, as the twin chose: docs/twin.md).")
@click.option("--min-consortium-size", envvar="LILYPAD_MIN_CONSORTIUM_SIZE", show_envvar=True,
              type=click.Choice(["1", "3", "5", "7"]), default=None,
              help="Smallest mediator panel accepted for a deal (default: the network's - 1 where mediators are "
                   "not staked; 3 where they are, so one bribed mediator cannot reject your work).")
@click.option("--mediation-fee", envvar="LILYPAD_MEDIATION_FEE", show_envvar=True, default="1",
              show_default=True, help="Mediation fee in LP.")
@mediators_option()
@click.option("--offer-modules", envvar="OFFER_MODULES", show_envvar=True, default="",
              help="Module allowlist, comma-separated (empty: any module).")
@solver_address_option()
@poll_interval_option(0.5, "Seconds between deal polls.")
@click.option("--offer-ttl", envvar="LILYPAD_OFFER_TTL", show_envvar=True, type=click.IntRange(min=10),
              default=3600, show_default=True, help="Seconds an offer stays open before it is refreshed.")
@click.option("--max-run-attempts", envvar="LILYPAD_MAX_RUN_ATTEMPTS", show_envvar=True, type=click.IntRange(min=1),
              default=3, show_default=True,
              help="Runs of one job that fail (executor errors) before the deal is given up and left to its "
                   "on-chain submit timeout.")
@click.option("--executor", envvar="LILYPAD_EXECUTOR", show_envvar=True, type=click.Choice(["docker", "bacalhau"]),
              default="docker", show_default=True,
              help="Where jobs run: this machine's Docker engine, or the Bacalhau cluster behind --bacalhau-api "
                   "(its connected compute nodes' capacity is offered).")
@click.option("--bacalhau-api", envvar="LILYPAD_BACALHAU_API", show_envvar=True, default=None,
              help="The Bacalhau orchestrator's API, http://HOST:PORT (with --executor bacalhau).")
@click.option("--bacalhau-registry", envvar="LILYPAD_BACALHAU_REGISTRY", show_envvar=True, default=None,
              help="HOST:PORT of the image registry the Bacalhau compute nodes pull from; job images are pushed "
                   "there (with --executor bacalhau).")
@click.option("--bacalhau-local-inputs", envvar="LILYPAD_BACALHAU_LOCAL_INPUTS", show_envvar=True, is_flag=True,
              default=False,
              help="Mount job inputs read-only from this data directory (Bacalhau's local source: the compute nodes "
                   "must see it at the same path and allow it in Compute.AllowListedLocalPaths) instead of sending "
                   "them inline in the job.")
@metrics_options
@ipfs_options
@pass_settings
def resource_provider(settings: LilypadSettings, network: str, solver_url: str, web3_private_key: str | None,
                      data_dir: Path | None, slots: int, cpu: int | None, ram: int | None, gpu: int | None,
                      disk: int | None, price: str,
                      payment_collateral: str, results_collateral_multiple: int | None, min_consortium_size: str | None,
                      mediation_fee: str, mediators: str,
                      offer_modules: str, solver_address: str | None, poll_interval: float, offer_ttl: int,
                      max_run_attempts: int, executor: str, bacalhau_api: str | None, bacalhau_registry: str | None,
                      bacalhau_local_inputs: bool, metrics_port: int | None, metrics_host: str, ipfs_api: str | None,
                      ipfs_gateway: str | None, ipfs_peers: tuple[str, ...], ipfs_timeout: float) -> None:
    """Run a resource provider: offer this machine, run jobs, get paid."""
    from lilypad.protocol.allowlist import Allowlist
    from lilypad.protocol.deal import DealPricing
    from lilypad.protocol.offers import lp
    from lilypad.provider.daemon import ProviderConfig, ResourceProvider

    key = required_private_key(web3_private_key)
    trusted = trusted_mediators(mediators)
    try:
        modules = split_csv(offer_modules)
        Allowlist.parse(list(modules))
        pricing = DealPricing(instruction_price=lp(price), payment_collateral=lp(payment_collateral),
                              results_collateral_multiple=results_collateral_multiple or 2,
                              mediation_fee=lp(mediation_fee))
        config = ProviderConfig(
            network=network, solver_url=solver_url, private_key=key,
            data_dir=data_dir or settings.data_dir / "resource-provider", mediators=trusted, slots=slots,
            cpu=cpu, ram=ram, gpu=gpu, disk=disk, pricing=pricing, modules=modules, solver_address=solver_address,
            results_collateral_multiple=results_collateral_multiple,
            min_consortium_size=int(min_consortium_size) if min_consortium_size else None,
            deployments_dir=settings.deployments_dir, poll_interval=poll_interval, offer_ttl=offer_ttl,
            max_run_attempts=max_run_attempts, metrics_port=metrics_port, metrics_host=metrics_host,
            fault=settings.provider_fault, ipfs=ipfs_sources(ipfs_api, ipfs_gateway, ipfs_peers, ipfs_timeout),
            executor=executor, bacalhau_api=bacalhau_api, bacalhau_registry=bacalhau_registry,
            bacalhau_local_inputs=bacalhau_local_inputs,
        )
        daemon = ResourceProvider(config)
    except (ValueError, ArithmeticError) as err:  # pydantic's ValidationError is a ValueError
        raise click.ClickException(str(err)) from None
    serve(daemon)
