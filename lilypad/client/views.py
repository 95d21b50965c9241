"""What the solver's HTTP API (docs/solver-api.md) answers, as typed values.

One frozen pydantic model per answer, each parsing exactly the JSON the
solver sends - ``view.model_dump(mode="json")`` gives that JSON back, key for
key - so the client's callers use attributes (``deal.terms``, ``job.module.ref``)
instead of digging in dictionaries:

* :class:`SolverHealth` - ``GET /health``;
* :class:`SolverDomain` - ``GET /domain``, the EIP-712 domain offers are signed under;
* :class:`OfferView` - an offer with its state (``GET``/``DELETE /…_offers/{id}``,
  ``GET /resource_offers``);
* :class:`DealView` - a deal: its :class:`~lilypad.protocol.deal.Deal` terms,
  on-chain state and timestamps, uploaded result (``GET /deals``, ``GET /deals/{id}``);
* :class:`DealJob` - what a deal's provider runs (``GET /deals/{id}/job``);
* :class:`StoredResult`, :class:`StoredInputs` - the answers to a result or
  input-files upload.

Unknown keys are ignored, so a newer solver that adds a field does not break
an older client.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lilypad.protocol.deal import AgreementState, Deal
from lilypad.protocol.offers import JobModule, ResourceSpec
from lilypad.protocol.signing import OfferDomain, SignedOffer

__all__ = [
    "AgreementTimestamps",
    "DealJob",
    "DealView",
    "OfferView",
    "SolverDomain",
    "SolverHealth",
    "StoredInputs",
    "StoredResult",
    "UploadedResult",
]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class SolverHealth(_View):
    """``GET /health``: the solver is up; the chain and controller it serves,
    the chain's head block (``None`` if it could not be read), the solver's
    own address (``None`` if it has none) and how many offers are open."""

    status: str
    chain_id: int | None = None
    controller: str | None = None
    head_block: int | None = None
    solver: str | None = None
    open_offers: dict[str, int] = Field(default_factory=dict)


class SolverDomain(_View):
    """``GET /domain``: the EIP-712 domain offers are signed under (JSON keys
    ``name``, ``version``, ``chainId``, ``verifyingContract``)."""

    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    name: str
    version: str
    chain_id: int = Field(alias="chainId")
    verifying_contract: str = Field(alias="verifyingContract")

    @property
    def offer_domain(self) -> OfferDomain:
        """The domain to sign offers and cancels with."""
        return OfferDomain(chain_id=self.chain_id, verifying_contract=self.verifying_contract)


class OfferView(_View):
    """An offer as the solver holds it: its ``id`` (the EIP-712 digest), ``kind``,
    ``state`` (``open``, ``expired``, ``cancelled``, and for a job offer
    ``matched``), its author (``signer``), the solver's timestamps, the signed
    offer itself and, for a job offer once matched, its ``deal_id`` (a resource
    offer's view has no ``deal_id`` key; the attribute is then ``None``)."""

    id: str
    kind: Literal["resource", "job"]
    state: str
    signer: str
    accepted_at: float
    updated_at: float
    offer: SignedOffer
    deal_id: str | None = None


class UploadedResult(_View):
    """The result archive a provider uploaded for a deal."""

    cid: str
    size: int


class AgreementTimestamps(_View):
    """The on-chain agreement's timestamps (block times, Unix seconds; ``None``
    until reached): first agree, second agree, results submitted, mediation requested."""

    created_at: int | None = None
    agreed_at: int | None = None
    results_submitted_at: int | None = None
    mediation_requested_at: int | None = None


class DealView(_View):
    """A deal as the solver shows it: the ``terms`` the contracts take, the
    offers it came from, the on-chain ``state`` (the contracts' name, e.g.
    ``DealAgreed``) and ``state_code``, the result CID recorded on-chain, the
    uploaded result, the agreement's timestamps and the solver's own."""

    deal_id: str
    terms: Deal
    job_offer_id: str
    resource_offer_id: str
    state: str
    state_code: int
    result_cid: str | None = None
    uploaded_result: UploadedResult | None = None
    agreement: AgreementTimestamps = AgreementTimestamps()
    created_at: float
    updated_at: float

    @property
    def agreement_state(self) -> AgreementState:
        """:attr:`state` as an :class:`~lilypad.protocol.deal.AgreementState`."""
        return AgreementState(self.state_code)


class DealJob(_View):
    """``GET /deals/{id}/job``: what the deal's provider must run - the job
    offer's module (resolved to a commit), inputs, input files' CID (``None``:
    none) and machine."""

    deal_id: str
    job_offer_id: str
    module: JobModule
    inputs: dict[str, str] = Field(default_factory=dict)
    inputs_cid: str | None = None
    spec: ResourceSpec


class StoredResult(_View):
    """The solver's answer to a result upload: the CID it stored and the archive's size."""

    deal_id: str
    cid: str
    size: int


class StoredInputs(_View):
    """The solver's answer to an input-files upload: the CID it stored and the archive's size."""

    offer_id: str
    cid: str
    size: int
