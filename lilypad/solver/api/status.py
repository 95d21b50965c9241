"""The solver's operator pages, at the root (not under ``/api/v1``):

* ``GET /status`` (and ``/``, a redirect): the self-contained HTML page of
  :func:`lilypad.solver.status.render_status_page`, refreshing itself every
  ``status_refresh_s`` seconds;
* ``GET /health``: JSON (``status``, open offers, deals by state, queues,
  results stored, chain head and lag), 503 when the chain head cannot be
  read although a chain is configured;
* ``GET /metrics``: Prometheus text format (see :mod:`lilypad.solver.metrics`).

They read the core and the app's :class:`~lilypad.solver.metrics.StatusSources`
(``app.state.status_sources``, which ``lilypad solver`` fills in when it
watches a chain).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from lilypad.observability.metrics import new_registry, render
from lilypad.solver.api.deps import AppState
from lilypad.solver.metrics import SolverCollector, StatusSources, snapshot
from lilypad.solver.service import SolverCore
from lilypad.solver.status import render_status_page

__all__ = ["metrics_registry", "router"]

router = APIRouter()


def metrics_registry(core: SolverCore, sources: StatusSources) -> CollectorRegistry:
    """A registry whose collector reads ``core`` and ``sources`` at each scrape."""
    registry = new_registry()
    registry.register(SolverCollector(core, sources))
    return registry


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/status")


@router.get("/status", response_class=HTMLResponse)
def status_page(solver: AppState) -> HTMLResponse:
    snap = snapshot(solver.core, solver.status_sources)
    return HTMLResponse(render_status_page(snap, solver.status_sources, solver=solver.solver_address,
                                           chain_id=solver.domain.get("chainId"), refresh_s=solver.status_refresh_s))


@router.get("/health")
def health(solver: AppState) -> JSONResponse:
    sources = solver.status_sources
    snap = snapshot(solver.core, sources, recent=0)
    body: dict[str, Any] = {
        "status": "ok", "solver": solver.solver_address, "chain_id": solver.domain.get("chainId"),
        "open_offers": {k: len(v) for k, v in snap["open_offers"].items()},
        "deals": snap["deal_counts"], "queues": snap["queues"], "results_stored": snap["results_stored"],
    }
    if sources.chain_head is not None:
        head = snap["head"]
        if head is None:
            body["status"] = "chain_unreachable"
        else:
            body["head_block"], body["head_lag_s"] = head[0], round(max(0.0, time.time() - head[1]), 3)
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)


@router.get("/metrics")
def metrics(solver: AppState) -> Response:
    return Response(render(solver.metrics_registry), media_type=CONTENT_TYPE_LATEST)
