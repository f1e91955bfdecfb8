"""Secret (cosi_driver.core.secret): a credential value that shows itself only when asked to."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosi_driver.core.errors import Unavailable
from cosi_driver.core.secret import MASK, Secret

VALUE = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY"


def test_reveal_is_the_only_way_to_the_value() -> None:
    assert Secret(VALUE).reveal() == VALUE


@pytest.mark.parametrize(
    "show",
    [
        str,
        repr,
        lambda s: f"{s}",
        lambda s: f"{s!r}",
        lambda s: f"{s:>40}",
        lambda s: "%s" % s,  # noqa: UP031 - the old operator is what logging uses
        "{}".format,
        lambda s: str([s, {"key": s}]),
        lambda s: str(Unavailable(f"login with {s} failed")),
    ],
)
def test_no_way_of_printing_shows_the_value(show: object) -> None:
    text = show(Secret(VALUE))  # type: ignore[operator]
    assert VALUE not in text
    assert MASK in text


def test_a_log_record_shows_the_mask(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("unit").info("connecting with %s and %r", Secret(VALUE), Secret(VALUE))
    assert VALUE not in caplog.text
    assert "connecting with *** and Secret('***')" in caplog.text


@given(value=st.text(), other=st.text())
def test_the_printed_form_does_not_depend_on_the_value(value: str, other: str) -> None:
    assert str(Secret(value)) == str(Secret(other)) == MASK
    assert repr(Secret(value)) == repr(Secret(other))


@given(value=st.text(), other=st.text())
def test_equality_and_hashing_follow_the_value(value: str, other: str) -> None:
    assert (Secret(value) == Secret(other)) == (value == other)
    assert hash(Secret(value)) == hash(Secret(value))
    assert Secret(value) != value  # never equal to the bare string
    assert bool(Secret(value)) == bool(value)


def test_a_secret_cannot_be_pickled_or_copied_out_of_its_wrapper() -> None:
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(Secret(VALUE))
    with pytest.raises(TypeError, match="not picklable"):
        copy.copy(Secret(VALUE))
