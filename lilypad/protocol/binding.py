"""What binds an on-chain deal to the job it runs.

A deal's terms (:class:`~lilypad.protocol.deal.Deal`) name parties, windows
and prices, not the job: the job - module (repository and commit), inputs,
input files' CID - is in the job creator's signed job offer, which the solver
keeps. So that nobody (a solver above all) can later swap the job under a
deal, the solver sets the deal's ``nonce`` to :func:`deal_nonce` of the two
offers' ids (their EIP-712 digests): the deal id, and so everything on-chain,
commits to the job offer, whose signature commits to the module. The module's
commit in turn pins its spec, including how its results are compared and
metered (``verification``), so neither party can change those after the deal.

:func:`deal_binding_problems` is the job creator's and provider's check of a
deal's nonce; :func:`job_binding_problems` is the mediator's (and anyone's)
full check of a job the solver shows for a deal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from eth_utils import keccak

from lilypad.protocol.fields import parse_fixed_bytes

if TYPE_CHECKING:
    from lilypad.protocol.deal import Deal
    from lilypad.protocol.offers import JobModule
    from lilypad.protocol.signing import OfferDomain, SignedOffer

__all__ = ["deal_binding_problems", "deal_nonce", "job_binding_problems"]


def deal_nonce(job_offer_id: str | bytes, resource_offer_id: str | bytes) -> bytes:
    """The nonce of the deal matching these two offers: ``keccak256(jobOfferId ‖ resourceOfferId)``."""
    def raw(value: str | bytes, what: str) -> bytes:
        return parse_fixed_bytes(value, 32, hex_error=f"the {what} offer id is not hex: {value!r}",
                                 size_error=f"the {what} offer id is not 32 bytes: {value!r}")

    return keccak(raw(job_offer_id, "job") + raw(resource_offer_id, "resource"))


def deal_binding_problems(deal: Deal, job_offer_id: str, resource_offer_id: str) -> list[str]:
    """Empty when ``deal``'s nonce commits to these two offers, else what is wrong."""
    try:
        expected = deal_nonce(job_offer_id, resource_offer_id)
    except ValueError as exc:
        return [str(exc)]
    if bytes(deal.nonce) != expected:
        return [(f"the deal's nonce 0x{bytes(deal.nonce).hex()} does not commit to job offer {job_offer_id} and "
                 f"resource offer {resource_offer_id} (expected 0x{expected.hex()})")]
    return []


def job_binding_problems(deal: Deal, *, job_offer_id: str, module: JobModule, inputs: Mapping[str, str],
                         inputs_cid: str | None, signed: SignedOffer, resource_offer_id: str,
                         domain: OfferDomain) -> list[str]:
    """Empty when the job shown for ``deal`` (``job_offer_id``, ``module``,
    ``inputs``, ``inputs_cid``) is the one the deal is bound to: ``signed`` is
    the job offer with that id, signed by the deal's job creator, the deal's
    nonce commits to it, and the job is what it says."""
    from lilypad.protocol.offers import JobOffer
    from lilypad.protocol.signing import offer_id, recover_signer

    problems = deal_binding_problems(deal, job_offer_id, resource_offer_id)
    offer = signed.offer
    if not isinstance(offer, JobOffer):
        return [*problems, "the signed offer is not a job offer"]
    if offer_id(signed, domain).lower() != job_offer_id.lower():
        problems.append(f"the signed job offer's id is {offer_id(signed, domain)}, not {job_offer_id}")
    signer = recover_signer(signed, domain)
    if signer is None or signer.lower() != deal.members.job_creator.lower():
        problems.append(f"the job offer is signed by {signer}, not the deal's job creator "
                        f"{deal.members.job_creator}")
    if offer.module != module:
        problems.append(f"the job's module {module.repo}@{module.commit} is not the signed "
                        f"{offer.module.repo}@{offer.module.commit}")
    if dict(offer.inputs) != dict(inputs):
        problems.append("the job's inputs are not the signed ones")
    if (offer.inputs_cid or None) != (inputs_cid or None):
        problems.append(f"the job's input files {inputs_cid} are not the signed {offer.inputs_cid}")
    return problems
