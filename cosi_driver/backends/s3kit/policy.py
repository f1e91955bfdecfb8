"""The S3 actions behind each COSI access mode, and policy documents built from them.

Only ``Allow`` statements (SeaweedFS has no ``Deny``), only actions every server we target
accepts (SeaweedFS rejects ``s3:ListBucketMultipartUploads`` and ``s3:ListMultipartUploadParts``
as a malformed policy), and only the granted buckets: per access mode, a bucket-level statement
on the buckets' ARNs and an object-level one on their objects. Because nothing is denied, a
bucket is reachable in exactly the modes whose statements name it, and any bucket not named is
unreachable; so a write-only bucket must never appear in a statement that also allows reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cosi_driver.core.types import AccessMode

VERSION = "2012-10-17"
# GetBucketLocation is harmless metadata that many SDKs ask for before anything else.
_READ_BUCKET = ("s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation")
_READ_OBJECTS = ("s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging")
_WRITE_BUCKET = ("s3:GetBucketLocation",)
# Deleting an object in a versioned bucket adds a delete marker; erasing history
# (s3:DeleteObjectVersion) is deliberately not part of "write".
_WRITE_OBJECTS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:PutObjectTagging")


def actions_for(mode: AccessMode) -> tuple[list[str], list[str]]:
    """(bucket-level actions, object-level actions) that ``mode`` allows."""
    bucket: list[str] = []
    objects: list[str] = []
    if mode.can_read:
        bucket += _READ_BUCKET
        objects += _READ_OBJECTS
    if mode.can_write:
        bucket += [action for action in _WRITE_BUCKET if action not in bucket]
        objects += _WRITE_OBJECTS
    return bucket, objects


def _allow(sid: str, mode: AccessMode, buckets: list[str]) -> list[dict[str, Any]]:
    """The bucket-level and the object-level Allow of ``mode`` on ``buckets``."""
    bucket_actions, object_actions = actions_for(mode)
    return [
        {
            "Sid": f"{sid}Bucket",
            "Effect": "Allow",
            "Action": bucket_actions,
            "Resource": [f"arn:aws:s3:::{bucket}" for bucket in buckets],
        },
        {
            "Sid": f"{sid}Objects",
            "Effect": "Allow",
            "Action": object_actions,
            "Resource": [f"arn:aws:s3:::{bucket}/*" for bucket in buckets],
        },
    ]


def statements(bucket: str, mode: AccessMode, principal: Any = None) -> list[dict[str, Any]]:
    """Allow statements for ``mode`` on exactly ``bucket``; with ``principal`` for a bucket policy."""
    out = _allow("Cosi", mode, [bucket])
    if principal is not None:
        for statement in out:
            statement["Principal"] = principal
    return out


def grants_statements(grants: Mapping[str, AccessMode]) -> list[dict[str, Any]]:
    """Allow statements for every bucket of one account, each in exactly its own mode.

    Buckets that share a mode share its two statements, so the document grows by two ARNs per
    bucket, not by two statements (AWS caps a user's inline policies at 2,048 characters). The
    order is fixed (modes in declaration order, buckets sorted), so a retried grant writes the
    identical document. With one mode, the Sids are those of :func:`statements`: a one-bucket
    grant keeps the document earlier releases wrote.
    """
    if not grants:
        raise ValueError("a policy needs at least one bucket")
    modes = [mode for mode in AccessMode if mode in grants.values()]
    out: list[dict[str, Any]] = []
    for mode in modes:
        sid = "Cosi" if len(modes) == 1 else f"Cosi{mode.value.title()}"
        out += _allow(sid, mode, sorted(bucket for bucket, wanted in grants.items() if wanted is mode))
    return out


def grants_document(grants: Mapping[str, AccessMode]) -> str:
    """The IAM inline policy of an account holding ``grants`` (bucket -> mode)."""
    return _render(grants_statements(grants))


def policy_document(bucket: str, mode: AccessMode, principal: Any = None) -> str:
    """A JSON policy document (an IAM inline policy, or a bucket policy when ``principal`` is given)."""
    return _render(statements(bucket, mode, principal))


def _render(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": VERSION, "Statement": statements}, separators=(",", ":"))
