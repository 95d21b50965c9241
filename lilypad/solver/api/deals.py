"""Deals: ``GET /api/v1/deals`` (filtered by ``party``, any role, and ``state``,
contract state names), ``GET /api/v1/deals/{id}`` (terms, on-chain state and
result, the uploaded result) and ``GET /api/v1/deals/{id}/job`` (what the
deal's provider must run)."""

from __future__ import annotations

from typing import Any

from eth_utils import is_address
from fastapi import APIRouter, Query

from lilypad.protocol.deal import parse_state
from lilypad.solver.api.deps import Core
from lilypad.solver.api.errors import ApiError
from lilypad.solver.service import deal_view

__all__ = ["router"]

router = APIRouter()


@router.get("/deals")
def list_deals(core: Core,
               party: str | None = Query(None, description="an address taking part in any role"),
               state: str | None = Query(None, description="AgreementState names, comma-separated")
               ) -> dict[str, Any]:
    if party is not None and not is_address(party):
        raise ApiError(400, "invalid_request", f"party {party!r} is not an address")
    states = None
    if state:
        try:
            states = [parse_state(s) for s in state.split(",") if s.strip()]
        except ValueError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
    return {"deals": [deal_view(r, core.result(r.deal_id)) for r in core.deals(party=party, states=states)]}


@router.get("/deals/{deal_id}")
def get_deal(deal_id: str, core: Core) -> dict[str, Any]:
    record = core.deal(deal_id)
    return deal_view(record, core.result(record.deal_id))


@router.get("/deals/{deal_id}/job")
def get_job(deal_id: str, core: Core) -> dict[str, Any]:
    return core.job(deal_id)
