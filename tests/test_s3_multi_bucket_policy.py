"""The policy documents of multi-bucket grants, as pure functions (no server).

What a user notices: each bucket of an account is reachable in exactly its own mode, a bucket
not granted is named nowhere, a retried grant writes the identical document, and a one-bucket
grant still writes the document earlier releases wrote (so v1alpha1 users see no change).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from cosi_driver.backends.ceph.users import account_uid
from cosi_driver.backends.s3 import MAX_USER_NAME, account_user_name, user_name
from cosi_driver.backends.s3kit.policy import grants_document, grants_statements, policy_document
from cosi_driver.core.types import AccessMode

READS = {"s3:GetObject", "s3:ListBucket", "s3:GetObjectVersion", "s3:ListBucketVersions"}
WRITES = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
ANY = [AccessMode.READ, AccessMode.WRITE, AccessMode.READWRITE]


def allowed_on(statements: list[dict[str, Any]], bucket: str) -> set[str]:
    """Every action the statements allow on ``bucket`` or its objects."""
    arns = {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    return {
        action
        for statement in statements
        if statement["Effect"] == "Allow" and arns & set(statement["Resource"])
        for action in statement["Action"]
    }


def test_each_bucket_gets_exactly_its_modes_actions() -> None:
    grants = {"ro-bucket": AccessMode.READ, "wo-bucket": AccessMode.WRITE, "rw-bucket": AccessMode.READWRITE}
    statements = json.loads(grants_document(grants))["Statement"]
    read_only, write_only, both = (allowed_on(statements, b) for b in ("ro-bucket", "wo-bucket", "rw-bucket"))
    assert read_only >= READS and not WRITES & read_only
    assert write_only >= WRITES and not READS & write_only
    assert both >= READS | WRITES
    assert allowed_on(statements, "not-granted") == set()
    assert {s["Effect"] for s in statements} == {"Allow"}  # SeaweedFS ignores Deny: none is relied on
    assert len({s["Sid"] for s in statements}) == len(statements)
    assert all(s["Sid"].isascii() and s["Sid"].isalnum() for s in statements)  # AWS allows nothing else


@pytest.mark.parametrize("count", [1, 2, 5, 20])
def test_buckets_of_one_mode_share_two_statements(count: int) -> None:
    grants = {f"bucket-{n:02d}": ANY[n % 3] for n in range(count)}
    statements = grants_statements(grants)
    assert len(statements) == 2 * len(set(grants.values()))
    for bucket, mode in grants.items():
        expected = set().union(*(set(part) for part in _actions(mode)))
        assert allowed_on(statements, bucket) == expected


def _actions(mode: AccessMode) -> tuple[list[str], list[str]]:
    from cosi_driver.backends.s3kit.policy import actions_for

    return actions_for(mode)


def test_the_document_does_not_depend_on_the_order_of_the_request() -> None:
    forward = {"a-bucket": AccessMode.READ, "b-bucket": AccessMode.WRITE, "c-bucket": AccessMode.READ}
    backward = dict(reversed(list(forward.items())))
    assert grants_document(forward) == grants_document(backward)


@pytest.mark.parametrize("mode", ANY)
def test_a_one_bucket_grant_writes_the_document_earlier_releases_wrote(mode: AccessMode) -> None:
    assert grants_document({"photos": mode}) == policy_document("photos", mode)


def test_an_empty_grant_is_a_bug_not_an_empty_policy() -> None:
    with pytest.raises(ValueError, match="at least one bucket"):
        grants_statements({})


def test_five_long_buckets_fit_awss_inline_policy_limit() -> None:
    """AWS allows 2,048 non-whitespace characters of inline policy per user."""
    grants = {f"{n}{'b' * 62}": ANY[n % 3] for n in range(5)}
    assert len(grants_document(grants)) < 2048


def test_one_bucket_accounts_keep_the_names_earlier_releases_made() -> None:
    assert user_name("cosi-", "photos", "ba-1") == "cosi-photos-2248f5b8f7a56c6e9a67"
    assert account_uid("photos", "ba-1") == "cosi-2248f5b8f7a56c6e9a677836"


def test_v1alpha2_accounts_are_named_after_the_access_in_a_shape_of_their_own() -> None:
    name = account_user_name("cosi-", "ba-0f3c")
    assert name == account_user_name("cosi-", "ba-0f3c")
    assert re.fullmatch(r"cosi-ba-0f3c_[0-9a-f]{20}", name)
    # Never the shape of a one-bucket account (bucket names hold no "_"), nor its digest.
    assert not re.fullmatch(r"cosi-.*-[0-9a-f]{20}", name)
    assert account_uid("", "ba-0f3c") != account_uid("ba-0f3c", "")
    long = account_user_name("cosi-", "ba-" + "x" * 300 + "_odd/chars")
    assert len(long) <= MAX_USER_NAME
    assert re.fullmatch(r"[A-Za-z0-9+=,.@_-]+", long)
    assert long.count("_") == 1
