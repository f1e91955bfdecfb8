"""Bucket policies of multi-bucket grants on Ceph RGW, as pure functions (no gateway).

Each bucket's document is changed on its own, so what matters is that the statements written for
one account on one bucket allow exactly that bucket's mode (with the Deny RGW needs for
write-only, measured: without it the uploader reads its objects back), and that a revoke takes
out exactly that account's statements from every bucket, keeping other grants, the owner and an
operator's own statements.
"""

from __future__ import annotations

from typing import Any

from cosi_driver.backends.ceph import policy
from cosi_driver.core.types import AccessMode

OWNER = "cosi-admin"
OPERATOR = {
    "Sid": "OperatorAudit",
    "Effect": "Allow",
    "Principal": {"AWS": ["arn:aws:iam:::user/auditor"]},
    "Action": ["s3:ListBucket"],
    "Resource": ["arn:aws:s3:::ro-bucket"],
}


def effect_for(document: dict[str, Any], uid: str, action: str) -> str | None:
    """What RGW would decide for ``uid`` doing ``action``: Deny beats Allow, nothing is no."""
    arn = policy.principal(uid)
    effects = {
        statement["Effect"]
        for statement in document["Statement"]
        if arn in statement["Principal"]["AWS"] and action in statement["Action"]
    }
    return "Deny" if "Deny" in effects else ("Allow" if effects else None)


def grant(documents: dict[str, dict[str, Any]], uid: str, grants: dict[str, AccessMode]) -> None:
    for bucket, mode in grants.items():
        statements = policy.grant_statements(uid, OWNER, bucket, mode)
        documents[bucket] = policy.with_statements(documents[bucket], *statements)


def revoke(documents: dict[str, dict[str, Any]], uid: str, buckets: list[str]) -> None:
    for bucket in buckets:
        documents[bucket] = policy.without_statements(documents[bucket], *policy.access_sids(uid))


def fresh(*buckets: str) -> dict[str, dict[str, Any]]:
    return {bucket: policy.parse(None) for bucket in buckets}


def test_each_bucket_holds_exactly_its_mode_for_the_account() -> None:
    documents = fresh("ro-bucket", "wo-bucket", "rw-bucket", "other")
    modes = {"ro-bucket": AccessMode.READ, "wo-bucket": AccessMode.WRITE, "rw-bucket": AccessMode.READWRITE}
    grant(documents, "cosi-a", modes)
    ro, wo, rw = (documents[b] for b in modes)
    assert effect_for(ro, "cosi-a", "s3:GetObject") == "Allow"
    assert effect_for(ro, "cosi-a", "s3:PutObject") == "Deny"
    assert effect_for(wo, "cosi-a", "s3:PutObject") == "Allow"
    # The uploader owns its objects on RGW: only an explicit Deny keeps it from reading them back.
    assert effect_for(wo, "cosi-a", "s3:GetObject") == "Deny"
    assert effect_for(wo, "cosi-a", "s3:ListBucket") == "Deny"
    assert effect_for(rw, "cosi-a", "s3:GetObject") == effect_for(rw, "cosi-a", "s3:PutObject") == "Allow"
    assert documents["other"] == policy.parse(None)
    for bucket, document in documents.items():
        for statement in document["Statement"]:
            assert {r.split("/", 1)[0] for r in statement["Resource"]} == {f"arn:aws:s3:::{bucket}"}


def test_a_retried_grant_changes_no_document() -> None:
    documents = fresh("ro-bucket", "rw-bucket")
    modes = {"ro-bucket": AccessMode.READ, "rw-bucket": AccessMode.READWRITE}
    grant(documents, "cosi-a", modes)
    before = {bucket: dict(document) for bucket, document in documents.items()}
    grant(documents, "cosi-a", modes)
    assert documents == before


def test_revoke_removes_exactly_the_accounts_statements_from_every_bucket() -> None:
    documents = fresh("ro-bucket", "wo-bucket", "rw-bucket")
    documents["ro-bucket"]["Statement"].append(OPERATOR)
    grant(documents, "cosi-a", {"ro-bucket": AccessMode.READ, "wo-bucket": AccessMode.WRITE})
    grant(documents, "cosi-b", {"ro-bucket": AccessMode.READWRITE, "rw-bucket": AccessMode.READWRITE})
    revoke(documents, "cosi-a", ["ro-bucket", "wo-bucket"])
    for document in documents.values():
        assert effect_for(document, "cosi-a", "s3:GetObject") is None
        assert effect_for(document, "cosi-a", "s3:PutObject") is None
        assert effect_for(document, OWNER, "s3:*") == "Allow"
    assert effect_for(documents["ro-bucket"], "cosi-b", "s3:PutObject") == "Allow"
    assert OPERATOR in documents["ro-bucket"]["Statement"]


def test_an_existing_buckets_owner_is_named_instead_of_the_driver() -> None:
    statements = policy.grant_statements("cosi-a", "alice", "theirs", AccessMode.READ)
    owners = [s for s in statements if s["Sid"] == policy.OWNER_SID]
    assert [s["Principal"]["AWS"] for s in owners] == [["arn:aws:iam:::user/alice"]]
