"""Running a deal's job as the solver describes it, for resource providers and mediators.

A job (``GET /deals/{id}/job``, a :class:`~lilypad.client.views.DealJob`)
names its module as the job creator resolved and signed it (``ref``, ``repo``,
``commit``), its inputs, and - when it has input files - their CID
(``inputs_cid``, signed in the job offer).

* :func:`resolve_job_module` resolves the module here and refuses it with
  :class:`~lilypad.exceptions.ModuleCommitMismatchError` unless it is the
  signed ``repo@commit`` (a tag moved since, or another source): a provider
  checks this before it agrees, and again before it runs.
* :func:`module_problem` says why a deal's job will not run here, before the
  provider agrees: the module is not the signed one, or its spec, rendered with
  the job's inputs, does not load or cannot run
  (:func:`~lilypad.modules.spec.check_runnable`: no image, a relative output path...).
* :func:`fetch_job_inputs` downloads the input files (from IPFS by their CID
  when the caller has a kubo node or gateway, else or on failure from the solver), keeps
  them only if their CID is the signed one and they pass the input checks
  (no links, size limits: :mod:`lilypad.protocol.inputs`), and returns the
  directory to mount read-only at ``/inputs``.
* :func:`prepare_deal_job` does both (a :class:`PreparedJob`); :func:`run_prepared`
  runs it in a fresh work directory (a mediator runs one prepared job several
  times); :func:`run_deal_job` prepares and runs once.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lilypad.exceptions import LilypadError, ModuleCommitMismatchError
from lilypad.observability import log_event

if TYPE_CHECKING:
    from lilypad.client import DealJob
    from lilypad.executor import RunResult
    from lilypad.modules.spec import ModuleSpec
    from lilypad.protocol.deal import Deal

__all__ = [
    "PreparedJob",
    "binding_problems",
    "contract_binding_problems",
    "fetch_job_inputs",
    "module_problem",
    "prepare_deal_job",
    "resolve_job_module",
    "run_deal_job",
    "run_prepared",
]

log = logging.getLogger("lilypad.provider.execution")


def binding_problems(client: Any, deal: Deal, job: DealJob, resource_offer_id: str,
                     contracts: Any | None = None) -> list[str]:
    """Why ``job``, as the solver shows it, is not the job ``deal`` is bound to
    (empty: it is): the job creator's signed offer is fetched from the solver and
    checked with :func:`lilypad.protocol.binding.job_binding_problems`; a smart-contract
    job's (unsigned) offer is checked against the chain instead, with ``contracts``
    (:func:`contract_binding_problems`). A provider checks this before it agrees, a
    mediator before it judges."""
    from lilypad.protocol.binding import job_binding_problems

    signed = client.job_offer(job.job_offer_id).offer
    if getattr(signed.offer, "contract_job_id", None) is not None:
        return contract_binding_problems(contracts, deal, job, signed.offer)
    return job_binding_problems(deal, job_offer_id=job.job_offer_id, module=job.module, inputs=job.inputs,
                                inputs_cid=job.inputs_cid, signed=signed, resource_offer_id=resource_offer_id,
                                domain=client.offer_domain())


def contract_binding_problems(contracts: Any | None, deal: Deal, job: DealJob, offer: Any) -> list[str]:
    """Why a smart-contract job's ``offer`` (and ``job`` as the solver shows it) is not the
    job ``deal`` is bound to: the offer must be the chain's job
    (:func:`~lilypad.protocol.contract_jobs.contract_offer_problems`), the deal must carry
    its nonce and name the job creator contract, and the job shown must be the offer's."""
    from lilypad.protocol.contract_jobs import contract_offer_problems

    if contracts is None:
        return ["a smart-contract job's offer can only be checked against the chain, and none is connected"]
    job_creator = contracts.addresses["job_creator"]
    onchain = contracts.contract_job(offer.contract_job_id)
    if onchain is None:
        return [f"there is no contract job {offer.contract_job_id}"]
    problems = contract_offer_problems(onchain, offer, job_creator)
    if deal.members.job_creator.lower() != job_creator.lower():
        problems.append(f"the deal's job creator {deal.members.job_creator} is not the job creator contract")
    if bytes(deal.nonce) != bytes(offer.nonce):
        problems.append("the deal's nonce is not the contract job's")
    if job.module != offer.module or dict(job.inputs) != dict(offer.inputs) or job.inputs_cid is not None:
        problems.append("the job shown is not the contract job's offer")
    return problems


def resolve_job_module(job: DealJob, *, cache_dir: Path, allowlist: Any | None) -> Any:
    """``job.module`` resolved here (allowlist enforced); raises
    :class:`~lilypad.exceptions.ModuleCommitMismatchError` unless it resolves
    to the job's signed repository and commit."""
    from lilypad.modules.resolve import ModuleResolver

    module = job.module
    resolved = ModuleResolver(cache_dir, allowlist=allowlist).resolve(module.ref)
    if resolved.commit != module.commit or resolved.repo != module.repo:
        raise ModuleCommitMismatchError(module.ref, f"{module.repo}@{module.commit}",
                                        f"{resolved.repo}@{resolved.commit}")
    return resolved


def module_problem(job: DealJob, *, cache_dir: Path, allowlist: Any | None) -> str | None:
    """Why this job will not be run here (``None``: its module resolves to the
    signed commit and its spec, rendered with the job's inputs, can run)."""
    from lilypad.modules.spec import check_runnable

    try:
        resolved = resolve_job_module(job, cache_dir=cache_dir, allowlist=allowlist)
        check_runnable(resolved.render(job.inputs or {}))
    except LilypadError as exc:
        return str(exc)
    return None


def fetch_job_inputs(client: Any, job: DealJob, dest: Path, ipfs: Any | None = None) -> Path | None:
    """The job's input files, downloaded into ``dest`` and verified against the
    signed ``inputs_cid`` (``None`` when the job has none): from IPFS first when
    ``ipfs`` (:class:`~lilypad.ipfs.IpfsSources`) is given, else (or when that
    fails) from the solver. A ``dest`` left by an earlier attempt is reused
    only if it still has that CID."""
    from lilypad.results.cid import directory_cid

    cid = job.inputs_cid
    if not cid:
        return None
    if dest.is_dir():
        try:
            if directory_cid(dest) == cid:
                return dest
        except LilypadError:
            pass
        shutil.rmtree(dest, ignore_errors=True)
    if ipfs is not None and ipfs.enabled:
        from lilypad.ipfs.fetch import fetch_tree
        from lilypad.protocol.inputs import InputLimits, check_input_tree

        limits = InputLimits()
        try:
            fetch_tree(ipfs, cid, dest, max_bytes=limits.max_total_bytes, max_files=limits.max_files)
            check_input_tree(dest, limits)
            log_event(log, "inputs_fetched", deal_id=job.deal_id, inputs_cid=cid, source="ipfs")
            return dest
        except LilypadError as exc:
            shutil.rmtree(dest, ignore_errors=True)
            log_event(log, "ipfs_fetch_failed", deal_id=job.deal_id, inputs_cid=cid,
                      error=f"{type(exc).__name__}: {exc}", note="trying the solver")
    if client is None:
        raise ValueError("this job has input files: a solver client is needed to download them")
    client.download_inputs(job.job_offer_id, dest, cid)
    log_event(log, "inputs_fetched", deal_id=job.deal_id, inputs_cid=cid, source="solver")
    return dest


@dataclass(frozen=True)
class PreparedJob:
    """A deal's job ready to run: its module checked out at the signed commit,
    the spec rendered with the job's inputs, and the verified input files."""

    job: DealJob
    module_dir: Path
    spec: ModuleSpec
    inputs_dir: Path | None


def prepare_deal_job(job: DealJob, *, cache_dir: Path, runs_dir: Path, allowlist: Any | None,
                     client: Any | None = None, ipfs: Any | None = None) -> PreparedJob:
    """Resolve and check the module, render it with the job's inputs, and fetch
    and verify its input files (into ``runs_dir``; from IPFS first with ``ipfs``)."""
    resolved = resolve_job_module(job, cache_dir=cache_dir, allowlist=allowlist)
    spec = resolved.render(dict(job.inputs))
    runs_dir.mkdir(parents=True, exist_ok=True)
    inputs_dir = fetch_job_inputs(client, job, runs_dir / f"{job.deal_id[2:18]}-inputs", ipfs)
    return PreparedJob(job=job, module_dir=resolved.path, spec=spec, inputs_dir=inputs_dir)


def run_prepared(prepared: PreparedJob, *, runs_dir: Path, executor: Any | None = None,
                 **run_options: Any) -> RunResult:
    """Run a prepared job in a fresh work directory under ``runs_dir``: on the local
    Docker engine, or with ``executor`` (a
    :class:`~lilypad.executor.bacalhau.BacalhauExecutor`: the job is named by the
    deal id; ``run_options`` go to its ``run_module``)."""
    work = runs_dir / f"{prepared.job.deal_id[2:18]}-{uuid.uuid4().hex[:8]}"
    work.parent.mkdir(parents=True, exist_ok=True)
    if executor is not None:
        return executor.run_module(prepared.spec, module_dir=prepared.module_dir, work_dir=work,
                                   inputs_dir=prepared.inputs_dir, job_id=prepared.job.deal_id, **run_options)
    from lilypad.executor import run_module

    return run_module(prepared.spec, module_dir=prepared.module_dir, work_dir=work, inputs_dir=prepared.inputs_dir)


def run_deal_job(job: DealJob, *, cache_dir: Path, runs_dir: Path, allowlist: Any | None,
                 client: Any | None = None, ipfs: Any | None = None, executor: Any | None = None,
                 **run_options: Any) -> tuple[PreparedJob, RunResult]:
    """:func:`prepare_deal_job` (input files from ``ipfs`` when given), then :func:`run_prepared`
    once (with ``executor`` and ``run_options``): the prepared job (its spec says how the run
    is metered and judged) and the executor's ``RunResult``."""
    prepared = prepare_deal_job(job, cache_dir=cache_dir, runs_dir=runs_dir, allowlist=allowlist, client=client,
                                ipfs=ipfs)
    return prepared, run_prepared(prepared, runs_dir=runs_dir, executor=executor, **run_options)
