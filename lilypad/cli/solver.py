"""``lilypad solver``: run the solver's HTTP service (docs/solver-api.md) with uvicorn.

Every option has an environment twin, ``LILYPAD_SOLVER_<OPTION>`` (e.g.
``--match-timeout`` and ``LILYPAD_SOLVER_MATCH_TIMEOUT``). The EIP-712 domain
is ``--chain-id`` and ``--controller`` or, without them, read from the
deployments file of ``--network``. Until a chain watcher feeds the solver the
on-chain states, results are served once the CID the watcher recorded for the
deal (:meth:`~lilypad.solver.service.SolverCore.onchain_result_cid`) matches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

__all__ = ["solver"]


def _env(name: str) -> str:
    return f"LILYPAD_SOLVER_{name}"


def _option(*decls: str, env: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A click option with its ``LILYPAD_SOLVER_*`` twin, shown in ``--help``."""
    return click.option(*decls, envvar=_env(env), show_envvar=True, **kwargs)


@click.command()
@_option("--host", env="HOST", default="127.0.0.1", show_default=True, help="Address to listen on.")
@_option("--port", env="PORT", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to listen on.")
@_option("--data-dir", env="DATA_DIR", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the solver keeps solver.db and results. Default: $LILYPAD_DATA_DIR/solver.")
@_option("--match-timeout", env="MATCH_TIMEOUT", type=click.FloatRange(min=0, min_open=True),
              default=30.0, show_default=True, help="Seconds a job offer waits for a match before it expires.")
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
@_option("--log-level", env="LOG_LEVEL", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="uvicorn's log level.")
def solver(host: str, port: int, data_dir: Path | None, match_timeout: float, match_interval: float,
           max_result_bytes: int | None, solver_address: str | None, network: str, chain_id: int | None,
           controller: str | None, log_level: str) -> None:
    """Run the solver: the offer book, matching, deals and results, over HTTP."""
    import uvicorn
    from pydantic import ValidationError

    from lilypad.exceptions import LilypadError
    from lilypad.protocol.deployments import load_deployment
    from lilypad.results.store import ResultsStore
    from lilypad.settings import get_settings
    from lilypad.solver.app import create_app
    from lilypad.solver.service import SolverCore
    from lilypad.solver.signing import OfferDomain
    from lilypad.solver.store import SolverStore

    settings = get_settings()
    root = data_dir or settings.data_dir / "solver"
    limit = max_result_bytes or settings.max_output_bytes
    try:
        if (chain_id is None) != (controller is None):
            raise click.UsageError("give both --chain-id and --controller, or neither")
        if chain_id is None:
            ecosystem, _, name = network.partition(":")
            deployment = load_deployment(ecosystem, name or "local")
            chain_id, controller = deployment.chain_id, deployment.address("controller")
        assert controller is not None
        domain = OfferDomain(chain_id=chain_id, verifying_contract=controller)
        store = SolverStore(root / "solver.db")
        core = SolverCore(store, domain, solver=solver_address, match_timeout=match_timeout)
        results = ResultsStore(root / "results", max_result_bytes=limit)
    except (LilypadError, ValidationError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    app = create_app(core, results_store=results, onchain_result=core.onchain_result_cid, max_result_bytes=limit,
                     domain=domain.as_eip712(), match_interval=match_interval)
    click.echo(f"solver: chain {chain_id}, controller {controller}, data in {root}, http://{host}:{port}", err=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, ws="none")
    finally:
        store.close()
