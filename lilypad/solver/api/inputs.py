"""A job offer's input files: ``PUT`` and ``GET /api/v1/job_offers/{id}/inputs``.

``PUT`` takes the ``.tar.gz`` of the input files through
:func:`~lilypad.solver.api.archives.signed_upload`, signed by the job
creator while the offer is open or matched
(:func:`~lilypad.solver.rules.check_inputs_uploader`) and bounded by the
solver's :class:`~lilypad.protocol.inputs.InputLimits`; it is unpacked safely,
checked to have the offer's signed ``inputs_cid`` and stored by CID:
``{"offer_id", "cid", "size"}``. The offer is matched only from then on
(:meth:`~lilypad.solver.service.SolverCore.inputs_uploaded`). ``GET`` serves
them once uploaded. A solver that takes no input files answers both
``404 no_inputs``.
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
    InputFilesError,
    InputsNotFoundError,
    ResultArchiveError,
    ResultCIDMismatchError,
    ResultTooLargeError,
    UnsafeResultError,
)
from lilypad.protocol.inputs import InputLimits, unpack_inputs
from lilypad.results.store import ResultsStore
from lilypad.solver.api.archives import archive_response, signed_upload, unpack_into_store
from lilypad.solver.api.deps import AppState, Core, InputsStore
from lilypad.solver.api.errors import ApiError
from lilypad.solver.rules import check_inputs_uploader

__all__ = ["router"]

router = APIRouter()


def _store_inputs(store: ResultsStore, limits: InputLimits, archive: IO[bytes], expected_cid: str) -> str:
    def unpack_to(source: BinaryIO, dest: Path) -> None:
        unpack_inputs(source, dest, expected_cid=expected_cid, limits=limits)

    try:
        return unpack_into_store(archive, store, "inputs", unpack_to)
    except ResultCIDMismatchError as exc:
        raise ApiError(400, "inputs_cid_mismatch", f"the input files are not the offer's inputs_cid: {exc}") from None
    except ResultTooLargeError as exc:
        raise ApiError(413, "too_large", str(exc)) from None
    except (UnsafeResultError, InputFilesError) as exc:
        raise ApiError(400, "unsafe_archive", str(exc)) from None
    except (ResultArchiveError, CIDError) as exc:
        raise ApiError(400, "bad_archive", str(exc)) from None


@router.put("/job_offers/{offer_id}/inputs")
async def put_inputs(offer_id: str, request: Request, store: InputsStore, solver: AppState) -> dict[str, Any]:
    core, limits = solver.core, solver.input_limits
    record, expected = await run_in_threadpool(core.job_inputs, offer_id)
    async with signed_upload(request, over="offer id", authorize=partial(check_inputs_uploader, record),
                             limit=limits.max_archive_bytes) as upload:
        if not await run_in_threadpool(store.has, expected):
            await run_in_threadpool(_store_inputs, store, limits, upload.body, expected)
    await run_in_threadpool(core.inputs_uploaded, record.id)
    return {"offer_id": record.id, "cid": expected, "size": upload.size}


@router.get("/job_offers/{offer_id}/inputs")
async def get_inputs(offer_id: str, store: InputsStore, core: Core) -> StreamingResponse:
    record, cid = await run_in_threadpool(core.job_inputs, offer_id)
    if not await run_in_threadpool(store.has, cid):
        raise InputsNotFoundError(record.id, cid)
    return await archive_response(store, cid)
