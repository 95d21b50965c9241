"""The job creator's steps, written once for both of its front ends.

``lilypad run`` (:mod:`lilypad.jobcreator.run`) and the contract-job bridge
(:mod:`lilypad.jobcreator.bridge`, ``lilypad jobcreator``) are the same job
creator driven two ways: one by a person for one job, one by ``JobAdded``
events for many, resuming after crashes. The steps they share are here:

* :func:`job_offer` - the job offer for a resolved, rendered module (the
  submit window stretched to the module's own execution timeout);
* :func:`check_solver_domain` - the solver signs for the deployment we are
  on, or :class:`~lilypad.exceptions.SolverDomainMismatchError` (each front
  end words it for its user);
* :func:`checked_deal` - the solver's deal for a matched offer, refused with
  :class:`~lilypad.exceptions.DealTermsError` unless it is what the offer asked
  for and its nonce commits to the offer (:mod:`lilypad.protocol.binding`);
* judging a downloaded result is :func:`~lilypad.jobcreator.logic.judge` on a
  :class:`~lilypad.jobcreator.results.Download`, whose ``final`` says whether
  waiting could still help.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lilypad.exceptions import DealTermsError, SolverDomainMismatchError
from lilypad.jobcreator.logic import deal_problems
from lilypad.protocol.offers import DEFAULT_TIMEOUTS, JobModule, JobOffer, PricingMode, ResourceSpec

if TYPE_CHECKING:
    from lilypad.client import DealView, SolverClient
    from lilypad.modules.resolve import ResolvedModule
    from lilypad.modules.spec import ModuleSpec
    from lilypad.protocol.deal import DealPricing, DealTimeouts
    from lilypad.protocol.deployments import Deployment
    from lilypad.protocol.signing import OfferDomain

__all__ = ["check_solver_domain", "checked_deal", "job_offer", "job_timeouts"]


def job_timeouts(spec: ModuleSpec) -> DealTimeouts:
    """The default deal timeouts, with the submit window at least the module's
    own ``executionTimeoutSeconds`` (a long job must not time out by design)."""
    submit = max(DEFAULT_TIMEOUTS.submit_results, int(spec.execution_timeout_seconds or 0))
    return DEFAULT_TIMEOUTS.model_copy(update={"submit_results": submit})


def job_offer(*, job_creator: str, solver: str, module_ref: str, resolved: ResolvedModule, spec: ModuleSpec,
              inputs: Mapping[str, str], pricing: DealPricing, mediators: Sequence[str],
              pricing_mode: PricingMode = PricingMode.MARKET_PRICE, target: str | None = None,
              inputs_cid: str | None = None, nonce: bytes | None = None, consortium_size: int = 1) -> JobOffer:
    """The job offer for ``module_ref`` resolved to ``resolved`` and rendered to
    ``spec`` with ``inputs``, judged by a panel of ``consortium_size`` mediators
    when checked; ``nonce`` ``None`` draws a fresh one. Raises pydantic's
    ``ValidationError`` for terms the controller would refuse."""
    extra: dict[str, Any] = {} if nonce is None else {"nonce": nonce}
    return JobOffer(
        job_creator=job_creator, solver=solver,
        module=JobModule(ref=module_ref, repo=resolved.repo, commit=resolved.commit), inputs=dict(inputs),
        spec=ResourceSpec.from_machine(spec.machine), pricing_mode=pricing_mode, pricing=pricing,
        mediators=list(mediators), target=target, timeouts=job_timeouts(spec), inputs_cid=inputs_cid,
        consortium_size=consortium_size, **extra,
    )


def check_solver_domain(client: SolverClient, deployment: Deployment) -> OfferDomain:
    """The solver's signing domain, if it is ``deployment``'s chain and controller;
    else :class:`~lilypad.exceptions.SolverDomainMismatchError` (signing an offer
    for another deployment would let it be replayed there)."""
    domain = client.offer_domain()
    controller = deployment.contracts["controller"]
    if domain.chain_id != deployment.chain_id or domain.verifying_contract.lower() != controller.lower():
        raise SolverDomainMismatchError(domain.chain_id, domain.verifying_contract, deployment.chain_id, controller)
    return domain


def checked_deal(client: SolverClient, deal_id: str, offer: JobOffer, offer_id: str) -> DealView:
    """The solver's view of ``deal_id``, made for job offer ``offer`` (id ``offer_id``),
    if its terms are what the offer asked for; else
    :class:`~lilypad.exceptions.DealTermsError` listing each difference."""
    from lilypad.protocol.binding import deal_binding_problems

    view = client.deal(deal_id)
    problems = deal_problems(view.terms, offer, deal_id=deal_id)
    if view.job_offer_id.lower() != offer_id.lower():
        problems.append(f"the deal was made for job offer {view.job_offer_id}, not {offer_id}")
    problems += deal_binding_problems(view.terms, offer_id, view.resource_offer_id)
    if problems:
        raise DealTermsError(offer_id, problems)
    return view
