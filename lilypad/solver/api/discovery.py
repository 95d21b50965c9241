"""Discovery: ``GET /api/v1/health`` (the chain, controller, chain head, solver
address and open offers in the matcher) and ``GET /api/v1/domain`` (the
EIP-712 domain offers and cancels are signed in)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from lilypad.solver.api.deps import AppState

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter()


@router.get("/health")
async def health(solver: AppState) -> dict[str, Any]:
    block = None
    if solver.head_block is not None:
        try:
            block = await run_in_threadpool(solver.head_block)
        except Exception as exc:  # report, do not fail the health check
            log.warning("head_block failed: %s", exc)
    return {"status": "ok", "chain_id": solver.domain.get("chainId"),
            "controller": solver.domain.get("verifyingContract"),
            "head_block": block, "solver": solver.solver_address, "open_offers": dict(solver.core.counts())}


@router.get("/domain")
def get_domain(solver: AppState) -> dict[str, Any]:
    return solver.domain
