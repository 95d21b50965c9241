"""Who may do what to which offer, deal and result: the solver's request rules, pure.

:class:`~lilypad.solver.service.SolverCore` and the HTTP API
(:mod:`lilypad.solver.api`) apply them; each refusal is a typed
:class:`~lilypad.exceptions.LilypadError` that the API answers with its
status and error code:

* :func:`check_offer_kind` - an offer is posted to its own kind's collection
  (:class:`~lilypad.exceptions.OfferKindError`);
* :func:`check_result_uploader` - only a deal's provider uploads its result
  (:class:`~lilypad.exceptions.UploadSignerError`);
* :func:`check_inputs_uploader` - only the job creator uploads a job offer's
  input files, and only while the offer is open or matched
  (:class:`~lilypad.exceptions.UploadSignerError`,
  :class:`~lilypad.exceptions.InputsClosedError`);
* :func:`inputs_cid_of` - a job offer has input files to upload or serve
  (:class:`~lilypad.exceptions.InputsNotFoundError`);
* :func:`servable_result` - a deal's result is served only while it is the
  one recorded on-chain (:class:`~lilypad.exceptions.ResultGoneError`,
  :class:`~lilypad.exceptions.ResultNotUploadedError`,
  :class:`~lilypad.exceptions.ResultNotOnChainError`,
  :class:`~lilypad.exceptions.OnChainResultMismatchError`).

Cancelling an offer (only by its author, within the clock skew, only while
open) is :meth:`~lilypad.solver.service.SolverCore.cancel_offer`.
"""

from __future__ import annotations

from collections.abc import Callable

from lilypad.exceptions import (
    InputsClosedError,
    InputsNotFoundError,
    OfferKindError,
    OnChainResultMismatchError,
    ResultGoneError,
    ResultNotOnChainError,
    ResultNotUploadedError,
    UploadSignerError,
)
from lilypad.protocol.auth import recover_inputs_upload_signer, recover_upload_signer
from lilypad.protocol.offers import JobOffer
from lilypad.protocol.signing import SignedOffer
from lilypad.solver.store import DealRecord, OfferKind, OfferRecord, ResultRecord

__all__ = [
    "INPUTS_UPLOAD_STATES",
    "check_inputs_uploader",
    "check_offer_kind",
    "check_result_uploader",
    "inputs_cid_of",
    "servable_result",
]

#: The states in which a job offer takes its input files.
INPUTS_UPLOAD_STATES = ("open", "matched")


def check_offer_kind(signed: SignedOffer, kind: OfferKind) -> None:
    """Refuse ``signed`` where ``kind`` offers are taken unless it is one."""
    if signed.kind != kind:
        raise OfferKindError(kind, signed.kind)


def check_result_uploader(deal: DealRecord, sha256_hex: str, signature: str) -> None:
    """Refuse a result upload for ``deal`` unless ``signature`` (over the deal
    id and the archive's SHA-256) is its provider's."""
    signer = recover_upload_signer(deal.deal_id, sha256_hex, signature)
    if signer != deal.resource_provider:
        raise UploadSignerError("result", signer, deal.resource_provider)


def check_inputs_uploader(offer: OfferRecord, sha256_hex: str, signature: str) -> None:
    """Refuse an upload of job offer ``offer``'s input files unless ``signature``
    (over the offer id and the archive's SHA-256) is the job creator's and
    the offer is in one of :data:`INPUTS_UPLOAD_STATES`."""
    signer = recover_inputs_upload_signer(offer.id, sha256_hex, signature)
    if signer != offer.signer:
        raise UploadSignerError("inputs", signer, offer.signer)
    if offer.state not in INPUTS_UPLOAD_STATES:
        raise InputsClosedError(offer.id, offer.state)


def inputs_cid_of(offer: OfferRecord) -> str:
    """The CID of job offer ``offer``'s input files (its signed ``inputs_cid``)."""
    job = offer.signed.offer
    cid = job.inputs_cid if isinstance(job, JobOffer) else None
    if cid is None:
        raise InputsNotFoundError(offer.id)
    return cid


def servable_result(deal: DealRecord, result: ResultRecord | None, onchain_result: Callable[[str], str | None],
                    kept_s: float | None) -> ResultRecord:
    """The uploaded ``result`` of ``deal``, if it may be served now: it exists
    (missing from a deal that ended with a result on-chain, it was deleted
    ``kept_s`` seconds after the end; ``None``: results are never deleted) and
    its CID is ``onchain_result(deal_id)``, the one recorded on-chain (asked
    only once there is a result)."""
    if result is None and deal.state.is_terminal and deal.result_cid is not None and kept_s is not None:
        raise ResultGoneError(deal.deal_id, kept_s)
    if result is None:
        raise ResultNotUploadedError(deal.deal_id)
    onchain = onchain_result(deal.deal_id)
    if onchain is None:
        raise ResultNotOnChainError(deal.deal_id)
    if onchain != result.cid:
        raise OnChainResultMismatchError(deal.deal_id, onchain, result.cid)
    return result
