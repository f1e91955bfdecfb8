"""Bucket policy documents: one statement per granted RGW user, plus one for the bucket's owner.

Pure functions over the JSON document, so the read-modify-write in the backend stays small and
these rules are testable without a gateway:

* A grant's statement gives its user exactly the access mode asked for, on that bucket only.
* The owner statement is in every document the driver writes. RGW (Pacific has no
  BucketOwnerEnforced) ties each object to its uploader, so without it the bucket owner, i.e. the
  driver, could not read, list the versions of or purge objects its grantees uploaded, and
  after a revoke nobody but the other grantees could.
* Statements the driver did not write (an operator's own additions) are kept as they are.
* Statements are told apart by ``Sid``; AWS allows only ASCII letters and digits there.
"""

from __future__ import annotations

import json
from typing import Any

from cosi_driver.core.params import AccessMode

VERSION = "2012-10-17"
OWNER_SID = "CosiDriverBucketOwner"
_ACCESS_SID_PREFIX = "CosiDriverAccess"

# Reading: objects (and their versions) and the listing. Writing: creating, overwriting and
# deleting objects, including multipart uploads (authorised by s3:PutObject) and their clean-up.
# Neither lets the user change the bucket's policy, versioning, tags or quota.
_BOTH = ("s3:GetBucketLocation",)
_READ = ("s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions")
_WRITE = (
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)
# RGW lets an object's uploader read it and change its ACL through the object's ACL, whatever
# the bucket policy allows; only an explicit Deny overrides that. Without it a write-only user
# reads back what it wrote, and any grantee could make its uploads public.
_ACL_WRITES = ("s3:PutObjectAcl", "s3:PutObjectVersionAcl")


def actions(mode: AccessMode) -> list[str]:
    chosen = list(_BOTH)
    if mode.can_read:
        chosen += _READ
    if mode.can_write:
        chosen += _WRITE
    return chosen


def denied_actions(mode: AccessMode) -> list[str]:
    denied = [] if mode.can_read else list(_READ)
    if not mode.can_write:
        denied += _WRITE
    return [*denied, *_ACL_WRITES]


def principal(uid: str) -> str:
    """The principal ARN RGW expects: ``arn:aws:iam::<tenant>:user/<uid>``; no tenant here."""
    tenant, _, name = uid.rpartition("$")
    return f"arn:aws:iam::{tenant}:user/{name}"


def access_sids(uid: str) -> tuple[str, str]:
    """The Sids of a grant's Allow and Deny statements."""
    base = _ACCESS_SID_PREFIX + "".join(char for char in uid if char.isascii() and char.isalnum())
    return base, base + "Deny"


def _statement(sid: str, uid: str, bucket: str, granted: list[str], effect: str = "Allow") -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": effect,
        "Principal": {"AWS": [principal(uid)]},
        "Action": granted,
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }


def owner_statement(owner: str, bucket: str) -> dict[str, Any]:
    return _statement(OWNER_SID, owner, bucket, ["s3:*"])


def access_statements(uid: str, bucket: str, mode: AccessMode) -> tuple[dict[str, Any], dict[str, Any]]:
    allow, deny = access_sids(uid)
    return (
        _statement(allow, uid, bucket, actions(mode)),
        _statement(deny, uid, bucket, denied_actions(mode), effect="Deny"),
    )


def parse(text: str | None) -> dict[str, Any]:
    """The stored document, or a new empty one when the bucket has no policy yet."""
    if not text:
        return {"Version": VERSION, "Statement": []}
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("the bucket policy is not a JSON object")
    statements = document.get("Statement", [])
    # A single statement may be written as an object instead of a list.
    document["Statement"] = [statements] if isinstance(statements, dict) else list(statements)
    return document


def render(document: dict[str, Any]) -> str:
    """Compact JSON: RGW's IAM and STS APIs reject policy documents that contain spaces."""
    return json.dumps(document, separators=(",", ":"))


def _sid(statement: Any) -> str | None:
    sid = statement.get("Sid") if isinstance(statement, dict) else None
    return sid if isinstance(sid, str) else None


def with_statements(document: dict[str, Any], *statements: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` where each statement replaces the one with its Sid, or is added."""
    replacing = {statement["Sid"]: statement for statement in statements}
    merged = []
    for existing in document["Statement"]:
        sid = _sid(existing)
        merged.append(replacing.pop(sid) if sid in replacing else existing)
    merged += replacing.values()  # in place where it was, at the end where it is new
    return {**document, "Version": document.get("Version", VERSION), "Statement": merged}


def without_statements(document: dict[str, Any], *sids: str) -> dict[str, Any]:
    return {**document, "Statement": [s for s in document["Statement"] if _sid(s) not in sids]}


def statement(document: dict[str, Any], sid: str) -> dict[str, Any] | None:
    for candidate in document["Statement"]:
        if _sid(candidate) == sid:
            return dict(candidate)
    return None
