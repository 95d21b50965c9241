"""The provider's pure decisions: no chain, no solver."""

from __future__ import annotations

import pytest

from lilypad.protocol.deal import AgreementState, Deal, DealMembers, DealTimeouts
from lilypad.protocol.offers import DEFAULT_RESOURCE_PRICING, DEFAULT_TIMEOUTS
from lilypad.provider.logic import Action, DealSnapshot, JobStatus, LocalJob, OfferTerms, decide, refusal_reason

SOLVER = "0x" + "44" * 20
CREATOR = "0x" + "11" * 20
PROVIDER = "0x" + "22" * 20
MEDIATOR = "0x" + "33" * 20
OTHER = "0x" + "55" * 20
NOW = 1_000_000


def make_deal(**kw) -> Deal:
    members = {"solver": SOLVER, "job_creator": CREATOR, "resource_provider": PROVIDER, "mediators": [MEDIATOR]}
    members.update(kw.pop("members", {}))
    return Deal(members=DealMembers(**members), pricing=kw.pop("pricing", DEFAULT_RESOURCE_PRICING),
                timeouts=kw.pop("timeouts", DEFAULT_TIMEOUTS))


TERMS = OfferTerms.build(PROVIDER, SOLVER, DEFAULT_RESOURCE_PRICING, DEFAULT_TIMEOUTS, [MEDIATOR], ("cowsay:v0.0.1",))


def snap(state=AgreementState.NONE, deal=None, module="cowsay:v0.0.1", **kw) -> DealSnapshot:
    return DealSnapshot(deal=deal or make_deal(), state=state, module_ref=module, **kw)


def test_new_matching_deal_is_agreed():
    assert decide(snap(), LocalJob(), TERMS, NOW).action == Action.AGREE
    negotiating = snap(AgreementState.DEAL_NEGOTIATING, created_at=NOW)
    assert decide(negotiating, LocalJob(), TERMS, NOW).action == Action.AGREE


@pytest.mark.parametrize(
    ("deal", "module", "words"),
    [
        (make_deal(members={"resource_provider": OTHER}), "cowsay:v0.0.1", "not the deal's resource provider"),
        (make_deal(members={"solver": OTHER}), "cowsay:v0.0.1", "solver"),
        (make_deal(members={"mediators": [OTHER]}), "cowsay:v0.0.1", "untrusted mediators"),
        (make_deal(pricing=DEFAULT_RESOURCE_PRICING.model_copy(update={"instruction_price": 7})), "cowsay:v0.0.1",
         "pricing"),
        (make_deal(timeouts=DealTimeouts(submit_results=10)), "cowsay:v0.0.1", "timeouts"),
        (make_deal(), "stats:v0.0.1", "allowlist"),
        (make_deal(), None, "unknown"),
    ],
)
def test_mismatching_deals_are_refused(deal, module, words):
    decision = decide(snap(deal=deal, module=module), LocalJob(), TERMS, NOW)
    assert decision.action == Action.REFUSE
    assert words in decision.reason
    assert refusal_reason(snap(deal=deal, module=module), TERMS) == decision.reason


def test_a_deal_judged_by_a_smaller_panel_than_ours_is_refused():
    from lilypad.protocol.deal import DealProtocol

    wary = OfferTerms.build(PROVIDER, SOLVER, DEFAULT_RESOURCE_PRICING, DEFAULT_TIMEOUTS, [MEDIATOR, OTHER, SOLVER],
                            min_consortium_size=3)
    lone = make_deal(members={"mediators": [MEDIATOR, OTHER, SOLVER]})
    assert refusal_reason(snap(deal=lone), wary) == "the deal's mediator panel of 1 is below our minimum of 3"
    panel = lone.model_copy(update={"protocol": DealProtocol(consortium_size=3)})
    assert refusal_reason(snap(deal=panel), wary) is None


def test_empty_allowlist_allows_any_module():
    terms = OfferTerms.build(PROVIDER, SOLVER, DEFAULT_RESOURCE_PRICING, DEFAULT_TIMEOUTS, [MEDIATOR])
    assert decide(snap(module="stats:v0.0.1"), LocalJob(), terms, NOW).action == Action.AGREE


def test_refused_deal_stays_refused():
    assert decide(snap(), LocalJob(JobStatus.REFUSED), TERMS, NOW).action == Action.WAIT


def test_agreed_by_us_waits_for_creator_then_times_out():
    s = snap(AgreementState.DEAL_NEGOTIATING, resource_provider_agreed=True, created_at=NOW)
    assert decide(s, LocalJob(JobStatus.AGREED), TERMS, NOW + 10).action == Action.WAIT
    late = decide(s, LocalJob(JobStatus.AGREED), TERMS, NOW + DEFAULT_TIMEOUTS.agree + 1)
    assert (late.action, late.timeout) == (Action.TIMEOUT, "timeoutAgree")


def test_agreed_deal_runs_uploads_and_posts():
    s = snap(AgreementState.DEAL_AGREED, resource_provider_agreed=True, agreed_at=NOW)
    assert decide(s, LocalJob(JobStatus.AGREED), TERMS, NOW).action == Action.RUN
    # after a restart a job marked running is not running any more: run it again
    assert decide(s, LocalJob(JobStatus.RUNNING), TERMS, NOW).action == Action.RUN
    assert decide(s, LocalJob(JobStatus.RUNNING, running=True), TERMS, NOW).action == Action.WAIT
    assert decide(s, LocalJob(JobStatus.RAN, "bafyx", "/r"), TERMS, NOW).action == Action.UPLOAD
    assert decide(s, LocalJob(JobStatus.UPLOADED, "bafyx", "/r"), TERMS, NOW).action == Action.ADD_RESULT
    assert decide(s, LocalJob(JobStatus.SUBMITTED, "bafyx", "/r"), TERMS, NOW).action == Action.ADD_RESULT
    # a result without a CID is no result
    assert decide(s, LocalJob(JobStatus.RAN, None, "/r"), TERMS, NOW).action == Action.RUN


def test_unjudged_result_is_timed_out_for_pay():
    s = snap(AgreementState.RESULTS_SUBMITTED, resource_provider_agreed=True, results_submitted_at=NOW)
    local = LocalJob(JobStatus.SUBMITTED, "bafyx")
    assert decide(s, local, TERMS, NOW + DEFAULT_TIMEOUTS.judge_results).action == Action.WAIT
    d = decide(s, local, TERMS, NOW + DEFAULT_TIMEOUTS.judge_results + 1)
    assert (d.action, d.timeout) == (Action.TIMEOUT, "timeoutJudgeResult")


def test_checked_result_waits_for_mediation_then_times_out():
    s = snap(AgreementState.RESULTS_CHECKED, mediation_requested_at=NOW)
    assert decide(s, LocalJob(JobStatus.SUBMITTED), TERMS, NOW + 5).action == Action.WAIT
    d = decide(s, LocalJob(JobStatus.SUBMITTED), TERMS, NOW + DEFAULT_TIMEOUTS.mediate_results + 1)
    assert (d.action, d.timeout) == (Action.TIMEOUT, "timeoutMediateResult")


@pytest.mark.parametrize("state", sorted(s for s in AgreementState if s.is_terminal))
def test_terminal_states_are_done(state):
    assert decide(snap(state), LocalJob(JobStatus.SUBMITTED), TERMS, NOW).action == Action.DONE
