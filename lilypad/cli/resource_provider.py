"""``lilypad resource-provider``: run the resource provider daemon.

Every option has an environment twin (``--solver-url`` and
``LILYPAD_SOLVER_URL``; the key is ``WEB3_PRIVATE_KEY``, the allowlist
``OFFER_MODULES``). Prices are in LP tokens (``1``, ``0.5``).
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import click

from lilypad.cli.options import service_options

__all__ = ["resource_provider"]


def metrics_options(func: Any) -> Any:
    """``--metrics-port`` / ``--metrics-host``: where a daemon serves ``/metrics`` and ``/health``."""
    func = click.option("--metrics-host", envvar="LILYPAD_METRICS_HOST", show_envvar=True, default="127.0.0.1",
                        show_default=True, help="Address the metrics server listens on (0.0.0.0: all).")(func)
    return click.option("--metrics-port", envvar="LILYPAD_METRICS_PORT", show_envvar=True,
                        type=click.IntRange(0, 65535), default=None,
                        help="Serve Prometheus /metrics and /health on this port (default: off; the packaged "
                             "units use 9101 for a provider, 9102 for a mediator).")(func)


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


@click.command("resource-provider")
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
@click.option("--price", envvar="LILYPAD_PRICE", show_envvar=True, default="1", show_default=True,
              help="Instruction price in LP (fixed price).")
@click.option("--payment-collateral", envvar="LILYPAD_PAYMENT_COLLATERAL", show_envvar=True, default="2",
              show_default=True, help="Payment collateral in LP.")
@click.option("--results-collateral-multiple", envvar="LILYPAD_RESULTS_COLLATERAL_MULTIPLE", show_envvar=True,
              type=click.IntRange(1, 100), default=2, show_default=True, help="Results collateral multiple.")
@click.option("--mediation-fee", envvar="LILYPAD_MEDIATION_FEE", show_envvar=True, default="1",
              show_default=True, help="Mediation fee in LP.")
@click.option("--mediators", envvar="LILYPAD_MEDIATORS", show_envvar=True, default="",
              help="Trusted mediator addresses, comma-separated (at least one).")
@click.option("--offer-modules", envvar="OFFER_MODULES", show_envvar=True, default="",
              help="Module allowlist, comma-separated (empty: any module).")
@click.option("--solver-address", envvar="LILYPAD_SOLVER_ADDRESS", show_envvar=True, default=None,
              help="The solver's address offers name (default: from the solver's /health).")
@click.option("--poll-interval", envvar="LILYPAD_POLL_INTERVAL", show_envvar=True,
              type=click.FloatRange(min=0.05), default=0.5, show_default=True, help="Seconds between deal polls.")
@click.option("--offer-ttl", envvar="LILYPAD_OFFER_TTL", show_envvar=True, type=click.IntRange(min=10),
              default=3600, show_default=True, help="Seconds an offer stays open before it is refreshed.")
@click.option("--max-run-attempts", envvar="LILYPAD_MAX_RUN_ATTEMPTS", show_envvar=True, type=click.IntRange(min=1),
              default=3, show_default=True,
              help="Runs of one job that fail (executor errors) before the deal is given up and left to its "
                   "on-chain submit timeout.")
@metrics_options
def resource_provider(network: str, solver_url: str, web3_private_key: str | None, data_dir: Path | None,
                      slots: int, cpu: int | None, ram: int | None, gpu: int | None, disk: int | None, price: str,
                      payment_collateral: str, results_collateral_multiple: int, mediation_fee: str, mediators: str,
                      offer_modules: str, solver_address: str | None, poll_interval: float, offer_ttl: int,
                      max_run_attempts: int, metrics_port: int | None, metrics_host: str) -> None:
    """Run a resource provider: offer this machine, run jobs, get paid."""
    from eth_utils import is_address
    from pydantic import ValidationError

    from lilypad.exceptions import LilypadError
    from lilypad.modules.allowlist import Allowlist
    from lilypad.protocol.deal import DealPricing
    from lilypad.provider.daemon import ProviderConfig, ResourceProvider
    from lilypad.settings import get_settings
    from lilypad.solver.offers import lp

    if not web3_private_key:
        raise click.ClickException("no private key: pass --web3-private-key or set WEB3_PRIVATE_KEY")
    trusted = _split(mediators)
    if not trusted:
        raise click.ClickException("name at least one trusted mediator: --mediators or LILYPAD_MEDIATORS")
    bad = [m for m in trusted if not is_address(m)]
    if bad:
        raise click.ClickException(f"not an address: {', '.join(bad)}")
    try:
        modules = _split(offer_modules)
        Allowlist.parse(list(modules))
        pricing = DealPricing(instruction_price=lp(price), payment_collateral=lp(payment_collateral),
                              results_collateral_multiple=results_collateral_multiple,
                              mediation_fee=lp(mediation_fee))
        config = ProviderConfig(
            network=network, solver_url=solver_url, private_key=web3_private_key,
            data_dir=data_dir or get_settings().data_dir / "resource-provider", mediators=trusted, slots=slots,
            cpu=cpu, ram=ram, gpu=gpu, disk=disk, pricing=pricing, modules=modules, solver_address=solver_address,
            poll_interval=poll_interval, offer_ttl=offer_ttl, max_run_attempts=max_run_attempts,
            metrics_port=metrics_port, metrics_host=metrics_host,
        )
        daemon = ResourceProvider(config)
    except (LilypadError, ValidationError, ValueError, ArithmeticError) as err:
        raise click.ClickException(str(err)) from None
    _serve(daemon)


def _serve(daemon: object) -> None:
    """Run ``daemon`` until SIGINT/SIGTERM; errors as ClickException."""
    from lilypad.exceptions import LilypadError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: daemon.stop())  # type: ignore[attr-defined]
    try:
        daemon.run()  # type: ignore[attr-defined]
    except LilypadError as err:
        raise click.ClickException(str(err)) from None
