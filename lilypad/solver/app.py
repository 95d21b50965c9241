"""The solver's HTTP app (docs/solver-api.md) over a :class:`~lilypad.solver.service.SolverCore`.

:func:`create_app` builds the FastAPI application from the routers of
:mod:`lilypad.solver.api` (one per concern: discovery, offers, deals,
results, input files, events under :data:`API_PREFIX`; the operators'
``/status``, ``/health`` and ``/metrics`` at the root). Everything stateful
is in the core and the rules it applies are :mod:`lilypad.solver.rules`; the
routers only translate HTTP:

* errors are JSON ``{"error": CODE, "detail": MESSAGE}``
  (:mod:`lilypad.solver.api.errors`); request bodies other than the two
  archive uploads are bounded and checked before parsing
  (:mod:`lilypad.solver.guards`);
* both archive uploads (a deal's result, a job offer's input files) go
  through one signed, size-limited, hash-checked stream
  (:func:`lilypad.solver.api.archives.signed_upload`);
* what a handler reads (the core, the stores, limits, the domain) it gets
  from ``app.state.solver`` through FastAPI dependencies
  (:mod:`lilypad.solver.api.deps`);
* a background task runs :meth:`SolverCore.tick` (expiry, then a matching
  round) and deletes the results the core purges while the app runs (its
  lifespan): a round as soon as the core publishes a change (an offer posted,
  cancelled or given its inputs, a deal's state: what can make a match), at
  most one every ``match_interval`` seconds, and one every
  ``idle_round_interval`` seconds (at most a quarter of the match timeout)
  without any (offers expire, results are purged with time): an idle solver
  costs (almost) nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from lilypad.protocol.inputs import InputLimits
from lilypad.results.store import ResultsStore
from lilypad.solver.api import API_PREFIX, API_ROUTERS
from lilypad.solver.api import status as status_api
from lilypad.solver.api.deps import SolverAppState
from lilypad.solver.api.errors import install_error_handlers
from lilypad.solver.guards import JSONBodyLimit, install_http_error_handler
from lilypad.solver.metrics import StatusSources
from lilypad.solver.service import SolverCore
from lilypad.solver.status import DEFAULT_REFRESH_S

__all__ = ["API_PREFIX", "DEFAULT_IDLE_ROUND_INTERVAL", "DEFAULT_MATCH_INTERVAL", "DEFAULT_MAX_RESULT_FILES",
           "create_app"]

log = logging.getLogger(__name__)

DEFAULT_MATCH_INTERVAL = 0.2
#: Without any change, a round at least this often (expiry and purging go by the clock), and
#: at least four per match timeout, so an unmatched offer expires at most a quarter late.
DEFAULT_IDLE_ROUND_INTERVAL = 5.0
DEFAULT_MAX_RESULT_FILES = 10_000


def create_app(
    core: SolverCore,
    *,
    results_store: ResultsStore,
    onchain_result: Callable[[str], str | None],
    max_result_bytes: int,
    domain: dict[str, Any],
    head_block: Callable[[], int | None] | None = None,
    match_interval: float = DEFAULT_MATCH_INTERVAL,
    idle_round_interval: float = DEFAULT_IDLE_ROUND_INTERVAL,
    max_result_files: int = DEFAULT_MAX_RESULT_FILES,
    background: bool = True,
    require_result_layout: bool = True,
    sse_ping_s: int = 15,
    solver_address: str | None = None,
    inputs_store: ResultsStore | None = None,
    input_limits: InputLimits = InputLimits(),
) -> FastAPI:
    """The solver's FastAPI app (see the module docstring).

    ``onchain_result(deal_id)`` gives the result CID recorded on-chain for a
    deal (``None`` if none); ``max_result_bytes`` bounds an uploaded archive
    (the unpacked result is bounded by ``results_store.max_result_bytes``
    and ``max_result_files``); ``domain`` is the EIP-712 domain served at
    ``/domain``; ``head_block()`` the chain's head for ``/health``;
    ``solver_address`` the solver's own address, reported by ``/health`` as ``solver``;
    ``inputs_store`` where job offers' input files are kept by CID (``None``:
    no input files), ``input_limits`` their limits.
    ``background=False`` leaves ticking to the caller (tests).

    The app keeps its :class:`~lilypad.solver.api.deps.SolverAppState` at
    ``app.state.solver``, and the core, the results store and the status
    page's :class:`~lilypad.solver.metrics.StatusSources` at
    ``app.state.core``, ``app.state.results_store`` and
    ``app.state.status_sources``.
    """
    if max_result_bytes < 1:
        raise ValueError("max_result_bytes must be positive")
    expected = core.domain.as_eip712()
    if (domain.get("chainId"), str(domain.get("verifyingContract")).lower()) != (
        expected["chainId"], expected["verifyingContract"].lower()
    ):
        raise ValueError(f"the domain {domain} is not the one the core verifies offers with ({expected})")

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_rounds()) if background else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            core.bus.close()

    idle_wait = min(idle_round_interval, max(match_interval, core.match_timeout / 4))

    async def _rounds() -> None:
        changes = core.bus.subscribe()  # before the first round: no change is missed
        try:
            while True:
                try:
                    await run_in_threadpool(core.tick)
                    for cid in await run_in_threadpool(core.purge_results):
                        results_store.delete(cid, missing_ok=True)
                        log.info("result %s deleted: its deal ended more than the download timeout ago", cid)
                except Exception:  # keep matching whatever one round hit
                    log.exception("solver round failed")
                await asyncio.sleep(match_interval)  # at most one round per match_interval
                if changes.closed:  # it fell too far behind (or the bus closed): a fresh one
                    changes = core.bus.subscribe()
                    continue
                if not changes.drain():  # nothing happened meanwhile: wait for a change, or the clock
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(changes.get(), timeout=idle_wait)
                    changes.drain()
        finally:
            changes.close()

    sources = StatusSources()
    app = FastAPI(title="lilypad solver", version="1", lifespan=lifespan)
    app.state.solver = SolverAppState(
        core=core, results_store=results_store, onchain_result=onchain_result, max_result_bytes=max_result_bytes,
        max_result_files=max_result_files, require_result_layout=require_result_layout, domain=domain,
        head_block=head_block, solver_address=solver_address, inputs_store=inputs_store, input_limits=input_limits,
        sse_ping_s=sse_ping_s, status_sources=sources, metrics_registry=status_api.metrics_registry(core, sources),
        status_refresh_s=DEFAULT_REFRESH_S,
    )
    app.state.core = core
    app.state.results_store = results_store
    app.state.status_sources = sources
    install_error_handlers(app)
    install_http_error_handler(app)  # after: it covers what those leave to the framework
    app.add_middleware(JSONBodyLimit)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(status_api.router)  # operators: /status (HTML), /health, /metrics
    return app
