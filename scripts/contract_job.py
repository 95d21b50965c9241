"""Run cowsay from a smart contract, the way a Solidity developer would.

    ape run contract_job --network ethereum:local:foundry [--message TEXT] [--client ADDRESS]
    ape run contract_job --network arbitrum:sepolia:node --account my-alias --client 0x...

1. look up the job creator from the controller (``getJobCreatorAddress()``)
   and read ``getTokenAddress()``, ``getRequiredDeposit()`` and
   ``getControllerAddress()`` from it;
2. deploy ``contracts/examples/ExampleClient.sol`` (unless ``--client`` names one);
3. ``approve`` the job creator for the deposit and ``setCallerAllowance`` the client;
4. call ``runCowsay(message)`` on the client: the job creator emits ``JobAdded``;
5. wait for the job creator contract to call the client's ``submitResults``
   (once a relayer, ``lilypad jobcreator``, has carried the job to a deal and
   the result is accepted on-chain), and print the result CID the client
   stored and what the payer paid and got back (or the reason, if the job
   failed and the client's ``jobFailed`` was called).

On a local network the account defaults to ape's test account 1. A relayer, a
solver and a resource provider must be running (``make demo`` starts them).
"""

import sys


import time

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
@click.option("--message", default="Hello from a contract!", show_default=True, help="cowsay's Message input.")
@click.option("--client", "client_address", default=None, help="An ExampleClient already deployed (else deploy one).")
@click.option("--timeout", type=float, default=180.0, show_default=True, help="Seconds to wait for the callback.")
def cli(ecosystem, network, provider, account, message, client_address, timeout):
    _this_checkout()
    from ape import accounts, project

    from lilypad.exceptions import LilypadError
    from lilypad.protocol.deployments import load_deployment

    payer = account if account is not None and not isinstance(account, str) else None
    if payer is None:
        if network.name != "local":
            raise click.ClickException("pass --account (or set WEB3_PRIVATE_KEY) on a live network")
        payer = accounts.test_accounts[1]
    try:
        deployment = load_deployment(ecosystem.name, network.name)
    except LilypadError as err:
        raise click.ClickException(str(err)) from None

    controller = project.LilypadController.at(deployment.contracts["controller"])
    job_creator = project.LilypadOnChainJobCreator.at(controller.getJobCreatorAddress())
    token = project.LilypadToken.at(job_creator.getTokenAddress())
    deposit = job_creator.getRequiredDeposit()
    assert job_creator.getControllerAddress() == controller.address
    click.echo(f"job creator {job_creator.address}; token {token.address}; deposit {deposit / 10**18} LP")

    if client_address:
        client = project.ExampleClient.at(client_address)
    else:
        client = project.ExampleClient.deploy(controller.address, sender=payer)
        click.echo(f"deployed ExampleClient at {client.address}")
    if token.allowance(payer, job_creator) < deposit:
        token.approve(job_creator, 2**256 - 1, sender=payer)
    if job_creator.getCallerAllowance(payer, client) < deposit:
        job_creator.setCallerAllowance(client, 2**256 - 1, sender=payer)

    started = time.monotonic()
    before = token.balanceOf(payer)
    receipt = client.runCowsay(message, sender=payer)
    job_id = next(iter(client.CowsayRequested.from_receipt(receipt))).id
    click.echo(f"runCowsay sent: job {job_id} (tx {receipt.txn_hash}): {deposit / 10**18} LP in escrow; "
               "waiting for the result")
    while time.monotonic() - started < timeout:
        data_id = client.results(job_id)
        if data_id:
            click.echo(f"submitResults called back after {time.monotonic() - started:.1f} s: data CID {data_id}")
            paid = before - token.balanceOf(payer)
            click.echo(f"the payer paid {paid / 10**18} LP (the job's cost and the relayer's fee) and got "
                       f"{(deposit - paid) / 10**18} LP of its {deposit / 10**18} LP deposit back as change")
            return
        reason = client.failures(job_id)
        if reason:
            raise click.ClickException(f"job {job_id} failed: {reason} (the deposit was refunded)")
        time.sleep(0.25)
    raise click.ClickException(f"no callback for job {job_id} within {timeout:.0f} s; is a relayer "
                               "(`lilypad jobcreator`) running?")
