"""Offers: ``POST``/``GET /api/v1/resource_offers``, ``POST /api/v1/job_offers``,
and ``GET``/``DELETE`` of one offer of either kind.

A posted offer is verified and stored by
:meth:`~lilypad.solver.service.SolverCore.accept_offer` (``201 {"id",
"state"}``; each collection takes only its own kind). ``DELETE`` takes
:class:`CancelBody`, the author's EIP-712 ``CancelOffer`` signature
(:func:`~lilypad.solver.service.sign_cancel`); one signed by anybody else is
``403 forbidden``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lilypad.exceptions import OfferSignatureError
from lilypad.protocol.signing import SignedOffer
from lilypad.solver.api.deps import Core
from lilypad.solver.api.errors import ApiError
from lilypad.solver.service import SolverCore, offer_view
from lilypad.solver.store import OfferKind

__all__ = ["CancelBody", "router"]

router = APIRouter()


class CancelBody(BaseModel):
    """A signed cancel request (see :func:`lilypad.solver.service.sign_cancel`)."""

    created_at: int = Field(ge=0, lt=2**64)
    signature: str = Field(min_length=2, max_length=200)


def _post(core: SolverCore, kind: OfferKind, signed: SignedOffer) -> JSONResponse:
    record = core.accept_offer(signed, kind)
    return JSONResponse({"id": record.id, "state": record.state}, status_code=201)


def _cancel(core: SolverCore, kind: OfferKind, offer_id: str, body: CancelBody) -> dict[str, Any]:
    try:
        record = core.cancel_offer(kind, offer_id, created_at=body.created_at, signature=body.signature)
    except OfferSignatureError as exc:
        raise ApiError(403, "forbidden", str(exc)) from None
    return offer_view(record)


@router.post("/resource_offers", status_code=201)
def post_resource_offer(signed: SignedOffer, core: Core) -> JSONResponse:
    return _post(core, "resource", signed)


@router.get("/resource_offers")
def list_resource_offers(core: Core) -> dict[str, Any]:
    return {"offers": [offer_view(r) for r in core.open_offers("resource")]}


@router.get("/resource_offers/{offer_id}")
def get_resource_offer(offer_id: str, core: Core) -> dict[str, Any]:
    return offer_view(core.offer("resource", offer_id))


@router.delete("/resource_offers/{offer_id}")
def cancel_resource_offer(offer_id: str, body: CancelBody, core: Core) -> dict[str, Any]:
    return _cancel(core, "resource", offer_id, body)


@router.post("/job_offers", status_code=201)
def post_job_offer(signed: SignedOffer, core: Core) -> JSONResponse:
    return _post(core, "job", signed)


@router.get("/job_offers/{offer_id}")
def get_job_offer(offer_id: str, core: Core) -> dict[str, Any]:
    return offer_view(core.offer("job", offer_id))


@router.delete("/job_offers/{offer_id}")
def cancel_job_offer(offer_id: str, body: CancelBody, core: Core) -> dict[str, Any]:
    return _cancel(core, "job", offer_id, body)
