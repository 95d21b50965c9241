"""Deal terms and ids as pure Python (no chain)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lilypad.protocol.deal import (
    TERMINAL_STATES,
    TIMEOUT_FOR_STATE,
    AgreementState,
    Deal,
    DealMembers,
    DealPricing,
    draw_mediator,
)

A, B, C, D = ("0x" + c * 40 for c in "abcd")


def make(**pricing) -> Deal:
    return Deal(
        members=DealMembers(solver=A, job_creator=B, resource_provider=C, mediators=[D]),
        pricing=DealPricing(**pricing),
        nonce=b"\x01" * 32,
    )


def test_deal_id_is_a_pure_function_of_the_terms():
    assert make().deal_id == make().deal_id
    assert make(instruction_price=2).deal_id != make().deal_id
    assert len(make().deal_id) == 32


def test_addresses_are_checksummed_and_terms_frozen():
    deal = make()
    assert deal.members.solver == "0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa"
    with pytest.raises(ValidationError):
        deal.pricing.instruction_price = 5  # type: ignore[misc]


def test_abi_tuple_shape():
    solver_etc, timeouts, pricing, nonce = make().as_tuple()
    assert len(solver_etc) == 4 and isinstance(solver_etc[3], list)
    assert len(timeouts) == 6 and len(pricing) == 4 and nonce == b"\x01" * 32


def test_money_helpers_follow_the_controller_rules():
    deal = make(instruction_price=3, payment_collateral=10, results_collateral_multiple=2)
    assert deal.job_cost(3) == 9
    assert deal.results_collateral(3) == 18
    assert deal.job_creator_deposit == 10 + deal.timeouts.judge_results_collateral


def test_out_of_range_values_are_rejected():
    with pytest.raises(ValidationError):
        make(instruction_price=2**96)
    with pytest.raises(ValidationError):
        Deal(members=DealMembers(solver=A, job_creator=B, resource_provider=C, mediators=[D]), nonce=b"short")


def test_every_open_state_has_a_timeout_and_terminal_states_have_none():
    open_states = {s for s in AgreementState if s not in TERMINAL_STATES and s != AgreementState.NONE}
    assert set(TIMEOUT_FOR_STATE) == open_states
    assert all(s.is_terminal for s in TERMINAL_STATES)


def test_mediator_draw_is_deterministic_spreads_and_refuses_a_forgotten_hash():
    deal = make()
    mediators = [A, B, C, D]
    picks = {draw_mediator(bytes([i]) * 32, deal.deal_id, mediators) for i in range(1, 40)}
    assert picks == set(mediators)  # every mediator can be drawn
    assert draw_mediator(b"\x07" * 32, deal.deal_id, mediators) == draw_mediator(b"\x07" * 32, deal.deal_id, mediators)
    with pytest.raises(ValueError):
        draw_mediator(b"\x00" * 32, deal.deal_id, mediators)
