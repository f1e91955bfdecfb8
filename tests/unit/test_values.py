"""Quantities and the other value parsers (cosi_driver.core.values) that parameters and settings use."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosi_driver.core.values import ValueProblem, parse_bool, parse_int, parse_quantity

BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}  # powers of 1024
DECIMAL = {"k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}  # powers of 1000

counts = st.integers(min_value=0, max_value=10**6)


@given(n=counts, suffix=st.sampled_from(sorted(BINARY)))
def test_binary_suffixes_are_powers_of_1024(n: int, suffix: str) -> None:
    assert parse_quantity(f"{n}{suffix}") == n * 1024 ** BINARY[suffix]


@given(n=counts, suffix=st.sampled_from(sorted(DECIMAL)))
def test_decimal_suffixes_are_powers_of_1000(n: int, suffix: str) -> None:
    assert parse_quantity(f"{n}{suffix}") == n * 1000 ** DECIMAL[suffix]


@given(n=st.integers(min_value=0, max_value=2**70))
def test_a_plain_number_is_bytes(n: int) -> None:
    assert parse_quantity(str(n)) == n


@given(n=counts, exponent=st.integers(min_value=0, max_value=12))
def test_an_exponent_scales_like_the_decimal_suffixes(n: int, exponent: int) -> None:
    assert parse_quantity(f"{n}e{exponent}") == parse_quantity(f"{n}E{exponent}") == n * 10**exponent


@given(n=counts, tenths=st.integers(min_value=1, max_value=9))
def test_fractions_round_up_to_a_whole_byte(n: int, tenths: int) -> None:
    # As Kubernetes does: a quota must never come out smaller than asked.
    assert parse_quantity(f"{n}.{tenths}") == n + 1
    assert parse_quantity(f"{n}.{tenths}Ki") == -(-(n * 10 + tenths) * 1024 // 10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10Gi", 10 * 2**30),
        ("1.5Gi", 3 * 2**29),
        ("1024Ki", 2**20),
        (".5Ki", 512),
        ("1e-3", 1),  # a thousandth of a byte is still one byte
        ("0", 0),
        ("+5", 5),
        ("  500Mi\n", 500 * 2**20),
    ],
)
def test_quantities_people_write(text: str, expected: int) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Kubernetes quantity"),
        ("Gi", "Kubernetes quantity"),
        ("ten", "Kubernetes quantity"),
        ("1.2.3", "Kubernetes quantity"),
        ("10 Gi", "Kubernetes quantity"),
        ("10GB", "unknown unit 'GB'"),
        ("10gi", "unknown unit 'gi'"),
        ("-1", "must not be negative"),
        ("-1Ki", "must not be negative"),
        ("1e31", "exponent is out of range"),
        ("1e-31", "exponent is out of range"),
    ],
)
def test_bad_quantities_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueProblem, match=says) as raised:
        parse_quantity(text)
    assert repr(text) in str(raised.value)


@given(st.text(max_size=20))
def test_any_text_is_a_quantity_or_a_value_problem(text: str) -> None:
    try:
        value = parse_quantity(text)
    except ValueProblem:
        return
    assert value >= 0


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("Yes", True), (" on ", True), ("0", False)])
def test_booleans(text: str, expected: bool) -> None:
    assert parse_bool(text) is expected


def test_a_boolean_that_is_neither_says_so() -> None:
    with pytest.raises(ValueProblem, match="must be true or false, not 'maybe'"):
        parse_bool("maybe")


def test_whole_numbers_check_their_bounds() -> None:
    assert parse_int(" 7 ", minimum=0, maximum=7) == 7
    with pytest.raises(ValueProblem, match="at least 0, not -1"):
        parse_int("-1", minimum=0)
    with pytest.raises(ValueProblem, match="at most 7, not 8"):
        parse_int("8", maximum=7)
    with pytest.raises(ValueProblem, match="whole number"):
        parse_int("1.0")
