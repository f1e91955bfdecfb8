"""The spec's request limits (cosi_driver.core.validation): sizes in UTF-8 bytes, not characters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosi_driver.core.errors import InvalidArgument
from cosi_driver.core.validation import (
    MAX_MAP_BYTES,
    MAX_STRING_BYTES,
    byte_size,
    check_map,
    check_string,
    require_string,
)

CONTROL = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]]


@pytest.mark.parametrize(("text", "size"), [("a", 1), ("é", 2), ("€", 3), ("😀", 4), ("\ud800", 3), ("", 0)])
def test_sizes_are_utf8_bytes(text: str, size: int) -> None:
    assert byte_size(text) == size


@pytest.mark.parametrize("char", ["a", "é", "€", "😀"])
def test_a_string_may_take_128_bytes_and_not_one_more(char: str) -> None:
    width = byte_size(char)
    longest = char * (MAX_STRING_BYTES // width) + "a" * (MAX_STRING_BYTES % width)
    assert byte_size(longest) == MAX_STRING_BYTES
    assert check_string("name", longest) == longest
    with pytest.raises(InvalidArgument) as raised:
        check_string("name", longest + "a")
    assert raised.value.message == "name is 129 bytes long (UTF-8); the limit is 128 bytes"


def test_65_two_byte_characters_are_over_the_limit() -> None:
    with pytest.raises(InvalidArgument, match="130 bytes"):
        check_string("name", "é" * 65)


@pytest.mark.parametrize("char", [*CONTROL, "\udfff"])
def test_control_characters_and_lone_surrogates_are_refused(char: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^bucket_id must not contain control characters$"):
        check_string("bucket_id", f"v1/local/a{char}b")


@given(st.text(max_size=80))
def test_a_string_passes_exactly_when_it_is_small_and_printable(text: str) -> None:
    ok = byte_size(text) <= MAX_STRING_BYTES and not any(c in CONTROL or "\ud800" <= c <= "\udfff" for c in text)
    if ok:
        assert check_string("f", text) == text
    else:
        with pytest.raises(InvalidArgument, match=r"^f "):
            check_string("f", text)


@pytest.mark.parametrize(("value", "says"), [("", "required"), (" a", "whitespace"), ("a\u3000", "whitespace")])
def test_a_required_string_is_present_and_trimmed(value: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^name .*{says}"):
        require_string("name", value)


def test_a_map_may_hold_4_kib_of_keys_and_values() -> None:
    # 32 entries of a 10-byte key and a 118-byte value: 32 * 128 = 4096 bytes.
    full = {f"key-{i:06d}": "v" * 118 for i in range(32)}
    assert sum(byte_size(k) + byte_size(v) for k, v in full.items()) == MAX_MAP_BYTES
    assert check_map("parameters", full) == full
    over = {**full, "key-000000": "v" * 119}
    with pytest.raises(InvalidArgument) as raised:
        check_map("parameters", over)
    assert raised.value.message == "parameters holds 4097 bytes (UTF-8) of keys and values; the limit is 4096 bytes"


@pytest.mark.parametrize("key", ["", "tier level", "tier=gold", "tiér"])
def test_map_keys_are_letters_digits_and_a_few_marks(key: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^parameters has an invalid key"):
        check_map("parameters", {key: "x"})


def test_prefixed_keys_pass_so_that_the_parameter_check_can_name_them() -> None:
    assert check_map("parameters", {"example.com/tier": "gold"}) == {"example.com/tier": "gold"}


def test_an_over_long_key_is_refused_by_its_size() -> None:
    with pytest.raises(InvalidArgument, match="is 129 bytes long"):
        check_map("parameters", {"k" * 129: "x"})


def test_map_values_may_hold_tabs_and_newlines_but_no_other_control_characters() -> None:
    assert check_map("parameters", {"policy": "a\tb\nc"}) == {"policy": "a\tb\nc"}
    with pytest.raises(InvalidArgument, match=r"^parameters\['policy'\] must not contain control characters$"):
        check_map("parameters", {"policy": "a\x00b"})
