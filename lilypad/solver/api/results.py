"""A deal's result: ``PUT`` and ``GET /api/v1/deals/{id}/result``.

``PUT`` takes the ``.tar.gz`` of the result directory
(:func:`lilypad.results.archive.pack`) through
:func:`~lilypad.solver.api.archives.signed_upload`, signed by the deal's
provider (:func:`~lilypad.solver.rules.check_result_uploader`) and bounded by
``max_result_bytes``; it is unpacked with
:func:`lilypad.results.archive.unpack` (which refuses hostile archives),
checked to be a job result and stored by CID: ``{"deal_id", "cid", "size"}``.

``GET`` serves the packed result only while its CID is the one recorded
on-chain (:meth:`~lilypad.solver.service.SolverCore.servable_result`: 409
otherwise, 404 if none was uploaded, 410 once deleted after its deal ended).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import IO, Any, BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from lilypad.exceptions import (
    CIDError,
    ResultArchiveError,
    ResultLayoutError,
    ResultTooLargeError,
    UnsafeResultError,
)
from lilypad.results.archive import unpack
from lilypad.results.layout import validate_layout
from lilypad.solver.api.archives import archive_response, signed_upload, unpack_into_store
from lilypad.solver.api.deps import AppState, SolverAppState
from lilypad.solver.api.errors import ApiError
from lilypad.solver.rules import check_result_uploader

__all__ = ["router"]

router = APIRouter()


def _store_result(solver: SolverAppState, archive: IO[bytes]) -> str:
    store = solver.results_store

    def unpack_result(source: BinaryIO, dest: Path) -> None:
        unpack(source, dest, max_bytes=store.max_result_bytes, max_files=solver.max_result_files)
        if solver.require_result_layout:
            validate_layout(dest)

    try:
        return unpack_into_store(archive, store, "result", unpack_result)
    except ResultTooLargeError as exc:
        raise ApiError(413, "too_large", str(exc)) from None
    except UnsafeResultError as exc:
        raise ApiError(400, "unsafe_archive", str(exc)) from None
    except ResultLayoutError as exc:
        raise ApiError(400, "not_a_result", str(exc)) from None
    except (ResultArchiveError, CIDError) as exc:
        raise ApiError(400, "bad_archive", str(exc)) from None


@router.put("/deals/{deal_id}/result")
async def put_result(deal_id: str, request: Request, solver: AppState) -> dict[str, Any]:
    core = solver.core
    record = await run_in_threadpool(core.deal, deal_id)
    async with signed_upload(request, over="deal id", authorize=partial(check_result_uploader, record),
                             limit=solver.max_result_bytes) as upload:
        cid = await run_in_threadpool(_store_result, solver, upload.body)
    result = await run_in_threadpool(core.record_result, record.deal_id, cid, upload.size)
    return {"deal_id": record.deal_id, "cid": result.cid, "size": result.size}


@router.get("/deals/{deal_id}/result")
async def get_result(deal_id: str, solver: AppState) -> StreamingResponse:
    result = await run_in_threadpool(solver.core.servable_result, deal_id, solver.onchain_result)
    return await archive_response(solver.results_store, result.cid)
