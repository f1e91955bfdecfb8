"""The one rule every built-in backend derives its account names from.

An account (an IAM user, an RGW uid, a filesystem account record) is found again by its name
alone: a retried Grant, a Revoke after a restart and an upgraded driver all recompute it. The
rule is therefore part of the storage's state, not an implementation detail; changing it for
one backend would orphan every account that backend ever made. Written once here, a change to
it is one visible edit, and the backends differ only in prefix and length.
"""

from __future__ import annotations

import hashlib


def access_digest(bucket: str, access_name: str, length: int) -> str:
    """Hex digest naming one BucketAccess on one bucket; the first ``length`` characters of a SHA-256.

    The NUL separator cannot occur in either Kubernetes name, so no two (bucket, access) pairs
    share an input.
    """
    return hashlib.sha256(f"{bucket}\x00{access_name}".encode()).hexdigest()[:length]
