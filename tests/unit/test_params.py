"""Parameter parsing and fingerprints (cosi_driver.core.params).

The fingerprint decides whether a retried Create is the same request (OK) or a conflicting one
(ALREADY_EXISTS), and it is stored in intent records and bucket marks that outlive a release.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosi_driver.core.errors import InvalidArgument
from cosi_driver.core.params import (
    AccessMode,
    AccessParams,
    BucketParams,
    DeletionPolicy,
    Quota,
    Versioning,
    fingerprint,
    parse_params,
    to_wire,
)


@dataclass(frozen=True)
class Everything(BucketParams, Versioning, Quota):
    """A backend that accepts the whole portable BucketClass vocabulary."""


@dataclass(frozen=True)
class Plain(BucketParams):
    """A backend that accepts only the deletion policy (like `filesystem`)."""


def parse(raw: dict[str, str], cls: type[BucketParams] = Everything) -> BucketParams:
    return parse_params(cls, raw, field_name="parameters", backend="store")


everything = st.builds(
    Everything,
    deletion_policy=st.sampled_from(DeletionPolicy),
    versioning=st.booleans(),
    max_size=st.none() | st.integers(min_value=0, max_value=2**62),
    max_objects=st.none() | st.integers(min_value=0, max_value=2**40),
)


def test_no_parameters_mean_the_defaults() -> None:
    assert parse({}) == Everything(deletion_policy=DeletionPolicy.DELETE, versioning=False)
    assert parse_params(AccessParams, {}, field_name="parameters", backend="b").access_mode is AccessMode.READWRITE


def test_values_are_parsed_into_their_types() -> None:
    parsed = parse({"deletionPolicy": "PURGE", "versioning": "yes", "maxSizePerBucket": "1Ki"})
    assert parsed == Everything(deletion_policy=DeletionPolicy.PURGE, versioning=True, max_size=1024)


def test_the_routing_parameter_never_reaches_the_backend() -> None:
    assert parse({"backend": "archive"}, Plain) == Plain()


@given(everything)
def test_the_wire_form_parses_back_to_the_same_parameters(params: Everything) -> None:
    assert parse(to_wire(params)) == params


def test_equal_quantities_are_the_same_request() -> None:
    assert fingerprint("s3", parse({"maxSizePerBucket": "10Gi"})) == fingerprint(
        "s3", parse({"maxSizePerBucket": "10737418240"})
    )


@given(everything)
def test_spelling_out_a_default_does_not_change_the_fingerprint(params: Everything) -> None:
    # A parameter added in a later release (or written out at its default) must not turn a
    # retried Create of an existing bucket into a conflict.
    spelled = to_wire(params)  # every parameter, defaults included
    defaults = to_wire(Everything())
    minimal = {key: value for key, value in spelled.items() if defaults.get(key) != value}
    assert fingerprint("s3", parse(spelled)) == fingerprint("s3", parse(minimal))


@given(params=everything, seed=st.integers(min_value=0, max_value=2**32))
def test_the_order_of_the_map_does_not_matter(params: Everything, seed: int) -> None:
    items = list(to_wire(params).items())
    random.Random(seed).shuffle(items)
    assert fingerprint("s3", parse(dict(items))) == fingerprint("s3", params)


@given(a=everything, b=everything)
def test_different_requests_have_different_fingerprints(a: Everything, b: Everything) -> None:
    assert (fingerprint("s3", a) == fingerprint("s3", b)) == (a == b)


def test_the_backend_is_part_of_the_request() -> None:
    assert fingerprint("archive", Plain()) != fingerprint("local", Plain())


def test_a_fingerprint_is_32_hex_digits_and_does_not_change_between_releases() -> None:
    # Stored in intent records and bucket marks: a new value for the same request would make
    # every retried Create of an existing bucket a conflict. Recompute only with a migration.
    value = fingerprint("local", parse({"deletionPolicy": "purge", "maxSizePerBucket": "1Gi"}))
    assert len(value) == 32 and int(value, 16) >= 0
    # The first 32 hex digits of SHA-256 over
    # {"backend":"local","params":{"deletionPolicy":"purge","maxSizePerBucket":"1073741824"}}
    assert value == "806777cdc46138df5492506e26826180"


def test_an_unknown_parameter_is_named_with_the_accepted_ones() -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse({"tier": "gold"}, Plain)
    assert raised.value.message == (
        "parameters: unknown parameter 'tier' for backend 'store'. Accepted parameters: deletionPolicy"
    )


def test_a_portable_parameter_the_backend_cannot_honour_is_refused_not_ignored() -> None:
    with pytest.raises(InvalidArgument, match="'versioning' is not supported by backend 'store'"):
        parse({"versioning": "true"}, Plain)


@pytest.mark.parametrize(
    ("key", "value", "form"),
    [
        ("deletionPolicy", "keep", "retain | delete | purge"),
        ("versioning", "sometimes", "true | false"),
        ("maxSizePerBucket", "10GB", "Kubernetes quantity"),
        ("maxObjectsPerBucket", "-3", "whole number >= 0"),
    ],
)
def test_a_bad_value_names_the_parameter_and_the_accepted_form(key: str, value: str, form: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse({key: value})
    message = raised.value.message
    assert message.startswith(f"parameters: parameter {key!r} ")
    assert f"Accepted form: {form}" in message or form in message


def test_the_message_names_the_request_field_it_came_from() -> None:
    with pytest.raises(InvalidArgument, match=r"^delete_context: "):
        parse_params(Plain, {"deletionPolicy": "x"}, field_name="delete_context", backend="b")
