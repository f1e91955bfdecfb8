"""The v2 id layout and the grant-terms record, without a server: pure functions and a file store."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cosi_driver.core import ids
from cosi_driver.core.errors import InvalidArgument
from cosi_driver.core.grants import GrantBook, GrantRecord
from cosi_driver.core.stores import FileStateStore
from cosi_driver.core.types import AccessMode

# Every kind of character a name can bring: DNS names, capitals, separators, Latin-1, CJK, emoji.
_ALPHABETS = ["abcxyz0129.-", "ABCXYZ", "_/~ +=,@$%", "äöüßéñ", "桶名字", "🪣😀", "\u00a0\u2028"]


def _random_name(rng: random.Random) -> str:
    length = rng.randint(1, 60)
    return "".join(rng.choice(rng.choice(_ALPHABETS)) for _ in range(length))


def test_random_names_survive_the_round_trip_in_the_id_alphabet() -> None:
    rng = random.Random(17)
    for _ in range(3000):
        name = _random_name(rng)
        bucket = ids.BucketRef("some-backend", name, existing=rng.random() < 0.5)
        account = ids.AccountRef("some-backend", name, rng.randint(0, 999))
        for encoded, read in ((bucket.encode(), ids.read_bucket_id), (account.encode(), ids.read_account_id)):
            assert ids.ID_CHARACTERS.fullmatch(encoded), encoded
            assert read(encoded) in (bucket, account), (name, encoded)


def test_dns_names_are_readable_in_their_ids_and_dots_are_kept() -> None:
    assert ids.BucketRef("fs", "bucket-1.example.com").encode() == "v2.fs.b.bucket-1.example.com"
    assert ids.BucketRef("fs", "legacy", existing=True).encode() == "v2.fs.e.legacy"
    assert ids.AccountRef("rgw", "cosi-ab12", 3).encode() == "v2.rgw.a3.cosi-ab12"
    assert ids.read_bucket_id("v2.fs.b.a.b.c") == ids.BucketRef("fs", "a.b.c")


def test_escaping_is_unambiguous_and_canonical() -> None:
    assert ids.escape("A") == "EB" and ids.escape("_") == "FP" and ids.escape("ü") == "MDLM"
    assert ids.unescape("EB") == "A"
    for second_spelling in ("GB", "CO"):  # "a" and "." escaped although they stand for themselves
        assert ids.unescape(second_spelling) is None
    for broken in ("E", "EBE", "PP", "MD", "a_b", ""):  # odd runs, invalid UTF-8, foreign characters, empty
        assert ids.unescape(broken) is None, broken


def test_a_2048_character_id_is_read_and_a_longer_one_is_not_ours() -> None:
    prefix = "v2.fs.b."
    longest = prefix + "n" * (ids.MAX_ID_CHARS - len(prefix))
    assert ids.read_bucket_id(longest) == ids.BucketRef("fs", "n" * (ids.MAX_ID_CHARS - len(prefix)))
    assert ids.read_bucket_id(longest + "n") is None
    assert ids.check_fits("name", longest, ids.MAX_ID_CHARS) == longest
    with pytest.raises(InvalidArgument, match="name is too long"):
        ids.check_fits("name", longest + "n", ids.MAX_ID_CHARS)


def test_v1alpha1_ids_issued_before_still_read() -> None:
    assert ids.read_bucket_id("v1/filesystem/bucket-a") == ids.BucketRef("filesystem", "bucket-a")
    assert ids.read_account_id("v1/kv/1/bucket.ba-1") == ids.AccountRef("kv", "bucket.ba-1", 1)
    for foreign in ("v2.fs.x.name", "v2.FS.b.name", "v2.fs.b.", "v2.fs.a01.acct", "v3.fs.b.name", "v2.fs.aX.acct"):
        assert ids.read_bucket_id(foreign) is None and ids.read_account_id(foreign) is None, foreign


def _record(**buckets: AccessMode) -> GrantRecord:
    return GrantRecord(account="acct-1", buckets=buckets, authentication_type="KEY", fingerprint="f1")


def test_grant_terms_say_what_differs() -> None:
    before = _record(a=AccessMode.READ_WRITE, b=AccessMode.READ_ONLY)
    assert before.differences(_record(a=AccessMode.READ_WRITE, b=AccessMode.READ_ONLY)) == []
    after = _record(a=AccessMode.WRITE_ONLY, c=AccessMode.READ_ONLY)
    assert before.differences(after) == [
        "bucket 'b' (READ_ONLY) is no longer requested",
        "bucket 'c' (READ_ONLY) is newly requested",
        "bucket 'a' was granted READ_WRITE, now WRITE_ONLY is requested",
    ]
    other = GrantRecord("acct-1", {"a": AccessMode.READ_WRITE}, "SERVICE_ACCOUNT", "f2")
    assert _record(a=AccessMode.READ_WRITE).differences(other) == [
        "authentication type was KEY, now SERVICE_ACCOUNT is requested",
        "the BucketAccessClass parameters differ",
    ]


async def test_grant_terms_are_found_by_name_and_account_and_forgotten_together(tmp_path: Path) -> None:
    book = GrantBook(FileStateStore(tmp_path))
    record = _record(**{"bucket.one": AccessMode.READ_ONLY})
    await book.record("fs", "ba-ü", record)
    assert await book.get("fs", "ba-ü") == record
    assert await book.find_by_account("fs", "acct-1") == ("ba-ü", record)
    await book.forget("fs", "acct-1")
    assert await book.get("fs", "ba-ü") is None
    assert await book.find_by_account("fs", "acct-1") is None
