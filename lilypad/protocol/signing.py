"""EIP-712 signatures of offers, and the checks the solver makes on receipt.

An offer is signed by its author (a resource offer by its provider, a job
offer by its creator) as EIP-712 typed data under the domain
``{name: "lilypad", version: "1", chainId, verifyingContract: <controller>}``,
so a signature is good for one deployment only, and every field of the offer
is covered: the solver (or anyone relaying the offer) can change nothing.
The typed data, field by field (see :func:`offer_typed_data`)::

    ResourceOffer(address resourceProvider, address solver, MachineSpec spec,
                  uint32 slots, string pricingMode, Pricing pricing,
                  address[] mediators, string[] modules, Timeouts timeouts,
                  uint64 createdAt, uint64 expiresAt, uint8 minConsortiumSize,
                  bytes32 nonce)
    JobOffer(address jobCreator, address solver, Module module, Input[] inputs,
             string inputsCid, MachineSpec spec, string pricingMode, Pricing pricing,
             address[] mediators, address target, Timeouts timeouts,
             uint8 consortiumSize, uint256 contractJobId, uint64 createdAt,
             bytes32 nonce)
    MachineSpec(uint64 cpu, uint32 gpu, uint64[] vram, uint64 ram, uint64 disk)
    Pricing(uint96 instructionPrice, uint96 paymentCollateral,
            uint16 resultsCollateralMultiple, uint96 mediationFee)
    Timeouts(uint32 agree, uint32 submitResults, uint32 judgeResults,
             uint32 mediateResults, uint96 submitResultsCollateral,
             uint96 judgeResultsCollateral)
    Module(string ref, string repo, string commit)
    Input(string key, string value)

``inputs`` are signed sorted by key; ``inputsCid`` is the empty string when
the job has no input files; ``target`` is the zero address when the job names
none; ``mediators`` and ``modules`` in their canonical (sorted) order.

An offer's id is the digest signed, as ``0x``-hex (:func:`offer_id`): anyone
holding the offer computes it, and only its author can have produced it.

:func:`verify_offer` checks, in this order: the signature (else
:class:`~lilypad.exceptions.OfferSignatureError`), the clock - ``created_at``
within :data:`MAX_CLOCK_SKEW` of now (else
:class:`~lilypad.exceptions.OfferFromFutureError` or
:class:`~lilypad.exceptions.OfferExpiredError`) and, for a resource offer, now
before ``expires_at`` (else ``OfferExpiredError``) - and last the nonce, which
it records (else :class:`~lilypad.exceptions.OfferReplayError`), so an offer
refused for another reason does not use up its nonce.
"""

from __future__ import annotations

import heapq
from typing import Annotated, Any, Protocol, runtime_checkable

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import keccak
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from lilypad.exceptions import (
    InvalidPrivateKeyError,
    OfferExpiredError,
    OfferFromFutureError,
    OfferReplayError,
    OfferSignatureError,
)
from lilypad.protocol.deal import DealPricing, DealTimeouts
from lilypad.protocol.fields import ZERO_ADDRESS, Address, parse_fixed_bytes
from lilypad.protocol.offers import JobOffer, ResourceOffer, ResourceSpec

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "EIP712_TYPES",
    "MAX_CLOCK_SKEW",
    "InMemoryNonceRegistry",
    "NonceRegistry",
    "OfferDomain",
    "SignedOffer",
    "UNSIGNED",
    "offer_digest",
    "offer_id",
    "offer_typed_data",
    "recover_signer",
    "sign_offer",
    "unsigned_offer",
    "verify_offer",
]

DOMAIN_NAME = "lilypad"
DOMAIN_VERSION = "1"
#: How far an offer's ``created_at`` may be from the solver's clock (seconds).
MAX_CLOCK_SKEW = 300

EIP712_TYPES: dict[str, list[dict[str, str]]] = {
    "ResourceOffer": [
        {"name": "resourceProvider", "type": "address"},
        {"name": "solver", "type": "address"},
        {"name": "spec", "type": "MachineSpec"},
        {"name": "slots", "type": "uint32"},
        {"name": "pricingMode", "type": "string"},
        {"name": "pricing", "type": "Pricing"},
        {"name": "mediators", "type": "address[]"},
        {"name": "modules", "type": "string[]"},
        {"name": "timeouts", "type": "Timeouts"},
        {"name": "createdAt", "type": "uint64"},
        {"name": "expiresAt", "type": "uint64"},
        {"name": "minConsortiumSize", "type": "uint8"},
        {"name": "nonce", "type": "bytes32"},
    ],
    "JobOffer": [
        {"name": "jobCreator", "type": "address"},
        {"name": "solver", "type": "address"},
        {"name": "module", "type": "Module"},
        {"name": "inputs", "type": "Input[]"},
        {"name": "inputsCid", "type": "string"},
        {"name": "spec", "type": "MachineSpec"},
        {"name": "pricingMode", "type": "string"},
        {"name": "pricing", "type": "Pricing"},
        {"name": "mediators", "type": "address[]"},
        {"name": "target", "type": "address"},
        {"name": "timeouts", "type": "Timeouts"},
        {"name": "consortiumSize", "type": "uint8"},
        {"name": "contractJobId", "type": "uint256"},
        {"name": "createdAt", "type": "uint64"},
        {"name": "nonce", "type": "bytes32"},
    ],
    "MachineSpec": [
        {"name": "cpu", "type": "uint64"},
        {"name": "gpu", "type": "uint32"},
        {"name": "vram", "type": "uint64[]"},
        {"name": "ram", "type": "uint64"},
        {"name": "disk", "type": "uint64"},
    ],
    "Pricing": [
        {"name": "instructionPrice", "type": "uint96"},
        {"name": "paymentCollateral", "type": "uint96"},
        {"name": "resultsCollateralMultiple", "type": "uint16"},
        {"name": "mediationFee", "type": "uint96"},
    ],
    "Timeouts": [
        {"name": "agree", "type": "uint32"},
        {"name": "submitResults", "type": "uint32"},
        {"name": "judgeResults", "type": "uint32"},
        {"name": "mediateResults", "type": "uint32"},
        {"name": "submitResultsCollateral", "type": "uint96"},
        {"name": "judgeResultsCollateral", "type": "uint96"},
    ],
    "Module": [
        {"name": "ref", "type": "string"},
        {"name": "repo", "type": "string"},
        {"name": "commit", "type": "string"},
    ],
    "Input": [
        {"name": "key", "type": "string"},
        {"name": "value", "type": "string"},
    ],
}

_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

# The structs each primary type uses (EIP-712 wants only those listed).
_USES = {
    "ResourceOffer": ("MachineSpec", "Pricing", "Timeouts"),
    "JobOffer": ("Module", "Input", "MachineSpec", "Pricing", "Timeouts"),
}


class OfferDomain(BaseModel):
    """The EIP-712 domain offers are signed under: one chain, one controller."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain_id: int = Field(ge=0)
    verifying_contract: Address

    def as_eip712(self) -> dict[str, Any]:
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


# --------------------------------------------------------------------------
# Typed data
# --------------------------------------------------------------------------


def _spec(spec: ResourceSpec) -> dict[str, Any]:
    return {"cpu": spec.cpu, "gpu": spec.gpu, "vram": list(spec.vram), "ram": spec.ram, "disk": spec.disk}


def _pricing(pricing: DealPricing) -> dict[str, Any]:
    return {
        "instructionPrice": pricing.instruction_price,
        "paymentCollateral": pricing.payment_collateral,
        "resultsCollateralMultiple": pricing.results_collateral_multiple,
        "mediationFee": pricing.mediation_fee,
    }


def _timeouts(timeouts: DealTimeouts) -> dict[str, Any]:
    return {
        "agree": timeouts.agree,
        "submitResults": timeouts.submit_results,
        "judgeResults": timeouts.judge_results,
        "mediateResults": timeouts.mediate_results,
        "submitResultsCollateral": timeouts.submit_results_collateral,
        "judgeResultsCollateral": timeouts.judge_results_collateral,
    }


def _message(offer: ResourceOffer | JobOffer) -> tuple[str, dict[str, Any]]:
    common = {
        "solver": offer.solver,
        "spec": _spec(offer.spec),
        "pricingMode": offer.pricing_mode.value,
        "pricing": _pricing(offer.pricing),
        "mediators": list(offer.mediators),
        "timeouts": _timeouts(offer.timeouts),
        "createdAt": offer.created_at,
        "nonce": offer.nonce,
    }
    if isinstance(offer, ResourceOffer):
        return "ResourceOffer", common | {
            "resourceProvider": offer.resource_provider,
            "slots": offer.slots,
            "modules": list(offer.modules),
            "expiresAt": offer.expires_at,
            "minConsortiumSize": offer.min_consortium_size,
        }
    if isinstance(offer, JobOffer):
        return "JobOffer", common | {
            "jobCreator": offer.job_creator,
            "module": {"ref": offer.module.ref, "repo": offer.module.repo, "commit": offer.module.commit},
            "inputs": [{"key": k, "value": offer.inputs[k]} for k in sorted(offer.inputs)],
            "target": offer.target or ZERO_ADDRESS,
            "inputsCid": offer.inputs_cid or "",
            "consortiumSize": offer.consortium_size,
            "contractJobId": offer.contract_job_id or 0,
        }
    raise TypeError(f"not an offer: {type(offer).__name__}")


def offer_typed_data(offer: ResourceOffer | JobOffer, domain: OfferDomain) -> dict[str, Any]:
    """The full EIP-712 message (``eth_signTypedData_v4`` shape) for ``offer``;
    ``nonce`` as ``0x``-hex so that it also serialises to JSON for wallets."""
    primary, message = _message(offer)
    message["nonce"] = "0x" + offer.nonce.hex()
    types = {"EIP712Domain": _DOMAIN_TYPE, primary: EIP712_TYPES[primary]}
    types |= {name: EIP712_TYPES[name] for name in _USES[primary]}
    return {"types": types, "primaryType": primary, "domain": domain.as_eip712(), "message": message}


def _signable(offer: ResourceOffer | JobOffer, domain: OfferDomain) -> SignableMessage:
    return encode_typed_data(full_message=offer_typed_data(offer, domain))


def offer_digest(offer: ResourceOffer | JobOffer, domain: OfferDomain) -> bytes:
    """The 32-byte EIP-712 hash that is signed (``keccak(0x1901 || domain || struct)``)."""
    signable = _signable(offer, domain)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def offer_id(signed: SignedOffer | ResourceOffer | JobOffer, domain: OfferDomain) -> str:
    """An offer's id: its EIP-712 digest as ``0x``-hex (anyone can compute it)."""
    offer = signed.offer if isinstance(signed, SignedOffer) else signed
    return "0x" + offer_digest(offer, domain).hex()


# --------------------------------------------------------------------------
# Signing and verifying
# --------------------------------------------------------------------------


#: The "signature" of a smart-contract job's offer: 65 zero bytes. Nobody signs for a contract;
#: the offer is checked against the chain instead (:func:`verify_offer`'s ``contract_checked``).
UNSIGNED = bytes(65)


def unsigned_offer(offer: JobOffer) -> SignedOffer:
    """A smart-contract job's offer as the solver takes it (see :data:`UNSIGNED`)."""
    if offer.contract_job_id is None:
        raise ValueError("only a contract job's offer goes unsigned")
    return SignedOffer(offer=offer, signature=UNSIGNED)


def _signature(value: Any) -> bytes:
    return parse_fixed_bytes(value, 65, hex_error="expected a signature as hex",
                             size_error="expected a 65-byte signature (r, s, v)")


class SignedOffer(BaseModel):
    """An offer and its author's 65-byte EIP-712 signature (``0x``-hex in JSON)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    offer: Annotated[ResourceOffer | JobOffer, Field(discriminator="kind")]
    signature: Annotated[
        bytes,
        BeforeValidator(_signature),
        PlainSerializer(lambda b: "0x" + b.hex(), return_type=str, when_used="json"),
        WithJsonSchema({"type": "string", "pattern": "^0x[0-9a-fA-F]{130}$", "description": "65 bytes, 0x-hex"}),
    ]

    @property
    def kind(self) -> str:
        return self.offer.kind

    @property
    def signer(self) -> str:
        """The address the offer says signed it (checked by :func:`verify_offer`)."""
        return self.offer.signer


def sign_offer(offer: ResourceOffer | JobOffer, private_key: Any, domain: OfferDomain) -> SignedOffer:
    """Sign ``offer`` with its author's key (hex string, bytes, an object
    with ``.key`` such as an eth-account ``LocalAccount``, or an unlocked ape
    account, see :func:`lilypad.protocol.accounts.sign_signable`).

    Raises :class:`~lilypad.exceptions.InvalidPrivateKeyError` for an unusable
    key and :class:`~lilypad.exceptions.OfferSignatureError` when the key is not
    the offer author's (a resource offer is signed by its provider, a job offer
    by its creator).
    """
    from lilypad.protocol.accounts import sign_signable, signer_address

    try:
        address = signer_address(private_key)
    except InvalidPrivateKeyError:
        raise InvalidPrivateKeyError("the offer signing key") from None
    if address != offer.signer:
        raise OfferSignatureError(
            offer.kind, offer.signer, address, f"the key belongs to {address}, not the offer's author"
        )
    return SignedOffer(offer=offer, signature=sign_signable(private_key, _signable(offer, domain)))


def recover_signer(signed: SignedOffer, domain: OfferDomain) -> str | None:
    """The address ``signed.signature`` recovers to over the offer as it is now
    (``None`` when the signature is malformed)."""
    try:
        return Account.recover_message(_signable(signed.offer, domain), signature=signed.signature)
    except Exception:  # eth-keys raises BadSignature, ValidationError, ValueError...
        return None


@runtime_checkable
class NonceRegistry(Protocol):
    """Remembers the nonces each address has used.

    ``check_and_record`` returns ``True`` and records the nonce when
    ``address`` has not used it, ``False`` when it has. It must be atomic (a
    nonce is accepted once even under concurrent calls). ``keep_until`` (Unix
    seconds) is a hint: after it the offer would be refused as expired anyway,
    so the registry may forget the nonce then.
    """

    def check_and_record(self, address: str, nonce: bytes, *, keep_until: int | None = None) -> bool: ...


class InMemoryNonceRegistry:
    """A :class:`NonceRegistry` in a dict (lost on restart; tests and one-off
    solvers). Call :meth:`prune` now and then to forget nonces past their
    ``keep_until``; nonces recorded without one are kept for ever."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, bytes], int | None] = {}
        self._expiry: list[tuple[int, str, bytes]] = []

    def check_and_record(self, address: str, nonce: bytes, *, keep_until: int | None = None) -> bool:
        entry = (address.lower(), bytes(nonce))
        if entry in self._seen:
            return False
        self._seen[entry] = keep_until
        if keep_until is not None:
            heapq.heappush(self._expiry, (keep_until, *entry))
        return True

    def prune(self, now: int) -> int:
        """Forget nonces whose ``keep_until`` is before ``now``; return how many."""
        dropped = 0
        while self._expiry and self._expiry[0][0] < now:
            _, address, nonce = heapq.heappop(self._expiry)
            del self._seen[(address, nonce)]
            dropped += 1
        return dropped

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, item: object) -> bool:
        if not (isinstance(item, tuple) and len(item) == 2):
            return False
        address, nonce = item
        return isinstance(address, str) and (address.lower(), nonce) in self._seen


def verify_offer(
    signed: SignedOffer,
    domain: OfferDomain,
    *,
    now: int,
    seen_nonces: NonceRegistry,
    skew: int = MAX_CLOCK_SKEW,
    contract_checked: bool = False,
) -> None:
    """Accept ``signed`` or raise; see the module docstring for the checks and
    their order. ``now`` is the solver's clock (Unix seconds); on success the
    offer's nonce is recorded in ``seen_nonces``. A smart-contract job's offer
    (``contract_job_id`` set) carries :data:`UNSIGNED` instead of a signature and is
    accepted only with ``contract_checked``: the caller has checked it against the chain."""
    offer = signed.offer
    kind, signer = offer.kind, offer.signer
    if isinstance(offer, JobOffer) and offer.contract_job_id is not None:
        if not contract_checked or signed.signature != UNSIGNED:
            raise OfferSignatureError(kind, signer, None)
    else:
        recovered = recover_signer(signed, domain)
        if recovered != signer:
            raise OfferSignatureError(kind, signer, recovered)
    if offer.created_at > now + skew:
        raise OfferFromFutureError(kind, signer, offer.created_at, now, skew)
    stale_at = offer.created_at + skew
    if now > stale_at:
        raise OfferExpiredError(kind, signer, stale_at, now, f"created more than {skew} s ago")
    if isinstance(offer, ResourceOffer) and now >= offer.expires_at:
        raise OfferExpiredError(kind, signer, offer.expires_at, now, "past its expires_at")
    if not seen_nonces.check_and_record(signer, offer.nonce, keep_until=stale_at):
        raise OfferReplayError(kind, signer, offer.nonce)
