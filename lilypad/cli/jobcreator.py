"""``lilypad jobcreator`` (alias ``lilypad bridge``): relay smart-contract jobs.

    lilypad jobcreator --network ethereum:local:foundry --solver-url http://127.0.0.1:8080
    lilypad jobcreator status [--json]

The key is ``--web3-private-key`` / ``WEB3_PRIVATE_KEY`` (never logged) or
``--account``: any account relays (no role, no float: ``LilypadOnChainJobCreator``
escrows each deal from its job's deposit); it needs only gas, and earns the relayer
fee of each job whose delivering deal it agreed.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from lilypad.cli._common import LilypadGroup, cli_settings, serve
from lilypad.cli.options import (
    account_option,
    data_dir_option,
    mediators_option,
    metrics_options,
    poll_interval_option,
    service_options,
    signer,
    solver_address_option,
    trusted_mediators,
)

__all__ = ["jobcreator"]


def _state_dir(data_dir: Path | None) -> Path:
    return data_dir if data_dir is not None else cli_settings().data_dir / "jobcreator"


_STATE = "bridge.db, events cursor, module cache, downloads"


@click.group("jobcreator", cls=LilypadGroup, invoke_without_command=True)
@service_options("bridge", _STATE)
@account_option("Sign as this ape account alias (passphrase from APE_ACCOUNTS_<alias>_PASSPHRASE), "
                "or TEST::n on a local network.")
@mediators_option()
@solver_address_option()
@click.option("--confirmations", envvar="LILYPAD_CONFIRMATIONS", show_envvar=True, type=click.IntRange(min=0),
              default=0, show_default=True, help="Blocks a JobAdded must be buried under before it is handled.")
@click.option("--max-attempts", envvar="LILYPAD_BRIDGE_MAX_ATTEMPTS", show_envvar=True,
              type=click.IntRange(min=1), default=8, show_default=True,
              help="Tries of a failing step (other than RPC/solver outages) before the job fails.")
@poll_interval_option(0.25, "Seconds between rounds.")
@metrics_options
@click.pass_context
def jobcreator(ctx: click.Context, network: str, solver_url: str, web3_private_key: str | None,
               account: str | None, data_dir: Path | None, mediators: str, solver_address: str | None,
               confirmations: int, max_attempts: int,
               poll_interval: float, metrics_port: int | None, metrics_host: str) -> None:
    """Relay smart-contract jobs: JobAdded on-chain -> a deal on the market -> the contract delivers the result.

    Anyone may run one (no role, no client money): the job creator contract escrows the deposit,
    binds each deal to its job and delivers the result it reads from the chain."""
    if ctx.invoked_subcommand is not None:
        return
    from lilypad.jobcreator.bridge.daemon import Bridge, BridgeConfig

    settings = cli_settings(ctx)
    key = signer(web3_private_key, account)
    trusted = trusted_mediators(mediators)
    try:
        config = BridgeConfig(network=network, solver_url=solver_url, private_key=key,
                              data_dir=_state_dir(data_dir), mediators=trusted, solver_address=solver_address,
                              deployments_dir=settings.deployments_dir, fault=settings.bridge_fault,
                              confirmations=confirmations, max_attempts=max_attempts,
                              poll_interval=poll_interval, metrics_port=metrics_port, metrics_host=metrics_host)
        daemon = Bridge(config)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    serve(daemon)


@jobcreator.command("status")
@data_dir_option(f"State directory ({_STATE}).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Newest jobs shown.")
@click.argument("job_id", required=False, type=int)
def status(data_dir: Path | None, as_json: bool, limit: int, job_id: int | None) -> None:
    """List the bridge's jobs and their states (or one job with its history)."""
    from lilypad.jobcreator.bridge.store import BridgeJobStore

    path = _state_dir(data_dir) / "bridge.db"
    if not path.is_file():
        raise click.ClickException(f"no bridge state at {path} (pass the bridge's --data-dir)")
    with BridgeJobStore(path) as store:
        if job_id is not None:
            job = store.get(job_id)
            if job is None:
                raise click.ClickException(f"the bridge has not seen job {job_id}")
            view = job.view() | {"history": [{"at": a, "state": s, "reason": r} for a, s, r in store.history(job_id)]}
            if as_json:
                click.echo(json.dumps(view, indent=2))
                return
            for key, value in view.items():
                if key != "history":
                    click.echo(f"{key:<12} {value}")
            for entry in view["history"]:
                click.echo(f"  {entry['state']:<13} {entry['reason']}")
            return
        jobs = store.all(limit=limit)
        counts = store.counts()
    if as_json:
        click.echo(json.dumps({"counts": counts, "jobs": [j.view() for j in jobs]}, indent=2))
        return
    click.echo("jobs: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"))
    for j in jobs:
        detail = j.data.get("reason") or j.data.get("result_cid") or j.data.get("deal_id") or ""
        click.echo(f"{j.job_id:>6}  {j.state.value:<13} {j.module:<24} {detail}")
