"""``lilypad run``, ``lilypad status`` and ``lilypad fetch``: the job creator's commands.

    lilypad run cowsay:v0.0.1 -i Message=moo --network ethereum:local:foundry
    lilypad status 0x<deal id>
    lilypad fetch 0x<deal id>

Every option has a ``LILYPAD_*`` environment twin (shown in ``--help``); the
key is ``--web3-private-key`` or ``WEB3_PRIVATE_KEY`` (never printed), or
``--account ALIAS``: an ape account (``ape accounts import ALIAS``; a keyfile
account's passphrase from ``APE_ACCOUNTS_<ALIAS>_PASSPHRASE`` or, at a
terminal, a prompt), or ``TEST::n`` on a local network. Bad input ends with a one-line error
(no traceback); Ctrl-C ends with a message saying what happens to the offer or
deal, and exit status 130.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from lilypad.cli._common import LilypadCommand, LilypadGroup, cli_settings
from lilypad.cli.options import (
    account_option,
    data_dir_option,
    env_option,
    ipfs_options,
    ipfs_sources,
    mediation_chance_option,
    mediators_option,
    network_option,
    payment_collateral_option,
    price_option,
    private_key_option,
    signer,
    solver_address_option,
    solver_url_option,
)

__all__ = ["fetch", "run", "status"]


_network = network_option("ape network choice ECOSYSTEM:NETWORK:PROVIDER (anvil: ethereum:local:foundry "
                          "with APE_FOUNDRY_HOST).")


_data_dir = data_dir_option("lilypad's local state (default /tmp/lilypad/data); results land in "
                            "<data-dir>/downloaded-files/<deal id>/.")


@contextmanager
def _errors() -> Iterator[None]:
    """ape's and web3's errors -> one-line ClickException; Ctrl-C -> exit 130 (a
    LilypadError is left to the command class, :class:`~lilypad.cli._common.LilypadCommand`)."""
    from lilypad.exceptions import JobInterruptedError

    try:
        yield
    except JobInterruptedError as exc:
        click.echo(f"\nInterrupted at stage {exc.stage!r}: {exc.message}", err=True)
        raise click.exceptions.Exit(130) from None
    except KeyboardInterrupt:
        click.echo("\nInterrupted.", err=True)
        raise click.exceptions.Exit(130) from None
    except (click.ClickException, click.exceptions.Exit):
        raise
    except Exception as exc:
        if type(exc).__module__.startswith(("ape", "web3", "eth_")):
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
        raise


def _quiet_ape() -> None:
    """ape logs every confirmed transaction at INFO on stdout; keep stdout for results."""
    try:
        from ape.logging import logger

        logger.set_level("WARNING")
    except Exception:  # ape missing or its logging API changed: only noisier
        pass


def _data_root(data_dir: Path | None) -> Path:
    return data_dir if data_dir is not None else cli_settings().data_dir


def _connected(network: str) -> Any:
    """The chain for ``network`` as a job creator reads it (the lean client where the node's URL is
    known, :func:`lilypad.jobcreator.run.chain_for_client`)."""
    from lilypad.jobcreator.run import chain_for_client

    return chain_for_client(network, settings=cli_settings())


def _tokens(value: str, what: str) -> int:
    from lilypad.protocol.offers import lp

    try:
        amount = lp(value)
    except (ValueError, ArithmeticError):
        raise click.BadParameter(f"{value!r} is not an amount of LP (e.g. 1 or 0.5)", param_hint=what) from None
    if amount <= 0:
        raise click.BadParameter("must be positive", param_hint=what)
    return amount


def _mediators(values: tuple[str, ...]) -> tuple[str, ...]:
    found = tuple(part.strip() for value in values for part in value.replace(" ", ",").split(",") if part.strip())
    if not found:
        raise click.UsageError("name at least one mediator you trust: --mediators 0x... (or LILYPAD_MEDIATORS)")
    return found


# --------------------------------------------------------------------------
# lilypad run
# --------------------------------------------------------------------------


@click.command(cls=LilypadCommand)
@click.argument("module")
@env_option("-i", "--input", "inputs", envvar="LILYPAD_INPUTS", multiple=True, metavar="KEY=VALUE",
            help="A module input (repeatable).")
@_network
@solver_url_option
@solver_address_option("The solver's address (default: the solver's /health 'solver').")
@env_option("-t", "--target", envvar="LILYPAD_TARGET", default=None,
            help="Only this resource provider may take the job.")
@private_key_option("The job creator's private key (never printed).",
                    envvar=["WEB3_PRIVATE_KEY", "LILYPAD_WEB3_PRIVATE_KEY"])
@account_option("An ape account alias (passphrase from APE_ACCOUNTS_<ALIAS>_PASSPHRASE, or prompted), or TEST::n "
                "on a devnet, instead of a key.")
@mediators_option(repeatable=True)
@env_option("--inputs-path", envvar="LILYPAD_INPUTS_PATH", type=click.Path(file_okay=False, path_type=Path),
            default=None, help="Directory of input files, mounted read-only at /inputs (each file at most 10 MB, "
                               "no links); uploaded to the solver for the job offer, which signs their CID.")
@env_option("--mediate/--no-mediate", envvar="LILYPAD_MEDIATE", default=False, show_default=True,
            help="Always send the result to mediation.")
@env_option("--consortium-size", envvar="LILYPAD_CONSORTIUM_SIZE", type=click.Choice(["1", "3", "5", "7"]),
            default=None,
            help="How many of the trusted mediators judge a checked or audited result (a panel of 3 or more "
                 "votes by commit-reveal; list at least that many --mediators). Default: the network's - 1 "
                 "where mediators are not staked (a devnet), 3 where they are.")
@env_option("--min-results-collateral-multiple", envvar="LILYPAD_MIN_RESULTS_COLLATERAL_MULTIPLE",
            type=click.IntRange(1, 100), default=None,
            help="Smallest results collateral a provider must put up, as a multiple of the job cost. Default: the "
                 "network's - 2 where mediators are not staked, 40 where they are (docs/twin.md).")
@mediation_chance_option("Percent chance of sending a verified result to mediation anyway.")
@price_option("Most you pay per instruction, in LP.")
@payment_collateral_option("Payment collateral you escrow, in LP (caps the job's cost).")
@env_option("--pricing-mode", envvar="LILYPAD_PRICING_MODE", type=click.Choice(["MarketPrice", "FixedPrice"]),
            default="MarketPrice", show_default=True, help="How the price is set.")
@_data_dir
@env_option("--timeout", envvar="LILYPAD_TIMEOUT", type=click.FloatRange(min=1), default=7200.0,
            show_default=True, help="Seconds to wait for the whole run.")
@ipfs_options
def run(module: str, inputs: tuple[str, ...], network: str, solver_url: str, solver_address: str | None,
        target: str | None, web3_private_key: str | None, account: str | None, mediators: tuple[str, ...],
        inputs_path: Path | None, mediate: bool, consortium_size: str | None,
        min_results_collateral_multiple: int | None, mediation_chance: int, price: str,
        payment_collateral: str, pricing_mode: str, data_dir: Path | None, timeout: float, ipfs_api: str | None,
        ipfs_gateway: str | None, ipfs_peers: tuple[str, ...], ipfs_timeout: float) -> None:
    """Run MODULE on the market and download its verified result."""
    from lilypad.exceptions import InputError
    from lilypad.jobcreator.run import JobRequest, result_hints, run_job
    from lilypad.modules.inputs import parse_inputs
    from lilypad.protocol.offers import DEFAULT_JOB_PRICING, PricingMode

    with _errors():
        try:
            parsed = parse_inputs(inputs)
        except InputError as exc:
            raise click.BadParameter(str(exc), param_hint="-i/--input") from None
        pricing = DEFAULT_JOB_PRICING.model_copy(update={
            "instruction_price": _tokens(price, "--price"),
            "payment_collateral": _tokens(payment_collateral, "--payment-collateral"),
        })
        request = JobRequest(
            module=module, inputs=parsed, solver_url=solver_url, mediators=_mediators(mediators),
            data_dir=_data_root(data_dir), network=network, solver_address=solver_address, target=target,
            pricing=pricing, pricing_mode=PricingMode(pricing_mode), mediate=mediate,
            mediation_chance=mediation_chance, inputs_path=inputs_path, timeout=timeout,
            consortium_size=int(consortium_size) if consortium_size else None,
            min_results_collateral_multiple=min_results_collateral_multiple,
            ipfs=ipfs_sources(ipfs_api, ipfs_gateway, ipfs_peers, ipfs_timeout),
        )
        key = signer(web3_private_key, account)
        _quiet_ape()
        report = run_job(request, key, echo=lambda line: click.echo(line, err=True))
        if report.results_dir is not None:
            for line in result_hints(report.results_dir, report.result_cid):
                click.echo(line)
        click.echo(f"Deal {report.deal_id}: {report.outcome}")
        if not report.success:
            raise click.ClickException(f"the job failed: {report.outcome}")


# --------------------------------------------------------------------------
# lilypad status / fetch
# --------------------------------------------------------------------------


def _client(solver_url: str) -> Any:
    from lilypad.client import SolverClient

    return SolverClient(solver_url, retries=1)


def _check_deal_id(deal_id: str) -> str:
    text = deal_id.strip().lower()
    body = text[2:] if text.startswith("0x") else text
    if len(body) != 64 or any(c not in "0123456789abcdef" for c in body):
        raise click.BadParameter(f"{deal_id!r} is not a deal id (0x and 64 hex digits)", param_hint="DEAL_ID")
    return "0x" + body


@click.command(cls=LilypadCommand)
@click.argument("deal_id")
@_network
@solver_url_option
@_data_dir
@env_option("--json", "as_json", envvar="LILYPAD_JSON", is_flag=True, default=False, help="Print JSON.")
def status(deal_id: str, network: str, solver_url: str, data_dir: Path | None, as_json: bool) -> None:
    """Show a deal: its terms, on-chain state and result CID."""
    from lilypad.jobcreator.logic import format_tokens
    from lilypad.jobcreator.run import deal_status

    deal_id = _check_deal_id(deal_id)
    _quiet_ape()
    with _errors(), _connected(network) as contracts, _client(solver_url) as client:
        info = deal_status(deal_id, contracts, client, _data_root(data_dir))
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    chain = info["chain"]
    click.echo(f"Deal {deal_id}")
    terms = (info.get("solver") or {}).get("terms")
    if terms:
        m, p, t = terms["members"], terms["pricing"], terms["timeouts"]
        click.echo(f"  job creator        {m['job_creator']}")
        click.echo(f"  resource provider  {m['resource_provider']}")
        click.echo(f"  solver             {m['solver']}")
        click.echo(f"  mediators          {', '.join(m['mediators'])}")
        click.echo(f"  price              {format_tokens(p['instruction_price'])} per instruction, payment "
                   f"collateral {format_tokens(p['payment_collateral'])}, results collateral x"
                   f"{p['results_collateral_multiple']}, mediation fee {format_tokens(p['mediation_fee'])}")
        click.echo(f"  timeouts (s)       agree {t['agree']}, submit {t['submit_results']}, judge "
                   f"{t['judge_results']}, mediate {t['mediate_results']}")
    else:
        click.echo(f"  terms              unknown ({info.get('solver_error', 'no solver record')})")
    click.echo(f"  on-chain state     {chain['state']}")
    click.echo(f"  result CID         {chain['result_cid'] or '-'}"
               + (f" ({chain['instruction_count']} instructions)" if chain["result_cid"] else ""))
    esc = chain["escrow"]
    if esc["settled"]:
        click.echo(f"  escrow             settled: {format_tokens(esc['job_creator'])} paid back to the job creator")
    else:
        click.echo(f"  escrow             job creator {format_tokens(esc['job_creator'])}, provider "
                   f"{format_tokens(esc['resource_provider'])}")
    if chain.get("timeout_at"):
        click.echo(f"  timeout from       block time {chain['timeout_at']}")
    if info.get("outcome"):
        click.echo(f"  outcome            {info['outcome']}")
    if info.get("downloaded"):
        click.echo(f"  downloaded to      {info['downloaded']}")


@click.command(cls=LilypadCommand)
@click.argument("deal_id")
@_network
@solver_url_option
@_data_dir
@env_option("--wait", envvar="LILYPAD_FETCH_WAIT", type=click.FloatRange(min=0), default=0.0, show_default=True,
            help="Seconds to keep retrying while the solver does not have the result yet.")
@ipfs_options
def fetch(deal_id: str, network: str, solver_url: str, data_dir: Path | None, wait: float, ipfs_api: str | None,
          ipfs_gateway: str | None, ipfs_peers: tuple[str, ...], ipfs_timeout: float) -> None:
    """Download a deal's result (from IPFS by its on-chain CID, else from the
    solver) and verify it against the on-chain CID."""
    from lilypad.jobcreator.run import fetch_result, result_hints

    deal_id = _check_deal_id(deal_id)
    _quiet_ape()
    ipfs = ipfs_sources(ipfs_api, ipfs_gateway, ipfs_peers, ipfs_timeout)
    with _errors(), _connected(network) as contracts, _client(solver_url) as client:
        path, cid = fetch_result(deal_id, contracts, client, _data_root(data_dir), wait=wait, ipfs=ipfs)
    click.echo("Verified: the result matches the CID recorded on-chain.", err=True)
    for line in result_hints(path, cid):
        click.echo(line)


@click.group(cls=LilypadGroup)
def _standalone() -> None:
    """The job creator's commands (also registered on ``lilypad``)."""


for _command in (run, status, fetch):
    _standalone.add_command(_command)

if __name__ == "__main__":
    _standalone()
