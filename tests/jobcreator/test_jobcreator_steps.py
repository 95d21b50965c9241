"""The job creator's shared steps (lilypad.jobcreator.steps) on a real module: the offer
``lilypad run`` and the bridge both post. The solver-facing steps are exercised against a
real solver in tests/jobcreator/test_run.py."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account

from lilypad.jobcreator.steps import job_offer, job_timeouts
from lilypad.modules.resolve import ModuleResolver
from lilypad.protocol.offers import DEFAULT_JOB_PRICING, DEFAULT_TIMEOUTS, PricingMode, ResourceSpec

CREATOR, SOLVER, MEDIATOR, TARGET = (Account.create().address for _ in range(4))


def test_the_offer_is_the_modules_with_the_submit_window_stretched(tmp_path: Path) -> None:
    resolved = ModuleResolver(tmp_path / "modules").resolve("cowsay:v0.0.1")
    spec = resolved.render({"Message": "moo"})
    offer = job_offer(job_creator=CREATOR, solver=SOLVER, module_ref="cowsay:v0.0.1", resolved=resolved,
                      spec=spec, inputs={"Message": "moo"}, pricing=DEFAULT_JOB_PRICING, mediators=[MEDIATOR])
    assert (offer.module.ref, offer.module.repo, offer.module.commit) == ("cowsay:v0.0.1", resolved.repo,
                                                                         resolved.commit)
    assert offer.inputs == {"Message": "moo"} and offer.mediators == (MEDIATOR,)
    assert offer.spec == ResourceSpec.from_machine(spec.machine)
    assert offer.pricing_mode == PricingMode.MARKET_PRICE and offer.target is None and offer.inputs_cid is None
    assert offer.timeouts == job_timeouts(spec)
    assert offer.timeouts.submit_results == max(DEFAULT_TIMEOUTS.submit_results,
                                                int(spec.execution_timeout_seconds or 0))
    # No nonce given: a fresh one each time; a given one (the bridge's, derived from the job id) is kept.
    again = job_offer(job_creator=CREATOR, solver=SOLVER, module_ref="cowsay:v0.0.1", resolved=resolved,
                      spec=spec, inputs={"Message": "moo"}, pricing=DEFAULT_JOB_PRICING, mediators=[MEDIATOR])
    assert again.nonce != offer.nonce
    fixed = job_offer(job_creator=CREATOR, solver=SOLVER, module_ref="cowsay:v0.0.1", resolved=resolved,
                      spec=spec, inputs={"Message": "moo"}, pricing=DEFAULT_JOB_PRICING, mediators=[MEDIATOR],
                      pricing_mode=PricingMode.FIXED_PRICE, target=TARGET, nonce=b"\x07" * 32)
    assert fixed.nonce == b"\x07" * 32 and fixed.target == TARGET and fixed.pricing_mode == PricingMode.FIXED_PRICE


def test_a_long_module_gets_a_submit_window_as_long_as_its_own_timeout(tmp_path: Path) -> None:
    spec = ModuleResolver(tmp_path / "modules").resolve("cowsay:v0.0.1").render({"Message": "moo"})
    long = spec.model_copy(update={"execution_timeout_seconds": DEFAULT_TIMEOUTS.submit_results + 1234})
    assert job_timeouts(long).submit_results == DEFAULT_TIMEOUTS.submit_results + 1234
    assert job_timeouts(long).agree == DEFAULT_TIMEOUTS.agree
