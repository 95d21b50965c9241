"""Job inputs: ``-i KEY=VALUE`` parsing and limits."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lilypad.exceptions import InputError, ModuleError
from lilypad.modules.inputs import (
    MAX_INPUTS,
    MAX_TOTAL_BYTES,
    MAX_VALUE_BYTES,
    format_inputs,
    parse_input,
    parse_inputs,
    validate_inputs,
)


def test_parse_simple_inputs_in_order() -> None:
    assert parse_inputs(["Message=moo", "Seed=42"]) == {"Message": "moo", "Seed": "42"}
    assert list(parse_inputs(["B=1", "A=2"])) == ["B", "A"]


def test_split_on_first_equals_only() -> None:
    assert parse_input("Query=SELECT * FROM t WHERE a=1") == ("Query", "SELECT * FROM t WHERE a=1")
    assert parse_input("X===") == ("X", "==")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ('-i Message="hi there"', {"Message": "hi there"}),
        ("-i 'Message=a=b,c=d'", {"Message": "a=b,c=d"}),  # the original: Message=a=b and c=d
        ("-i Message=hello,\\ world", {"Message": "hello, world"}),  # the original: an error (" world")
        ("-i 'Message=\"quoted\"'", {"Message": '"quoted"'}),  # the original: a CSV quoting error
        ("-i A=1 -i B= -i C=x=", {"A": "1", "B": "", "C": "x="}),
    ],
)
def test_each_i_is_one_input_as_the_shell_passed_it(typed: str, expected: dict[str, str]) -> None:
    words = shlex.split(typed)  # exactly what a POSIX shell hands the program
    assert words[::2] == ["-i"] * len(expected)
    assert parse_inputs(words[1::2]) == expected


def test_empty_value_is_allowed() -> None:
    assert parse_inputs(["Seed="]) == {"Seed": ""}


def test_value_may_hold_anything_but_nul() -> None:
    value = 'moo", "rm -rf /\n\t{{.X}} ✓'
    assert parse_input(f"Message={value}") == ("Message", value)
    with pytest.raises(InputError, match="NUL"):
        parse_input("A=x\x00y")


def test_missing_equals_is_an_error() -> None:
    with pytest.raises(InputError, match="no '='") as info:
        parse_input("Message")
    assert "KEY=VALUE" in str(info.value)


@pytest.mark.parametrize("key", ["", "1abc", "a-b", "a b", "a.b", "ä", "$x"])
def test_bad_keys_are_rejected(key: str) -> None:
    with pytest.raises(InputError):
        parse_input(f"{key}=v")


@pytest.mark.parametrize("key", ["a", "_", "A_1", "snake_case", "CamelCase", "_9"])
def test_good_keys_are_accepted(key: str) -> None:
    assert parse_input(f"{key}=v") == (key, "v")


def test_duplicate_keys_are_an_error() -> None:
    with pytest.raises(InputError, match="more than once") as info:
        parse_inputs(["A=1", "B=2", "A=3"])
    assert info.value.key == "A"


def test_value_limit() -> None:
    assert parse_input("A=" + "x" * MAX_VALUE_BYTES)[1] == "x" * MAX_VALUE_BYTES
    with pytest.raises(InputError, match=str(MAX_VALUE_BYTES)) as info:
        parse_input("A=" + "x" * (MAX_VALUE_BYTES + 1))
    assert info.value.key == "A"


def test_value_limit_counts_utf8_bytes() -> None:
    with pytest.raises(InputError, match="bytes"):
        parse_input("A=" + "✓" * (MAX_VALUE_BYTES // 3 + 1))  # 3 bytes each


def test_total_limit() -> None:
    value = "x" * (MAX_VALUE_BYTES - 10)
    items = [f"K{i}={value}" for i in range(4)]
    assert len(parse_inputs(items)) == 4
    with pytest.raises(InputError, match=str(MAX_TOTAL_BYTES)):
        parse_inputs(items + [f"K4={value}"])


def test_count_limit() -> None:
    items = [f"K{i}=v" for i in range(MAX_INPUTS)]
    assert len(parse_inputs(items)) == MAX_INPUTS
    with pytest.raises(InputError, match=str(MAX_INPUTS)):
        parse_inputs(items + ["Extra=v"])


def test_undecodable_bytes_are_rejected() -> None:
    with pytest.raises(InputError, match="UTF-8"):
        parse_input("A=\udcff")


def test_validate_inputs_applies_the_same_rules() -> None:
    assert validate_inputs({"A": "1=2"}) == {"A": "1=2"}
    with pytest.raises(InputError):
        validate_inputs({"bad key": "x"})
    with pytest.raises(InputError):
        validate_inputs({"A": 1})  # type: ignore[dict-item]
    with pytest.raises(InputError):
        validate_inputs({f"K{i}": "v" for i in range(MAX_INPUTS + 1)})


def test_error_messages_are_clear_and_typed() -> None:
    with pytest.raises(ModuleError) as info:
        parse_input("9lives=x")
    assert str(info.value).startswith("invalid input '9lives':")
    assert info.value.reason  # type: ignore[attr-defined]


@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
        st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"])),
        max_size=10,
    )
)
def test_format_then_parse_round_trips(inputs: dict[str, str]) -> None:
    assert parse_inputs(format_inputs(inputs)) == inputs
