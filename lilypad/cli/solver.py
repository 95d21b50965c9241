"""``lilypad solver``: run the solver's HTTP service (docs/solver-api.md) with uvicorn.

Every option has an environment twin, ``LILYPAD_SOLVER_<OPTION>`` (e.g.
``--match-timeout`` and ``LILYPAD_SOLVER_MATCH_TIMEOUT``). The EIP-712 domain
is ``--chain-id`` and ``--controller`` or, without them, read from the
deployments file of ``--network``.

When ``--network`` is given (on the command line or as
``LILYPAD_SOLVER_NETWORK``) and its deployments file is found, the solver
connects to the chain (:func:`lilypad.chain.connected`, kept open for the
process's lifetime) and runs a :class:`~lilypad.solver.watcher.ChainWatcher`
that feeds it the on-chain state of its deals; results are then served once
their CID equals the one the contracts store, and ``/health`` reports the
head block. With a key (``--web3-private-key`` / ``WEB3_PRIVATE_KEY``) it also
runs a :class:`~lilypad.solver.watcher.TimeoutKeeper` that drives expired
deals to their on-chain timeout. The solver's address (the key's, or
``--solver-address``) is reported by ``/health`` as ``solver``. Without a
chain, results are served once the CID recorded for the deal
(:meth:`~lilypad.solver.service.SolverCore.onchain_result_cid`) matches.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lilypad.cli._common import LilypadCommand, pass_settings
from lilypad.cli.options import env_option, private_key_option

if TYPE_CHECKING:
    from lilypad.settings import LilypadSettings

__all__ = ["solver"]


def _env(name: str) -> str:
    return f"LILYPAD_SOLVER_{name}"


def _option(*decls: str, env: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A click option with its ``LILYPAD_SOLVER_*`` twin, shown in ``--help``."""
    return env_option(*decls, envvar=_env(env), **kwargs)


@click.command(cls=LilypadCommand)
@_option("--host", env="HOST", default="127.0.0.1", show_default=True, help="Address to listen on.")
@_option("--port", env="PORT", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to listen on.")
@_option("--data-dir", env="DATA_DIR", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the solver keeps solver.db and results. Default: $LILYPAD_DATA_DIR/solver.")
@_option("--match-timeout", env="MATCH_TIMEOUT", type=click.FloatRange(min=0, min_open=True),
              default=30.0, show_default=True, help="Seconds a job offer waits for a match before it expires.")
@_option("--execution-timeout", env="EXECUTION_TIMEOUT", type=click.FloatRange(min=0), default=0.0,
              show_default=True, help="Longest submit-results window (seconds to run a job and post its result) a "
                                      "job offer may propose; 0: up to the contracts' 30 days.")
@_option("--download-timeout", env="DOWNLOAD_TIMEOUT", type=click.FloatRange(min=0), default=3600.0,
              show_default=True, help="Longest judge-results window a job offer may propose, and seconds a result "
                                      "stays downloadable after its deal ended; 0: no limit, keep results.")
@_option("--total-timeout", env="TOTAL_TIMEOUT", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Longest a deal may stay open (the sum of its windows) for a job offer to be taken; 0: no limit.")
@_option("--max-inputs-bytes", env="MAX_INPUTS_BYTES", type=click.IntRange(min=0), default=100 * 1024 * 1024,
              show_default=True, help="Largest total of one job's input files (each file at most 10 MB); "
                                      "0: take no input files.")
@_option("--match-interval", env="MATCH_INTERVAL", type=click.FloatRange(min=0, min_open=True),
              default=0.2, show_default=True, help="Seconds between matching rounds.")
@_option("--max-result-bytes", env="MAX_RESULT_BYTES", type=click.IntRange(min=1), default=None,
              help="Largest result archive accepted (and result size). Default: $LILYPAD_MAX_OUTPUT_BYTES.")
@_option("--solver-address", env="ADDRESS", default=None,
              help="Accept only offers naming this solver address (default: any).")
@_option("--network", env="NETWORK", default="ethereum:local", show_default=True,
              help="ECOSYSTEM:NETWORK whose deployments file gives the chain id and controller.")
@_option("--chain-id", env="CHAIN_ID", type=click.IntRange(min=0), default=None,
              help="EIP-712 chain id (with --controller, instead of the deployments file).")
@_option("--controller", env="CONTROLLER", default=None,
              help="EIP-712 verifying contract: the LilypadController address.")
@private_key_option("The solver's private key: it signs on-chain timeouts and names the solver.")
@_option("--confirmations", env="CONFIRMATIONS", type=click.IntRange(min=0), default=0, show_default=True,
              help="Blocks the chain watcher holds back before handling a log.")
@_option("--watch-interval", env="WATCH_INTERVAL", type=click.FloatRange(min=0, min_open=True), default=0.25,
              show_default=True,
              help="Seconds between the chain watcher's polls when the node's new blocks cannot wake it "
                   "(no WebSocket endpoint); with them it polls on each block.")
@_option("--timeout-interval", env="TIMEOUT_INTERVAL", type=click.FloatRange(min=0, min_open=True),
              default=3.0, show_default=True, help="Seconds between the timeout keeper's rounds.")
@_option("--log-level", env="LOG_LEVEL", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="uvicorn's log level.")
@pass_settings
def solver(settings: LilypadSettings, host: str, port: int, data_dir: Path | None, match_timeout: float,
           execution_timeout: float, download_timeout: float, total_timeout: float, max_inputs_bytes: int,
           match_interval: float,
           max_result_bytes: int | None, solver_address: str | None, network: str, chain_id: int | None,
           controller: str | None, web3_private_key: str | None, confirmations: int, watch_interval: float,
           timeout_interval: float, log_level: str) -> None:
    """Run the solver: the offer book, matching, deals and results, over HTTP."""
    import uvicorn

    from lilypad.protocol.deployments import deployment_path, load_deployment
    from lilypad.protocol.inputs import InputLimits
    from lilypad.protocol.signing import OfferDomain
    from lilypad.results.store import ResultsStore
    from lilypad.solver.app import create_app
    from lilypad.solver.limits import SolverTimeouts
    from lilypad.solver.service import SolverCore
    from lilypad.solver.store import SolverStore

    root = data_dir or settings.data_dir / "solver"
    limit = max_result_bytes or settings.max_output_bytes
    parts = network.split(":", 2)
    ecosystem, network_name = parts[0], (parts[1] if len(parts) > 1 and parts[1] else "local")
    source = click.get_current_context().get_parameter_source("network")
    network_given = source in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)
    stack = contextlib.ExitStack()
    store = None
    try:
        account = None
        if web3_private_key:
            from lilypad.protocol.accounts import account_from_private_key

            account = account_from_private_key(web3_private_key)
            if solver_address is not None and solver_address.lower() != account.address.lower():
                raise click.UsageError(f"--solver-address {solver_address} is not the key's address {account.address}")
            solver_address = account.address
        if (chain_id is None) != (controller is None):
            raise click.UsageError("give both --chain-id and --controller, or neither")
        if chain_id is None:
            deployment = load_deployment(ecosystem, network_name, settings.deployments_dir)
            chain_id, controller = deployment.chain_id, deployment.address("controller")
        assert controller is not None
        domain = OfferDomain(chain_id=chain_id, verifying_contract=controller)
        timeouts = SolverTimeouts(match=match_timeout, execution=execution_timeout or None,
                                  download=download_timeout or None, total=total_timeout or None)
        input_limits = InputLimits(max_total_bytes=max_inputs_bytes)
        inputs = ResultsStore(root / "inputs", max_result_bytes=max_inputs_bytes) if max_inputs_bytes else None
        store = SolverStore(root / "solver.db")
        core = SolverCore(store, domain, solver=solver_address, match_timeout=match_timeout, timeouts=timeouts,
                          inputs_ready=inputs.has if inputs is not None else None)
        results = ResultsStore(root / "results", max_result_bytes=limit)
        contracts = None
        if network_given and deployment_path(ecosystem, network_name, settings.deployments_dir).is_file():
            from lilypad.chain.connect import connected

            click.echo(f"solver: connecting to {network}", err=True)
            contracts = stack.enter_context(connected(network, settings.deployments_dir,
                                                      rpc_urls=settings.rpc_url_list))
    except ValueError as err:  # pydantic's ValidationError too; a LilypadError is left to LilypadCommand
        stack.close()
        if store is not None:
            store.close()
        raise click.ClickException(str(err)) from None
    except BaseException:
        stack.close()
        if store is not None:
            store.close()
        raise
    onchain_result: Callable[[str], str | None] = core.onchain_result_cid
    head_block: Callable[[], int | None] | None = None
    threads: list[Any] = []
    watcher: Any = None
    try:
        if contracts is not None:
            from lilypad.solver.watcher import ChainWatcher, TimeoutKeeper, chain_call

            chain_contracts = contracts

            def onchain_result(deal_id: str) -> str | None:
                return chain_call(chain_contracts.result, deal_id)[0]

            def head_block() -> int | None:
                from ape import chain

                return chain_call(lambda: int(chain.blocks.height))

            from lilypad.solver.stakes import MediatorStakes

            stakes = MediatorStakes.from_contracts(contracts)
            core.mediator_eligible = stakes.eligible
            core.settings_version = stakes.settings_version
            core.contract_jobs = lambda job_id: chain_call(chain_contracts.contract_job, job_id)
            core.contract_job_creator = contracts.addresses["job_creator"]
            watcher = ChainWatcher(contracts, core, root / "chain-events.sqlite", confirmations=confirmations,
                                   interval=watch_interval)
            threads.append(watcher)
            if account is not None:
                threads.append(TimeoutKeeper(contracts, core, account, interval=timeout_interval))
            for thread in threads:
                thread.start()
            _wake_on_new_blocks(watcher)
        app = create_app(core, results_store=results, onchain_result=onchain_result, max_result_bytes=limit,
                         domain=domain.as_eip712(), head_block=head_block, match_interval=match_interval,
                         solver_address=solver_address, inputs_store=inputs, input_limits=input_limits)
        if contracts is not None:  # the status page, /health and /metrics read the chain too
            _watch_chain(app.state.status_sources, contracts, watcher, store)
        chain_note = (f"watching {network}" + (", timing out overdue deals" if account is not None else "")
                      if contracts is not None else "not watching a chain")
        click.echo(f"solver: chain {chain_id}, controller {controller}, solver {solver_address or 'any'}, "
                   f"{chain_note}, data in {root}, http://{host}:{port}", err=True)
        uvicorn.run(app, host=host, port=port, log_level=log_level, ws="none")
    finally:
        for thread in reversed(threads):
            thread.stop()
        for thread in threads:
            close = getattr(thread, "close", None)
            if close is not None:
                close()
        stack.close()
        store.close()


def _wake_on_new_blocks(watcher: Any) -> None:
    """Wake the chain watcher on each of the node's new blocks (it polls every
    ``--watch-interval`` without them: a node without a WebSocket endpoint)."""
    from ape import networks

    from lilypad.service.heads import HeadWaker, websocket_url

    url = websocket_url(networks.provider)
    if url is not None:
        HeadWaker(url, [watcher], watcher.stop_event, name="solver-chain-heads").start()


def _watch_chain(sources: Any, contracts: Any, watcher: Any, store: Any) -> None:
    """Give the status page, ``/health`` and ``/metrics`` the chain head, providers'
    on-chain reputation, the protocol's pot and settings, mediators' stakes,
    deals' mediation panels and the chain watcher (all reads hold the chain lock)."""
    from lilypad.solver.watcher import chain_call

    def head() -> tuple[int, int]:
        from ape import chain

        block = chain_call(lambda: chain.blocks.head)
        return int(block.number), int(block.timestamp)

    def protocol() -> Any:
        from lilypad.chain.mediation import ProtocolView

        version, settings = chain_call(contracts.current_protocol_settings)
        pot = chain_call(contracts.get_pot)
        return ProtocolView(pot.jackpot, pot.treasury, version, settings)

    def panel(deal_id: str) -> Any:
        from lilypad.mediator.panel import PanelView

        record = store.deal(deal_id)
        if record is None:
            return None
        p = chain_call(contracts.panel, record.deal)
        votes = chain_call(contracts.votes, record.deal) if p.size > 1 else ()
        return PanelView(**{f: getattr(p, f) for f in p.__dataclass_fields__}, votes=votes)

    sources.chain_head = head
    sources.reputation = lambda address: chain_call(contracts.reputation, address)
    sources.protocol = protocol
    sources.stake = lambda address: chain_call(contracts.mediator_stake, address)
    sources.panel = panel
    sources.watcher = watcher
