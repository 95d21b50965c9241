"""What the solver's HTTP handlers read, as FastAPI dependencies.

:func:`lilypad.solver.app.create_app` keeps one :class:`SolverAppState` at
``app.state.solver``; a handler declares what it needs with the annotated
types here instead of closing over ``create_app``'s arguments:

* :data:`AppState` - the whole :class:`SolverAppState`;
* :data:`Core` - its :class:`~lilypad.solver.service.SolverCore`;
* :data:`InputsStore` - where job offers' input files are kept; a solver
  that takes none answers ``404 no_inputs`` before the handler runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry

from lilypad.exceptions import InputsNotFoundError
from lilypad.protocol.inputs import InputLimits
from lilypad.results.store import ResultsStore
from lilypad.solver.metrics import StatusSources
from lilypad.solver.service import SolverCore

__all__ = ["AppState", "Core", "InputsStore", "SolverAppState", "app_state", "inputs_store", "solver_core"]


@dataclass(frozen=True)
class SolverAppState:
    """Everything the solver's handlers read (see :func:`~lilypad.solver.app.create_app`
    for what each is): the core, the results and inputs stores, the upload
    limits, the EIP-712 domain, the chain lookups, and what the operators'
    pages read (``status_sources``, ``metrics_registry``, ``status_refresh_s``)."""

    core: SolverCore
    results_store: ResultsStore
    onchain_result: Callable[[str], str | None]
    max_result_bytes: int
    max_result_files: int
    require_result_layout: bool
    domain: dict[str, Any]
    head_block: Callable[[], int | None] | None
    solver_address: str | None
    inputs_store: ResultsStore | None
    input_limits: InputLimits
    sse_ping_s: int
    status_sources: StatusSources
    metrics_registry: CollectorRegistry
    status_refresh_s: int


async def app_state(request: Request) -> SolverAppState:
    """The app's :class:`SolverAppState`."""
    state: SolverAppState = request.app.state.solver
    return state


async def solver_core(request: Request) -> SolverCore:
    """The app's :class:`~lilypad.solver.service.SolverCore`."""
    state: SolverAppState = request.app.state.solver
    return state.core


async def inputs_store(request: Request) -> ResultsStore:
    """The store of job offers' input files; raises
    :class:`~lilypad.exceptions.InputsNotFoundError` if this solver takes none."""
    state: SolverAppState = request.app.state.solver
    if state.inputs_store is None:
        raise InputsNotFoundError()
    return state.inputs_store


AppState = Annotated[SolverAppState, Depends(app_state)]
Core = Annotated[SolverCore, Depends(solver_core)]
InputsStore = Annotated[ResultsStore, Depends(inputs_store)]
