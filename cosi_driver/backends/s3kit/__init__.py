"""s3kit: the S3 and IAM mechanics shared by every backend that speaks S3 (``s3``, ``seaweedfs``, ``ceph-rgw``).

Stable API (other backends build on it; change it only compatibly):

* :mod:`.clients`: :class:`Connection` (how to reach one endpoint: region, TLS, addressing,
  timeouts) and :class:`ClientPool` (long-lived aioboto3 clients, rebuilt when rotated admin keys
  are read again). aioboto3 is imported on first use only.
* :mod:`.endpoints`: the endpoint options (region, TLS, timeouts, public endpoint) every S3
  backend declares, and :func:`~.endpoints.connection` building a :class:`Connection` from them;
  :func:`~.clients.read_admin_keys` reads admin keys, UNAVAILABLE when they cannot be read.
* :mod:`.names`: :func:`check_bucket_name`, INVALID_ARGUMENT naming the S3 rule that is broken.
* :mod:`.errors`: :func:`edge` (a context manager) and :func:`translate`, turning botocore
  exceptions into core errors with messages built from error codes only, never from server text
  or secrets; :func:`error_code`, :func:`is_missing` and :func:`is_unsupported` for the branches a
  backend takes itself.
* :mod:`.contents`: :func:`find_content` (objects, old versions, delete markers, unfinished
  multipart uploads) and :func:`purge` (removes all of them).
* :mod:`.marks`: the core's ownership mark kept as a bucket tag (:func:`read_mark`,
  :func:`write_mark`), with a fallback for servers that cannot tag buckets.
* :mod:`.policy`: the S3 actions behind each access mode, and policy documents built from them.
* :mod:`.iam`: user, inline-policy and access-key mechanics of an AWS-style IAM API.

COSI semantics (ownership decisions, credential stability, deletion policies) stay in
:mod:`cosi_driver.core`; this package only knows how S3 and IAM servers behave.
"""

from __future__ import annotations

from cosi_driver.backends.s3kit.clients import ClientPool, Connection
from cosi_driver.backends.s3kit.contents import find_content, purge
from cosi_driver.backends.s3kit.errors import edge, error_code, is_missing, translate
from cosi_driver.backends.s3kit.marks import MARK_TAG, read_mark, write_mark
from cosi_driver.backends.s3kit.names import check_bucket_name
from cosi_driver.backends.s3kit.policy import actions_for, policy_document, statements

__all__ = [
    "MARK_TAG",
    "ClientPool",
    "Connection",
    "actions_for",
    "check_bucket_name",
    "edge",
    "error_code",
    "find_content",
    "is_missing",
    "policy_document",
    "purge",
    "read_mark",
    "statements",
    "translate",
    "write_mark",
]
