"""``lilypad doctor``: check this node's setup, one line per check, and say what to fix.

Exit status 1 when any check FAILs (warnings do not count). RPC endpoints are
tried in order (``--rpc`` repeatable, or ``LILYPAD_RPC_URLS=url1,url2``); the
first that answers on the deployment's chain id is used and every one is
reported. The account is the address of ``WEB3_PRIVATE_KEY`` (the key is used
only to derive it, never printed) or ``--address``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from lilypad.cli._common import LilypadCommand, pass_settings
from lilypad.cli.options import network_option, split_csv

if TYPE_CHECKING:
    from lilypad.settings import LilypadSettings

__all__ = ["doctor"]


@click.command("doctor", cls=LilypadCommand)
@network_option("ECOSYSTEM:NETWORK[:PROVIDER] whose deployments file is checked.", default="ethereum:local")
@click.option("--rpc", "rpc", multiple=True, metavar="URL",
              help="RPC endpoint, repeatable: tried in order (fail-over). Default: $LILYPAD_RPC_URLS, else the "
                   "network's usual endpoint.")
@click.option("--address", default=None, help="The account to check (default: WEB3_PRIVATE_KEY's address).")
@click.option("--role", type=click.Choice(["resource-provider", "mediator", "solver", "job-creator"]),
              default="resource-provider", show_default=True,
              help="What the node runs: decides which checks apply (Docker, LP balance, allowance).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds to wait for each endpoint.")
@click.option("--ipfs-api", envvar="LILYPAD_IPFS_API", show_envvar=True, default=None,
              help="The node's kubo RPC API to check (it must answer and add + cat a small file).")
@click.option("--bacalhau-api", envvar="LILYPAD_BACALHAU_API", show_envvar=True, default=None,
              help="A provider behind a Bacalhau cluster: check its orchestrator API and compute nodes.")
@click.option("--bacalhau-registry", envvar="LILYPAD_BACALHAU_REGISTRY", show_envvar=True, default=None,
              help="... and the image registry (HOST:PORT) its compute nodes pull from.")
@pass_settings
def doctor(settings: LilypadSettings, network: str, rpc: tuple[str, ...], address: str | None, role: str,
           timeout: float, ipfs_api: str | None, bacalhau_api: str | None, bacalhau_registry: str | None) -> None:
    """Check this node's setup: Docker, GPUs, the Go template helper, kubo (IPFS), a Bacalhau cluster, RPC,
    contracts, balances, allowance."""
    from lilypad.doctor import DoctorConfig, exit_code, run_doctor
    from lilypad.doctor.checks import Status

    parts = network.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        if len(parts) == 1 and parts[0]:
            parts = [parts[0], "local"]
        else:
            raise click.ClickException(f"--network {network!r}: expected ECOSYSTEM:NETWORK, e.g. ethereum:local")
    urls = list(rpc) or list(split_csv(settings.rpc_urls))
    bad = [u for u in urls if not u.startswith(("http://", "https://"))]
    if bad:
        raise click.ClickException(f"not an http(s) RPC URL: {', '.join(bad)}")
    if address is not None:
        from eth_utils import is_address, to_checksum_address

        if not is_address(address):
            raise click.ClickException(f"--address {address!r} is not an address")
        address = to_checksum_address(address)
    else:
        key = (settings.private_key or "").strip()
        if key:
            from eth_account import Account

            try:
                address = Account.from_key(key).address
            except Exception:  # eth-account raises several types; never echo the key
                raise click.ClickException("WEB3_PRIVATE_KEY is not a valid private key") from None
    results = run_doctor(DoctorConfig(ecosystem=parts[0], network=parts[1], rpc_urls=urls, address=address,
                                      role=role, deployments_dir=settings.deployments_dir, timeout=timeout,
                                      ipfs_api=ipfs_api, bacalhau_api=bacalhau_api,
                                      bacalhau_registry=bacalhau_registry))
    for result in results:
        click.echo(result.line())
    failed = sum(r.status == Status.FAIL for r in results)
    warned = sum(r.status == Status.WARN for r in results)
    click.echo(f"{len(results)} checks: {failed} failed, {warned} warnings")
    raise SystemExit(exit_code(results))
