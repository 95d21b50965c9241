"""Deploy and wire the lilypad protocol, then write the deployments file.

    ape run deploy --network ethereum:local:foundry
    ape run deploy --network arbitrum:sepolia:node --account my-alias
    WEB3_PRIVATE_KEY=0x... ape run deploy --network arbitrum:sepolia:node

Running it again on a network whose deployments file points at a fully wired
system does nothing (use --force to deploy a fresh system). The file is
written only after the new system has been verified, so an interrupted run
never leaves a half-wired system on record.
"""

import click
from ape.cli import ConnectedProviderCommand, account_option


@click.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@click.option("--force", is_flag=True, help="Deploy a fresh system even if a wired one is on record.")
@click.option("--bridge", "bridges", multiple=True, help="Address (or TEST::n) to grant BRIDGE_ROLE.")
@click.option("--required-deposit", type=int, default=None, help="Deposit for on-chain jobs, token base units.")
@click.option("--min-mediator-stake", type=int, default=None,
              help="LP (token base units) every mediator a deal names must stake; default 0: no stake required.")
def cli(ecosystem, network, provider, account, force, bridges, required_deposit, min_mediator_stake):
    from ape import accounts, project

    from lilypad.exceptions import LilypadError
    from lilypad.protocol.accounts import resolve_account
    from lilypad.protocol.deploy import DeploySettings, deploy_system, verify_wiring
    from lilypad.protocol.deployments import deployment_path, load_deployment, save_deployment

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

    bridge_accounts = [_account(b, accounts) for b in bridges]
    fund = list(accounts.test_accounts)[:10] if is_local else []
    if is_local and not bridge_accounts:
        bridge_accounts = [accounts.test_accounts[9]]
    settings = DeploySettings()
    if required_deposit is not None:
        settings.required_deposit = required_deposit
    if min_mediator_stake is not None:
        settings.min_mediator_stake = min_mediator_stake
    try:
        deployment, _ = deploy_system(project, deployer, settings=settings, bridges=bridge_accounts, fund=fund)
    except LilypadError as err:
        raise click.ClickException(str(err)) from None
    written = save_deployment(deployment)
    click.echo(f"Deployed and verified on {ecosystem.name}:{network.name}; wrote {written}")
    _print(deployment)


def _account(value, accounts):
    if value.upper().startswith("TEST::"):
        return accounts.test_accounts[int(value.split("::", 1)[1])]
    return value


def _print(deployment):
    for key, address in deployment.contracts.items():
        click.echo(f"  {key:<12} {address}")
