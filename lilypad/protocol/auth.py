"""Signed requests to the solver other than offers: cancels and uploads.

* A **cancel** is the offer author's EIP-712 signature of
  ``CancelOffer(string kind, bytes32 offerId, uint64 createdAt)`` under the
  offers' domain (:func:`sign_cancel`, :func:`recover_cancel_signer`).
* A **result upload** carries the provider's EIP-191 signature of
  :func:`upload_message` (deal id and the body's SHA-256) in
  :data:`SIGNATURE_HEADER`, the SHA-256 in :data:`SHA256_HEADER`.
* An **inputs upload** carries the job creator's EIP-191 signature of
  :func:`inputs_upload_message` (job offer id and the body's SHA-256) in the
  same headers.

Every ``sign_*`` takes a raw key or an ape account
(:func:`lilypad.protocol.accounts.sign_signable`); every ``recover_*`` returns
the signer's address, or ``None`` for a malformed signature.
"""

from __future__ import annotations

import time
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from lilypad.protocol.accounts import sign_signable
from lilypad.protocol.signing import OfferDomain

__all__ = [
    "CID_HEADER",
    "SHA256_HEADER",
    "SIGNATURE_HEADER",
    "cancel_typed_data",
    "inputs_upload_message",
    "recover_cancel_signer",
    "recover_inputs_upload_signer",
    "recover_upload_signer",
    "sign_cancel",
    "sign_inputs_upload",
    "sign_upload",
    "upload_message",
]

#: Headers of a result upload: the provider's EIP-191 signature of
#: :func:`upload_message` and the body's SHA-256 (hex) it covers.
SIGNATURE_HEADER = "X-Lilypad-Signature"
SHA256_HEADER = "X-Lilypad-Content-SHA256"
#: Header of a result download: the CID of the archive's content.
CID_HEADER = "X-Lilypad-Result-CID"


_CANCEL_TYPES = {
    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                     {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
    "CancelOffer": [{"name": "kind", "type": "string"}, {"name": "offerId", "type": "bytes32"},
                    {"name": "createdAt", "type": "uint64"}],
}


def cancel_typed_data(kind: str, offer_id: str, created_at: int, domain: OfferDomain) -> dict[str, Any]:
    """The EIP-712 message ``CancelOffer(string kind, bytes32 offerId, uint64 createdAt)``
    an offer's author signs to cancel it."""
    return {
        "types": _CANCEL_TYPES,
        "primaryType": "CancelOffer",
        "domain": domain.as_eip712(),
        "message": {"kind": kind, "offerId": offer_id, "createdAt": int(created_at)},
    }


def sign_cancel(kind: str, offer_id: str, private_key: Any, domain: OfferDomain,
                *, created_at: int | None = None) -> dict[str, Any]:
    """The body of a cancel request: ``{"created_at", "signature"}``."""
    created = int(time.time()) if created_at is None else int(created_at)
    signature = sign_signable(private_key, encode_typed_data(full_message=cancel_typed_data(kind, offer_id, created,
                                                                                             domain)))
    return {"created_at": created, "signature": "0x" + signature.hex()}


def recover_cancel_signer(kind: str, offer_id: str, created_at: int, signature: str | bytes,
                          domain: OfferDomain) -> str | None:
    """The address that signed a cancel request (``None`` if malformed)."""
    try:
        message = encode_typed_data(full_message=cancel_typed_data(kind, offer_id, created_at, domain))
        return Account.recover_message(message, signature=signature)
    except Exception:  # malformed hex, bad signature bytes, ...
        return None


def upload_message(deal_id: str, sha256_hex: str) -> str:
    """The EIP-191 text a provider signs to upload a deal's result archive."""
    return f"lilypad result upload\ndeal: {deal_id.lower()}\nsha256: {sha256_hex.lower()}"


def sign_upload(deal_id: str, sha256_hex: str, private_key: Any) -> str:
    """The ``0x``-hex EIP-191 signature of :func:`upload_message`."""
    return "0x" + sign_signable(private_key, encode_defunct(text=upload_message(deal_id, sha256_hex))).hex()


def recover_upload_signer(deal_id: str, sha256_hex: str, signature: str) -> str | None:
    """Who signed an upload (``None`` if the signature is malformed)."""
    try:
        return Account.recover_message(encode_defunct(text=upload_message(deal_id, sha256_hex)), signature=signature)
    except Exception:
        return None


def inputs_upload_message(offer_id: str, sha256_hex: str) -> str:
    """The EIP-191 text a job creator signs to upload its job offer's input files."""
    return f"lilypad inputs upload\njob offer: {offer_id.lower()}\nsha256: {sha256_hex.lower()}"


def sign_inputs_upload(offer_id: str, sha256_hex: str, signer: Any) -> str:
    """The ``0x``-hex EIP-191 signature of :func:`inputs_upload_message`."""
    return "0x" + sign_signable(signer, encode_defunct(text=inputs_upload_message(offer_id, sha256_hex))).hex()


def recover_inputs_upload_signer(offer_id: str, sha256_hex: str, signature: str) -> str | None:
    """Who signed an inputs upload (``None`` if the signature is malformed)."""
    try:
        message = encode_defunct(text=inputs_upload_message(offer_id, sha256_hex))
        return Account.recover_message(message, signature=signature)
    except Exception:
        return None
