"""Bucket and account ids (cosi_driver.core.ids): the layout the sidecar stores and hands back.

These pin the ``v2`` layout the driver issues on both APIs and the ``v1`` layout it issued before:
ids already stored in Kubernetes objects must keep reading the same way. The escaping of names
outside the id alphabet is tested in ``test_ids_v2.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosi_driver.core import ids
from cosi_driver.core.errors import InvalidArgument
from cosi_driver.core.validation import MAX_STRING_BYTES

backend_names = st.from_regex(ids.BACKEND_NAME, fullmatch=True)
# Bucket and account names as the sidecar sends them: anything non-empty; the id keeps them whole.
names = st.text(min_size=1)
key_versions = st.integers(min_value=0, max_value=10**6)


@given(backend=backend_names, bucket=names)
def test_a_bucket_id_reads_back_as_the_backend_and_bucket_it_was_made_from(backend: str, bucket: str) -> None:
    ref = ids.BucketRef(backend, bucket)
    assert ids.read_bucket_id(ref.encode()) == ref
    assert ids.parse_bucket_id(ref.encode()) == ref


@given(backend=backend_names, account=names, version=key_versions)
def test_an_account_id_reads_back_with_its_key_version(backend: str, account: str, version: int) -> None:
    ref = ids.AccountRef(backend, account, version)
    assert ids.read_account_id(ref.encode()) == ref
    assert ids.parse_account_id(ref.encode()) == ref


def test_the_layout_starts_with_the_version_and_the_backend() -> None:
    assert ids.BucketRef("local", "photos").encode() == "v2.local.b.photos"
    assert ids.BucketRef("local", "photos", existing=True).encode() == "v2.local.e.photos"
    assert ids.AccountRef("ceph", "cosi-abc", 3).encode() == "v2.ceph.a3.cosi-abc"
    assert ids.AccountRef("s3", "cosi-abc").encode() == "v2.s3.a0.cosi-abc"  # storage-generated keys


def test_ids_issued_in_the_v1_layout_still_read() -> None:
    assert ids.read_bucket_id("v1/local/photos") == ids.BucketRef("local", "photos")
    assert ids.read_account_id("v1/ceph/3/cosi-abc") == ids.AccountRef("ceph", "cosi-abc", 3)


@given(st.text())
def test_reading_any_string_never_raises(value: str) -> None:
    # The driver answers Delete/Revoke on an id it cannot read with OK and Grant with NOT_FOUND;
    # an exception here would turn that into INTERNAL.
    bucket = ids.read_bucket_id(value)
    account = ids.read_account_id(value)
    if bucket is not None:
        assert ids.read_bucket_id(bucket.encode()) == bucket
    if account is not None:
        assert ids.read_account_id(account.encode()) == account


@pytest.mark.parametrize(
    "value",
    [
        "",
        "photos",
        "v1/local",  # no bucket part
        "v1/local/",  # empty bucket
        "v3.local.b.photos",  # a layout this driver does not know
        "v2/local/photos",
        "v2.local.photos",  # no kind letter
        "v2.local.x.photos",  # unknown kind
        "v2.Local.b.photos",
        "v2.local.b.",  # empty name
        "v2.local.b." + "a" * ids.MAX_ID_CHARS,  # over 2048 characters
        "V1/local/photos",
        "v1/Local/photos",  # backend names are lowercase
        "v1/-local/photos",
        "v1/local-/photos",
        "v1/1local/photos",
        "v1/" + "a" * 33 + "/photos",  # backend names are at most 32 characters
        "v1//photos",
    ],
)
def test_ids_this_driver_cannot_have_issued_are_not_bucket_ids(value: str) -> None:
    assert ids.read_bucket_id(value) is None
    with pytest.raises(InvalidArgument, match="bucket_id") as raised:
        ids.parse_bucket_id(value)
    assert "v2.<backend>.b.<bucket>" in raised.value.message


@pytest.mark.parametrize(
    "value",
    [
        "v1/local/photos",  # a bucket id
        "v1/local/x/acct",  # key version not a number
        "v1/local/-1/acct",
        "v1/local/\u0661/acct",  # ARABIC-INDIC DIGIT ONE: a digit to str.isdigit, not to us
        "v1/local/0/",
        "v2/local/0/acct",
        "v1/LOCAL/0/acct",
        "v2.local.b.acct",  # a bucket id
        "v2.local.a.acct",  # no key version
        "v2.local.a01.acct",  # not canonical
        "v2.local.a-1.acct",
    ],
)
def test_ids_this_driver_cannot_have_issued_are_not_account_ids(value: str) -> None:
    assert ids.read_account_id(value) is None
    with pytest.raises(InvalidArgument, match="account_id"):
        ids.parse_account_id(value)


def test_parse_names_the_field_it_was_given() -> None:
    with pytest.raises(InvalidArgument, match=r"^source_bucket "):
        ids.parse_bucket_id("nope", field="source_bucket")


def test_a_slash_in_the_bucket_name_stays_in_the_bucket_part() -> None:
    assert ids.read_bucket_id("v1/local/a/b") == ids.BucketRef("local", "a/b")
    assert ids.read_account_id("v1/local/2/a/b") == ids.AccountRef("local", "a/b", 2)


def test_an_id_may_take_exactly_the_request_field_limit() -> None:
    encoded = ids.BucketRef("local", "b" * (MAX_STRING_BYTES - len("v2.local.b."))).encode()
    assert ids.check_fits("name", encoded) == encoded


def test_an_id_over_the_limit_is_refused_with_the_bytes_to_cut() -> None:
    # Counted in UTF-8 bytes: 120 two-byte characters are 240 bytes, far over 128.
    encoded = ids.BucketRef("local", "é" * 120).encode()
    with pytest.raises(InvalidArgument) as raised:
        ids.check_fits("name", encoded)
    message = raised.value.message
    assert message.startswith("name is too long")
    assert f"would be {len(encoded.encode())} bytes, over the {MAX_STRING_BYTES} bytes" in message
    assert "shorten name" in message


@given(backend=backend_names, bucket=names)
def test_check_fits_refuses_exactly_the_ids_over_128_bytes(backend: str, bucket: str) -> None:
    encoded = ids.BucketRef(backend, bucket).encode()
    fits = len(encoded.encode("utf-8", "surrogatepass")) <= MAX_STRING_BYTES
    if fits:
        assert ids.check_fits("name", encoded) == encoded
    else:
        with pytest.raises(InvalidArgument):
            ids.check_fits("name", encoded)
