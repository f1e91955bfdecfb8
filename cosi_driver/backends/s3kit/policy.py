"""The S3 actions behind each COSI access mode, and policy documents built from them.

Only ``Allow`` statements (SeaweedFS has no ``Deny``), only actions every server we target
accepts (SeaweedFS rejects ``s3:ListBucketMultipartUploads`` and ``s3:ListMultipartUploadParts``
as a malformed policy), and only the one bucket: a bucket-level statement on the bucket's ARN
and an object-level one on its objects.
"""

from __future__ import annotations

import json
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


def statements(bucket: str, mode: AccessMode, principal: Any = None) -> list[dict[str, Any]]:
    """Allow statements for ``mode`` on exactly ``bucket``; with ``principal`` for a bucket policy."""
    bucket_actions, object_actions = actions_for(mode)
    out: list[dict[str, Any]] = [
        {"Sid": "CosiBucket", "Effect": "Allow", "Action": bucket_actions, "Resource": [f"arn:aws:s3:::{bucket}"]},
        {"Sid": "CosiObjects", "Effect": "Allow", "Action": object_actions, "Resource": [f"arn:aws:s3:::{bucket}/*"]},
    ]
    if principal is not None:
        for statement in out:
            statement["Principal"] = principal
    return out


def policy_document(bucket: str, mode: AccessMode, principal: Any = None) -> str:
    """A JSON policy document (an IAM inline policy, or a bucket policy when ``principal`` is given)."""
    return json.dumps({"Version": VERSION, "Statement": statements(bucket, mode, principal)}, separators=(",", ":"))
