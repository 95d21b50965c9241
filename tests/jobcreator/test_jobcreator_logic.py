"""The job creator's pure rules: stages, deal checks, mediation, Ctrl-C, endings."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest
from eth_account import Account

from lilypad.jobcreator.logic import (
    Stage,
    StageTracker,
    deal_problems,
    format_tokens,
    interrupt_plan,
    judge,
    outcome_of,
    overbilling,
    should_mediate,
    stage_of,
)
from lilypad.protocol.deal import TERMINAL_STATES, AgreementState, Deal, DealMembers
from lilypad.protocol.offers import DEFAULT_TIMEOUTS, JobModule, JobOffer, lp

CREATOR, PROVIDER, MEDIATOR, SOLVER, OTHER = (Account.create().address for _ in range(5))
S = AgreementState


def offer(**kw: object) -> JobOffer:
    base: dict[str, object] = {
        "job_creator": CREATOR, "solver": SOLVER, "mediators": [MEDIATOR],
        "module": JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit="ab" * 20),
    }
    return JobOffer(**(base | kw))


def deal_for(job: JobOffer, **kw: object) -> Deal:
    members = {"solver": job.solver, "job_creator": job.job_creator, "resource_provider": PROVIDER,
               "mediators": list(job.mediators)}
    members |= kw.pop("members", {})  # type: ignore[arg-type]
    return Deal(members=DealMembers(**members), timeouts=kw.pop("timeouts", job.timeouts),
                pricing=kw.pop("pricing", job.pricing), **kw)


# -- stages --------------------------------------------------------------------------------


@pytest.mark.parametrize(("offer_state", "deal_id", "chain", "agreed", "downloading", "expected"), [
    (None, None, None, False, False, Stage.PREPARING),
    ("open", None, None, False, False, Stage.OFFER_POSTED),
    ("matched", "0xd", None, False, False, Stage.MATCHED),
    ("matched", "0xd", S.NONE, False, False, Stage.MATCHED),
    ("matched", "0xd", S.DEAL_NEGOTIATING, False, False, Stage.MATCHED),  # only the provider agreed
    ("matched", "0xd", S.DEAL_NEGOTIATING, True, False, Stage.AGREED),
    ("matched", "0xd", S.DEAL_AGREED, True, False, Stage.RUNNING),
    ("matched", "0xd", S.RESULTS_SUBMITTED, True, False, Stage.RESULTS_SUBMITTED),
    ("matched", "0xd", S.RESULTS_SUBMITTED, True, True, Stage.DOWNLOADING),
    ("matched", "0xd", S.RESULTS_CHECKED, True, False, Stage.CHECKED),
    ("matched", "0xd", S.RESULTS_ACCEPTED, True, False, Stage.DONE),
    ("matched", "0xd", S.MEDIATION_ACCEPTED, True, False, Stage.DONE),
    ("matched", "0xd", S.MEDIATION_REJECTED, True, False, Stage.FAILED),
    ("matched", "0xd", S.MEDIATION_NON_DETERMINISTIC, True, False, Stage.DONE),
    ("matched", "0xd", S.TIMEOUT_SUBMIT_RESULTS, True, False, Stage.FAILED),
    ("expired", None, None, False, False, Stage.FAILED),
    ("cancelled", None, None, False, False, Stage.FAILED),
])
def test_stage_of(offer_state, deal_id, chain, agreed, downloading, expected) -> None:
    assert stage_of(offer_state, deal_id, chain, job_creator_agreed=agreed, downloading=downloading) == expected


def test_every_terminal_state_is_final_and_has_an_outcome() -> None:
    for state in TERMINAL_STATES:
        assert stage_of("matched", "0xd", state).is_final
        assert outcome_of(state) is not None
    assert outcome_of(S.RESULTS_ACCEPTED).success and outcome_of(S.MEDIATION_ACCEPTED).success
    assert not outcome_of(S.MEDIATION_REJECTED).success
    non_deterministic = outcome_of(S.MEDIATION_NON_DETERMINISTIC)
    assert non_deterministic.success  # the result was delivered and paid for ...
    assert "non-deterministic" in non_deterministic.message  # ... and the message says what happened
    assert "mediation fee" in non_deterministic.message and "judging collateral" in non_deterministic.message
    assert outcome_of(S.DEAL_AGREED) is None


def test_tracker_reports_changes_only() -> None:
    t = StageTracker()
    assert t.update(Stage.OFFER_POSTED) and not t.update(Stage.OFFER_POSTED) and t.update(Stage.MATCHED)
    assert t.history == [Stage.PREPARING, Stage.OFFER_POSTED, Stage.MATCHED]


# -- the deal's terms ------------------------------------------------------------------------


def test_a_faithful_deal_has_no_problems() -> None:
    job = offer()
    deal = deal_for(job)
    assert deal_problems(deal, job, deal_id="0x" + deal.deal_id.hex()) == []
    cheaper = deal_for(job, pricing=job.pricing.model_copy(update={"instruction_price": 1}))
    assert deal_problems(cheaper, job) == []


@pytest.mark.parametrize(("change", "needle"), [
    ({"members": {"job_creator": OTHER}}, "job creator"),
    ({"members": {"solver": OTHER}}, "solver"),
    ({"members": {"mediators": [OTHER]}}, "not trusted"),
    ({"members": {"mediators": [PROVIDER]}}, "not trusted"),
    ({"members": {"mediators": [MEDIATOR, MEDIATOR.lower()]}}, "listed twice"),
    ({"pricing": "price"}, "instruction price"),
    ({"pricing": "collateral"}, "payment collateral"),
    ({"pricing": "fee"}, "mediation fee"),
    ({"pricing": "multiple"}, "multiple"),
    ({"timeouts": DEFAULT_TIMEOUTS.model_copy(update={"judge_results": 5})}, "timeouts"),
])
def test_deal_problems(change, needle) -> None:
    job = offer()
    pricing = {
        "price": {"instruction_price": job.pricing.instruction_price + 1},
        "collateral": {"payment_collateral": job.pricing.payment_collateral + 1},
        "fee": {"mediation_fee": job.pricing.mediation_fee + 1},
        "multiple": {"results_collateral_multiple": 1},
    }
    if "pricing" in change:
        change = {"pricing": job.pricing.model_copy(update=pricing[change["pricing"]])}
    problems = deal_problems(deal_for(job, **change), job)
    assert problems and any(needle in p for p in problems), problems


def test_deal_problems_target_and_id() -> None:
    job = offer(target=OTHER)
    deal = deal_for(job)
    assert any("target" in p for p in deal_problems(deal, job))
    assert deal_problems(deal_for(job, members={"resource_provider": OTHER}), job) == []
    assert any("deal id" in p for p in deal_problems(deal, offer(), deal_id="0x" + "00" * 32))
    assert any("matched offer" in p for p in deal_problems(deal_for(offer()), offer(), provider=OTHER))


# -- mediation and judging ------------------------------------------------------------------


def test_should_mediate() -> None:
    assert should_mediate(True, 0, draw=lambda n: 99)
    assert not should_mediate(False, 0, draw=lambda n: 0)
    assert should_mediate(False, 100, draw=lambda n: 99)
    assert should_mediate(False, 30, draw=lambda n: 29)
    assert not should_mediate(False, 30, draw=lambda n: 30)
    with pytest.raises(ValueError):
        should_mediate(False, 101)
    draws = [should_mediate(False, 50) for _ in range(400)]  # secrets.randbelow by default
    assert 100 < sum(draws) < 300


def test_judge_never_accepts_an_unverified_result() -> None:
    assert judge(True, None, mediate=False).accept
    mediated = judge(True, None, mediate=True)
    assert not mediated.accept and "mediation" in mediated.reason
    bad = judge(False, "CID bafyX is not bafyY", mediate=False)
    assert not bad.accept and "bafyX" in bad.reason and "mediator" in bad.reason


def test_a_fixed_per_job_metering_exposes_an_inflated_instruction_count() -> None:
    from lilypad.verification import MeteringSpec

    per_job = MeteringSpec.model_validate({"unit": "job", "instructions": 3})
    assert overbilling(3, per_job) is None and overbilling(1, per_job) is None
    problem = overbilling(30, per_job)
    assert problem is not None and "claims 30 instructions" in problem and "3 per job" in problem
    # a measured unit can only be bounded by the mediator's own runs
    assert overbilling(10_000, MeteringSpec.model_validate({"unit": "second"})) is None
    checked = judge(True, None, mediate=False, overbilled=problem)
    assert not checked.accept and "claims 30 instructions" in checked.reason and "mediator" in checked.reason


# -- Ctrl-C ---------------------------------------------------------------------------------


def test_interrupt_plan_cancels_only_unmatched_offers() -> None:
    assert interrupt_plan(Stage.OFFER_POSTED).cancel_offer
    deal = deal_for(offer())
    for stage in Stage:
        if stage == Stage.OFFER_POSTED:
            continue
        plan = interrupt_plan(stage, deal=deal, deal_id="0xdd", timeout_at=1234)
        assert not plan.cancel_offer, stage
    agreed = interrupt_plan(Stage.RUNNING, deal=deal, deal_id="0xdd", timeout_at=1234)
    assert "timeout" in agreed.message and "1234" in agreed.message and "lilypad status 0xdd" in agreed.message
    assert format_tokens(deal.job_creator_deposit) in agreed.message
    assert "nothing of yours is escrowed" in interrupt_plan(Stage.MATCHED, deal_id="0xdd").message
    assert "fetch" in interrupt_plan(Stage.RESULTS_SUBMITTED, deal=deal, deal_id="0xdd").message


def test_format_tokens() -> None:
    assert format_tokens(lp(2)) == "2 LP"
    assert format_tokens(lp("1.5")) == "1.5 LP"
    assert format_tokens(1) == "0.000000000000000001 LP"


# -- waiting for a match through a solver outage ----------------------------------------------


class _RestartingSolver:
    """A solver client that is unreachable for its first ``down`` calls (an
    injected fault: the solver restarting), then shows the offer matched."""

    def __init__(self, down: int) -> None:
        self.down, self.calls = down, 0

    def job_offer(self, offer_id: str) -> SimpleNamespace:
        from lilypad.exceptions import SolverUnavailableError

        self.calls += 1
        if self.calls <= self.down:
            raise SolverUnavailableError("http://solver", "connection refused", 5)
        return SimpleNamespace(id=offer_id, state="matched")  # the fields of an OfferView it reads


def _ticking_clock() -> Callable[[], float]:
    """A clock that moves one second each time it is read."""
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    return clock


def test_wait_for_match_rides_out_a_solver_restart() -> None:
    from lilypad.jobcreator.run import wait_for_match

    solver = _RestartingSolver(down=3)
    view = wait_for_match(solver, "0xab", deadline=float("inf"), outage_wait=0.01)
    assert view.state == "matched" and solver.calls == 4


def test_wait_for_match_gives_up_on_an_unreachable_solver_at_its_deadline() -> None:
    from lilypad.exceptions import SolverUnavailableError
    from lilypad.jobcreator.run import wait_for_match

    clock = _ticking_clock()
    solver = _RestartingSolver(down=10**6)
    with pytest.raises(SolverUnavailableError):
        wait_for_match(solver, "0xab", deadline=5.0, outage_wait=0.0, clock=clock)
    # the clock moves 1 s per read and each failed call reads it twice (the
    # deadline check, then the sleep's remaining time): the third call's
    # check reads 5 and gives up
    assert solver.calls == 3


def test_through_outage_retries_a_call_says_so_once_and_gives_up_at_the_deadline() -> None:
    from lilypad.exceptions import SolverUnavailableError
    from lilypad.jobcreator.run import through_outage

    solver, notices = _RestartingSolver(down=3), []
    view = through_outage(lambda: solver.job_offer("0xab"), deadline=float("inf"), outage_wait=0.0,
                          notice=notices.append)
    assert view.state == "matched" and solver.calls == 4
    assert len(notices) == 1 and "connection refused" in str(notices[0])

    clock = _ticking_clock()
    down = _RestartingSolver(down=10**6)
    with pytest.raises(SolverUnavailableError):
        through_outage(lambda: down.job_offer("0xab"), deadline=5.0, outage_wait=0.0, clock=clock)
    assert down.calls == 3  # as in the wait_for_match test above
