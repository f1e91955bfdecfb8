"""Bucket policy documents: statements per granted RGW user, plus one for the bucket's owner.

Pure functions over the JSON document, so the read-modify-write in the backend stays small. The
rules, each measured on Pacific:

* A grant allows its user the shared S3 actions of its access mode (:mod:`s3kit.policy`), on
  that bucket only, and explicitly denies the rest of what the uploader of an object gets from the
  object's ACL: without the Deny a write-only user reads back what it wrote, and any grantee could
  make its uploads public with PutObjectAcl. RGW, unlike SeaweedFS, evaluates Deny.
* The owner statement is in every document the driver writes. RGW ties each object to its
  uploader (no BucketOwnerEnforced in Pacific), so without it the bucket owner, i.e. the driver,
  could not read or list the versions of objects its grantees uploaded, before or after a revoke.
* Statements the driver did not write (an operator's own additions) are kept as they are.
* Statements are told apart by ``Sid``; AWS allows only ASCII letters and digits there.
"""

from __future__ import annotations

import json
from typing import Any

from cosi_driver.backends.s3kit.policy import VERSION, actions_for
from cosi_driver.core.types import AccessMode

OWNER_SID = "CosiDriverBucketOwner"
_ACCESS_SID_PREFIX = "CosiDriverAccess"
_ACL_WRITES = ("s3:PutObjectAcl", "s3:PutObjectVersionAcl")


def principal(uid: str) -> str:
    """The principal ARN RGW expects: ``arn:aws:iam::<tenant>:user/<uid>`` (empty tenant here)."""
    tenant, _, name = uid.rpartition("$")
    return f"arn:aws:iam::{tenant}:user/{name}"


def access_sids(uid: str) -> tuple[str, str, str]:
    """The Sids of a grant's statements: bucket-level Allow, object-level Allow, Deny."""
    base = _ACCESS_SID_PREFIX + "".join(char for char in uid if char.isascii() and char.isalnum())
    return base + "Bucket", base + "Objects", base + "Deny"


def _arns(bucket: str) -> list[str]:
    return [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]


def _statement(sid: str, uid: str, effect: str, actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": effect,
        "Principal": {"AWS": [principal(uid)]},
        "Action": actions,
        "Resource": resources,
    }


def owner_statement(owner: str, bucket: str) -> dict[str, Any]:
    return _statement(OWNER_SID, owner, "Allow", ["s3:*"], _arns(bucket))


def denied_actions(mode: AccessMode) -> list[str]:
    """What the other modes allow and this one does not, plus changing object ACLs."""
    allowed = {action for part in actions_for(mode) for action in part}
    others = [action for other in AccessMode for part in actions_for(other) for action in part]
    return [*dict.fromkeys(action for action in others if action not in allowed), *_ACL_WRITES]


def access_statements(uid: str, bucket: str, mode: AccessMode) -> list[dict[str, Any]]:
    bucket_sid, objects_sid, deny_sid = access_sids(uid)
    bucket_actions, object_actions = actions_for(mode)
    return [
        _statement(bucket_sid, uid, "Allow", bucket_actions, [f"arn:aws:s3:::{bucket}"]),
        _statement(objects_sid, uid, "Allow", object_actions, [f"arn:aws:s3:::{bucket}/*"]),
        _statement(deny_sid, uid, "Deny", denied_actions(mode), _arns(bucket)),
    ]


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
