"""Ownership marks, intent records and the rule that decides whose a bucket is (core/ownership.py)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosi_driver.core.backend import FoundBucket
from cosi_driver.core.driver import Driver, Route
from cosi_driver.core.ownership import Claim, Intent, Ledger
from cosi_driver.core.stores import MemoryStateStore

# Driver names are DNS names and fingerprints hex digits: neither can hold the mark's "/".
driver_names = st.from_regex(r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]([a-z0-9-]{0,10}[a-z0-9])?){0,3}", fullmatch=True)
fingerprints = st.text("0123456789abcdef", min_size=32, max_size=32)
ME = "cosi.example.com"


@given(driver=driver_names, digest=fingerprints)
def test_a_mark_decodes_to_the_claim_it_was_made_from(driver: str, digest: str) -> None:
    claim = Claim(driver, digest)
    assert claim.encode() == f"cosi-driver/{driver}/{digest}"
    assert Claim.decode(claim.encode()) == claim


@pytest.mark.parametrize(
    "mark",
    [None, "", "cosi-driver", "cosi-driver/only-driver", "cosi-driver/a/b/c", "other-tool/a/b", "COSI-DRIVER/a/b"],
)
def test_anything_but_our_mark_is_no_claim(mark: str | None) -> None:
    assert Claim.decode(mark) is None


@given(st.text())
def test_decoding_any_tag_value_never_raises(mark: str) -> None:
    claim = Claim.decode(mark)
    if claim is not None:
        assert claim.encode() == mark


async def test_the_ledger_keeps_an_intent_per_backend_and_bucket() -> None:
    store = MemoryStateStore()
    ledger = Ledger(store)
    intent = Intent("f" * 32, {"deletionPolicy": "purge"})
    await ledger.record("local", "photos", intent)
    assert await ledger.get("local", "photos") == intent
    assert await ledger.get("archive", "photos") is None  # another backend's bucket of that name
    assert await ledger.get("local", "photo") is None
    await ledger.forget("local", "photos")
    assert await ledger.get("local", "photos") is None
    await ledger.forget("local", "photos")  # forgetting twice is fine: Delete is retried


async def test_an_intent_written_by_an_older_release_without_params_still_reads() -> None:
    store = MemoryStateStore()
    await store.put("bucket/local/photos", {"fingerprint": "a" * 32})
    assert await Ledger(store).get("local", "photos") == Intent("a" * 32, {})


def driver() -> Driver:
    # _owned_fingerprint reads only the driver's name; no backend is ever called here.
    route = Route(name="local", type=cast(Any, None), backend=cast(Any, None))
    return Driver(name=ME, routes={"local": route}, default="local", store=MemoryStateStore())


MINE = Claim(ME, "1" * 32).encode()
THEIRS = Claim("other.example.com", "2" * 32).encode()
RECORD = Intent("3" * 32, {})


@pytest.mark.parametrize(
    ("mark", "record", "owned"),
    [
        (MINE, None, "1" * 32),  # our mark
        (MINE, RECORD, "1" * 32),  # the mark wins over the record
        (None, RECORD, "3" * 32),  # created, then a crash before marking: still ours
        (None, None, None),  # someone else's bucket: never adopted
        (THEIRS, None, None),  # another driver's bucket
        ("not-a-mark", None, None),
    ],
)
def test_a_bucket_is_ours_by_our_mark_or_our_intent_record(
    mark: str | None, record: Intent | None, owned: str | None
) -> None:
    assert driver()._owned_fingerprint(FoundBucket(mark), record) == owned
