"""Deploy and wire the lilypad protocol, then write the deployments file.

    ape run deploy --network ethereum:local:foundry
    ape run deploy --network arbitrum:sepolia:node --account my-alias
    WEB3_PRIVATE_KEY=0x... ape run deploy --network arbitrum:sepolia:node

Protocol settings: the local network keeps settings version 0 (every
mechanism off: no tax, no audits, no mediator stake, no slashing); any other
network gets the public-network defaults of docs/protocol.md
(``lilypad.protocol.settings.NETWORK_SETTINGS``, chosen with the twin of
docs/twin.md: 4 % tax, a fifth of it to the treasury, 2.5 % audits, a 1 % catch
reward, 100 LP minimum stake, 50 LP slash). Under settings that require a
stake, the CLI, providers and the bridge default to a results collateral of 40
job costs and panels of 3 mediators (``deal_defaults``).
Each option below overrides one value; a deploy whose values are all 0 keeps
version 0. ``--treasury`` sets where the treasury's share is claimed to.

    ape run deploy --network ethereum:local:foundry --tax-bps 100 --audit-bps 500

Running it again on a network whose deployments file points at a fully wired
system does nothing (use --force to deploy a fresh system). The file is
written only after the new system has been verified, so an interrupted run
never leaves a half-wired system on record.
"""

import sys


import click
from ape.cli import ConnectedProviderCommand, account_option


def _this_checkout():
    """Import this checkout's lilypad package, whichever one the environment has installed:
    ape runs a click script with its own sys.path (not PYTHONPATH), so a second checkout
    sharing one virtualenv would otherwise run with the other checkout's code."""
    from ape import project

    if str(project.path) not in sys.path:
        sys.path.insert(0, str(project.path))


@click.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@click.option("--force", is_flag=True, help="Deploy a fresh system even if a wired one is on record.")
@click.option("--required-deposit", type=int, default=None, help="Deposit for on-chain jobs, token base units.")
@click.option("--tax-bps", type=int, default=None,
              help="Tax on each paid job cost, basis points (<= 1000). Local default 0, else 400.")
@click.option("--treasury-share-bps", type=int, default=None,
              help="Share of the tax to the treasury, basis points (<= 10000). Local default 0, else 2000.")
@click.option("--audit-bps", type=int, default=None,
              help="Chance an unchecked result is audited, basis points (<= 5000). Local default 0, else 250.")
@click.option("--reward-bps", type=int, default=None,
              help="Catch reward, basis points of the jackpot (<= 5000). Local default 0, else 100.")
@click.option("--min-mediator-stake", type=int, default=None,
              help="LP (token base units) every mediator a deal names must stake. Local default 0 (no stake "
                   "required), else 100 LP.")
@click.option("--mediator-slash", type=int, default=None,
              help="LP (token base units) slashed per offence. Local default 0, else 50 LP.")
@click.option("--treasury", default=None, help="Address (or TEST::n) the treasury's share is claimed to.")
def cli(ecosystem, network, provider, account, force, required_deposit, tax_bps, treasury_share_bps,
        audit_bps, reward_bps, min_mediator_stake, mediator_slash, treasury):
    _this_checkout()
    from ape import accounts, project
    from pydantic import ValidationError

    from lilypad.exceptions import LilypadError
    from lilypad.protocol.accounts import resolve_account
    from lilypad.protocol.deploy import DeploySettings, deploy_system, verify_wiring
    from lilypad.protocol.deployments import deployment_path, load_deployment, save_deployment
    from lilypad.protocol.settings import NETWORK_SETTINGS, ProtocolSettings

    is_local = network.name == "local"
    try:
        deployer = resolve_account(account, is_local=is_local)
    except LilypadError as err:
        raise click.ClickException(str(err)) from None

    path = deployment_path(ecosystem.name, network.name)
    if path.is_file() and not force:
        existing = load_deployment(ecosystem.name, network.name)
        problems = verify_wiring(project, existing)
        if not problems:
            click.echo(f"A wired system is already deployed on {ecosystem.name}:{network.name} ({path}).")
            _print(existing)
            return
        click.echo(f"The system on record is not usable ({'; '.join(problems)}): deploying a fresh one.")

    fund = list(accounts.test_accounts)[:10] if is_local else []
    settings = DeploySettings()
    if required_deposit is not None:
        settings.required_deposit = required_deposit
    chosen = {"tax_bps": tax_bps, "treasury_share_bps": treasury_share_bps, "audit_bps": audit_bps,
              "reward_bps": reward_bps, "min_mediator_stake": min_mediator_stake, "mediator_slash": mediator_slash}
    base = ProtocolSettings() if is_local else NETWORK_SETTINGS
    try:
        overrides = {k: v for k, v in chosen.items() if v is not None}
        protocol_settings = ProtocolSettings(**{**base.model_dump(), **overrides})
    except ValidationError as err:
        raise click.ClickException(f"invalid protocol settings: {err}") from None
    settings.protocol_settings = None if protocol_settings.all_off else protocol_settings
    if treasury is not None:
        settings.treasury = str(getattr(_account(treasury, accounts), "address", treasury))
    try:
        deployment, _ = deploy_system(project, deployer, settings=settings, fund=fund)
    except LilypadError as err:
        raise click.ClickException(str(err)) from None
    written = save_deployment(deployment)
    click.echo(f"Deployed and verified on {ecosystem.name}:{network.name}; wrote {written}")
    _print(deployment)
    if settings.protocol_settings is None:
        click.echo("  protocol settings version 0: every mechanism off")
    else:
        click.echo(f"  protocol settings version 1: {settings.protocol_settings.model_dump()}")


def _account(value, accounts):
    if value.upper().startswith("TEST::"):
        return accounts.test_accounts[int(value.split("::", 1)[1])]
    return value


def _print(deployment):
    for key, address in deployment.contracts.items():
        click.echo(f"  {key:<12} {address}")
