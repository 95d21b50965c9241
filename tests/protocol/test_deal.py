"""Deal terms and ids as pure Python (no chain)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from lilypad.protocol.deal import (
    TERMINAL_STATES,
    TIMEOUT_FOR_STATE,
    AgreementState,
    Deal,
    DealMembers,
    DealPricing,
    DealProtocol,
    DealTimeouts,
    Verdict,
    state_name,
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
    solver_etc, timeouts, pricing, nonce, protocol = make().as_tuple()
    assert len(solver_etc) == 4 and isinstance(solver_etc[3], list)
    assert len(timeouts) == 6 and len(pricing) == 4 and nonce == b"\x01" * 32
    assert protocol == (1, 0)  # (consortium size k, settings version): a panel of one under version 0


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


def test_agreement_states_mirror_the_solidity_enum_in_order():
    # The enum's order is ABI: the Python mirror must list the same names at the same numbers.
    source = (Path(__file__).parents[2] / "contracts" / "interfaces" / "LilypadTypes.sol").read_text()
    body = re.search(r"enum AgreementState \{(.*?)\}", source, re.S).group(1)
    names = [line.split("//")[0].strip().rstrip(",") for line in body.splitlines()]
    assert [n for n in names if n] == [state_name(s) for s in sorted(AgreementState)]


def test_verdicts_mirror_the_solidity_enum_in_order():
    source = (Path(__file__).parents[2] / "contracts" / "interfaces" / "LilypadTypes.sol").read_text()
    body = re.search(r"enum Verdict \{(.*?)\}", source, re.S).group(1)
    names = [line.split("//")[0].strip().rstrip(",") for line in body.splitlines()]
    assert [n for n in names if n] == ["".join(p.capitalize() for p in v.name.split("_")) for v in sorted(Verdict)]


@pytest.mark.parametrize("size", [0, 2, 4, 8, 9])
def test_a_mediator_panel_is_odd_and_at_most_seven(size):
    with pytest.raises(ValidationError):
        DealProtocol(consortium_size=size)


def test_a_mediation_round_is_one_window_for_one_mediator_and_two_for_a_panel():
    deal = make()
    assert deal.mediation_round_window == deal.timeouts.mediate_results
    panel = deal.model_copy(update={"protocol": DealProtocol(consortium_size=3)})
    assert panel.mediation_round_window == 2 * deal.timeouts.mediate_results
    assert panel.deal_id != deal.deal_id  # the protocol terms are part of the deal id


# The JSON of a fixed deal as the solver stored and served it before the deal
# became its own wire format (``deal_to_dict`` then ``json.dumps``): key order,
# checksummed addresses, ``mediators`` as a list, integers and the ``0x``-hex nonce.
# Deals now also carry ``protocol`` (panel size, settings version) after the nonce;
# JSON stored without it reads as a panel of one under settings version 0.
FIXED_DEAL_JSON = (
    '{"members": {"solver": "0x1111111111111111111111111111111111111111", '
    '"job_creator": "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB", '
    '"resource_provider": "0xCdCDCdCdcdcdcdCdcDcDCdcDcDCdCdcdCdcDCDcD", '
    '"mediators": ["0xeFEfeFEfeFeFEFEFEfefeFeFefEfEfEfeFEFEFEf", "0x1212121212121212121212121212121212121212"]}, '
    '"timeouts": {"agree": 10, "submit_results": 900, "judge_results": 3600, "mediate_results": 3600, '
    '"submit_results_collateral": 39614081257132168796771975168, "judge_results_collateral": 1}, '
    '"pricing": {"instruction_price": 1000000000000000000, "payment_collateral": 2000000000000000000, '
    '"results_collateral_multiple": 2, "mediation_fee": 3}, '
    '"nonce": "0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"}'
)


def fixed_deal() -> Deal:
    return Deal(
        members=DealMembers(solver="0x" + "11" * 20, job_creator="0x" + "ab" * 20, resource_provider="0x" + "cd" * 20,
                            mediators=["0x" + "ef" * 20, "0x" + "12" * 20]),
        timeouts=DealTimeouts(agree=10, submit_results_collateral=2**95),
        pricing=DealPricing(instruction_price=10**18, payment_collateral=2 * 10**18, mediation_fee=3),
        nonce=bytes(range(32)),
    )


PROTOCOL_JSON = ', "protocol": {"consortium_size": 1, "settings_version": 0}}'


def test_deal_json_is_the_old_wire_format_plus_the_protocol_terms():
    deal = fixed_deal()
    assert json.dumps(deal.model_dump(mode="json")) == FIXED_DEAL_JSON[:-1] + PROTOCOL_JSON
    # keccak256(abi.encode(deal)) with the protocol terms (k, version) as the fifth field
    assert deal.deal_id.hex() == "4af8c61711c368109d71c8dee6c3e8f32b4733dfe098a2b39d6d2074cd08a052"


def test_deal_round_trips_through_json_by_itself():
    deal = fixed_deal()
    assert Deal.model_validate(deal.model_dump(mode="json")) == deal
    assert Deal.model_validate_json(deal.model_dump_json()) == deal
    assert Deal.model_validate_json(FIXED_DEAL_JSON) == deal
    assert Deal.model_validate(json.loads(FIXED_DEAL_JSON)).deal_id == deal.deal_id
    # In Python the nonce stays bytes: the ABI encoding (and so the deal id) sees raw bytes.
    assert deal.model_dump()["nonce"] == bytes(range(32))
    assert deal.as_tuple()[-2] == bytes(range(32))
    assert deal.as_tuple()[-1] == (1, 0)


@pytest.mark.parametrize("nonce", ["0x" + "ab" * 31, "0x" + "zz" * 32, b"\x01" * 33, 7])
def test_a_nonce_is_exactly_32_bytes(nonce):
    with pytest.raises(ValidationError):
        Deal(members=DealMembers(solver=A, job_creator=B, resource_provider=C, mediators=[D]), nonce=nonce)
