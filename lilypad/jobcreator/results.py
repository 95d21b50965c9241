"""Results and deals of the job creator: verified downloads, ``lilypad status`` and ``lilypad fetch``.

:func:`download_verified` downloads a deal's result into
``<data_dir>/downloaded-files/<deal id>/`` and keeps it only if its CID is
the one recorded on-chain, saying how it went in a :class:`Download` (from IPFS by that CID
first when the caller has a kubo node or gateway, then from the solver's store);
:func:`deal_status` and :func:`fetch_result` serve ``lilypad status`` and
``lilypad fetch`` (they need only the solver's URL and the network; ``fetch``
only the network when IPFS serves the result). Re-exported by :mod:`lilypad.jobcreator.run`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lilypad.exceptions import (
    JobCreatorError,
    LilypadError,
    ResultArchiveError,
    ResultCIDMismatchError,
    ResultTooLargeError,
    SolverError,
    SolverRequestError,
    SolverUnavailableError,
    UnsafeResultError,
)
from lilypad.jobcreator.logic import outcome_of
from lilypad.protocol.deal import Deal

__all__ = ["Download", "deal_status", "download_dir", "download_verified", "fetch_result", "result_hints"]


@dataclass(frozen=True)
class Download:
    """How :func:`download_verified` went: ``path`` of the verified result, or
    ``problem`` saying why there is none; ``final`` when waiting cannot help
    (the result served is not the one recorded on-chain, or is unusable), as
    opposed to a result that is not there yet or a solver that is unreachable."""

    path: Path | None
    problem: str | None = None
    final: bool = False
    #: Where the verified result came from: ``"ipfs"``, ``"solver"`` or ``"local"`` (downloaded before).
    source: str | None = None
    #: Why IPFS did not serve it, when it was tried and the solver did (or neither did).
    ipfs_problem: str | None = None

    @property
    def verified(self) -> bool:
        return self.path is not None


def download_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "downloaded-files"


def download_verified(client: Any, deal_id: str, expected_cid: str, data_dir: Path, *,
                      wait: float = 0.0, poll: float = 0.5,
                      clock: Callable[[], float] = time.monotonic, ipfs: Any | None = None) -> Download:
    """Download ``deal_id``'s result into ``<data_dir>/downloaded-files/<deal id>/``
    and keep it only if its CID is ``expected_cid`` (read from the chain).

    With ``ipfs`` (:class:`~lilypad.ipfs.IpfsSources`: the client's own kubo
    node, connected to the given peers, and/or a gateway) the result is fetched
    by its CID from IPFS first, once; the solver's store is the fallback
    (``client`` may then be ``None``: IPFS only).
    Answers that may change (no upload yet, the solver has not seen the
    on-chain result yet, solver unreachable) are retried for ``wait`` seconds;
    a result that is not the one recorded on-chain, or is unusable, is a
    ``final`` problem at once."""
    from lilypad.results.cid import directory_cid

    root = download_dir(data_dir)
    dest = root / deal_id
    if dest.is_dir():
        try:
            if directory_cid(dest) == expected_cid:
                return Download(dest, source="local")
        except LilypadError:
            pass
        dest.rename(root / f"{deal_id}.stale-{int(time.time())}")
    root.mkdir(parents=True, exist_ok=True)
    ipfs_problem = ""
    if ipfs is not None and ipfs.enabled:
        from lilypad.ipfs.fetch import fetch_tree

        tmp = root / f".tmp-{deal_id}-{secrets.token_hex(4)}"
        try:
            fetch_tree(ipfs, expected_cid, tmp)
            os.replace(tmp, dest)
            return Download(dest, source="ipfs")
        except LilypadError as exc:
            ipfs_problem = f"IPFS ({ipfs.describe()}) could not serve it: {type(exc).__name__}: {exc}"
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        if client is None:
            return Download(None, ipfs_problem, ipfs_problem=ipfs_problem)
    end = clock() + wait
    while True:
        tmp = root / f".tmp-{deal_id}-{secrets.token_hex(4)}"
        try:
            client.download_result(deal_id, tmp, expected_cid)
            os.replace(tmp, dest)
            return Download(dest, source="solver", ipfs_problem=ipfs_problem or None)
        except ResultCIDMismatchError as exc:
            return Download(None, f"the solver served a result whose CID is not the one recorded on-chain ({exc})",
                            final=True)
        except (UnsafeResultError, ResultTooLargeError, ResultArchiveError) as exc:
            return Download(None, f"the downloaded result is unusable ({exc})", final=True)
        except SolverRequestError as exc:
            if exc.code == "result_cid_mismatch":
                return Download(None, f"the uploaded result is not the one recorded on-chain ({exc.detail})",
                                final=True)
            problem = f"the solver cannot serve the result ({exc.status} {exc.code}: {exc.detail})"
            if exc.status not in (404, 409):
                return Download(None, problem)
        except SolverUnavailableError as exc:
            problem = str(exc)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        if clock() >= end:
            return Download(None, f"{ipfs_problem}; {problem}" if ipfs_problem else problem)
        time.sleep(poll)


def result_hints(results_dir: Path, cid: str | None) -> list[str]:
    """The closing lines of a run or a fetch."""
    lines = [f"Results: {results_dir}"]
    if cid:
        lines.append(f"Data CID: {cid}")
    lines += [f"    cat {results_dir / 'stdout'}", f"    cat {results_dir / 'stderr'}",
              f"    open {results_dir / 'outputs'}"]
    return lines


# --------------------------------------------------------------------------
# status and fetch
# --------------------------------------------------------------------------


def deal_status(deal_id: str, contracts: Any, client: Any | None, data_dir: Path | None = None) -> dict[str, Any]:
    """What is known about ``deal_id``: the solver's record (terms, job offer,
    uploaded result) when a client is given and answers, and the chain's
    (state, timestamps, result CID, escrow)."""
    from lilypad.protocol.deal import state_name

    status: dict[str, Any] = {"deal_id": deal_id}
    deal: Deal | None = None
    if client is not None:
        try:
            view = client.deal(deal_id)
            status["solver"] = view.model_dump(mode="json")
            deal = view.terms
        except SolverError as exc:
            status["solver_error"] = str(exc)
    a = contracts.agreement(deal_id)
    cid, count = contracts.result(deal_id)
    escrow = contracts.escrow(deal_id)
    status["chain"] = {
        "state": state_name(a.state), "job_creator_agreed": a.job_creator_agreed,
        "resource_provider_agreed": a.resource_provider_agreed, "created_at": a.created_at,
        "agreed_at": a.agreed_at, "results_submitted_at": a.results_submitted_at,
        "mediation_requested_at": a.mediation_requested_at, "result_cid": cid, "instruction_count": count,
        "escrow": {"job_creator": escrow.job_creator, "resource_provider": escrow.resource_provider,
                   "settled": escrow.settled},
        "timeout_at": a.timeout_at(deal) if deal is not None else None,
    }
    outcome = outcome_of(a.state)
    status["outcome"] = outcome.message if outcome else None
    if data_dir is not None:
        local = download_dir(data_dir) / deal_id
        status["downloaded"] = str(local) if local.is_dir() else None
    return status


def fetch_result(deal_id: str, contracts: Any, client: Any, data_dir: Path, *, wait: float = 0.0,
                 poll: float = 0.5, ipfs: Any | None = None) -> tuple[Path, str]:
    """Download ``deal_id``'s result and verify it against the CID recorded
    on-chain; ``(path, cid)``: from IPFS first with ``ipfs``
    (:class:`~lilypad.ipfs.IpfsSources`), else or then from the solver. Only
    the chain is needed when IPFS serves it. Raises
    :class:`~lilypad.exceptions.JobCreatorError` when there is no result
    on-chain or the download does not verify."""
    cid, _ = contracts.result(deal_id)
    if cid is None:
        state = contracts.agreement(deal_id).state
        raise JobCreatorError(f"deal {deal_id} has no result recorded on-chain (state {state.name})")
    got = download_verified(client, deal_id, cid, data_dir, wait=wait, poll=poll, ipfs=ipfs)
    if got.path is None:
        raise JobCreatorError(f"cannot fetch the result of deal {deal_id}: {got.problem}")
    return got.path, cid
