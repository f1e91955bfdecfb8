"""Opaque, versioned bucket and account ids that carry their backend's name.

The sidecar stores ``bucket_id`` in ``Bucket.status.bucketID`` and ``account_id`` in
``BucketAccess.status.accountID`` and hands them back on Delete, Grant and Revoke. Encoding the
backend name in them lets the driver route those calls with no lookup table, and the leading
version lets a later release change the layout without misreading old ids.

Layout (``/`` cannot occur in bucket names or backend names)::

    bucket:  v1/<backend>/<bucket name>
    account: v1/<backend>/<key version>/<account name>

The key version is the credential-derivation key version the account's keys were made with
(0 for keys the storage generated).

An id in any other layout was never issued by this driver, so nothing of ours exists under it:
the driver answers Delete and Revoke on such an id with OK (the sidecar retries every error
forever and keeps the object's finalizer) and Grant with NOT_FOUND. ``read_*`` tell those ids
apart without raising; ``parse_*`` raise for tools to which a foreign id is a mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cosi_driver.core.errors import InvalidArgument
from cosi_driver.core.validation import MAX_STRING_BYTES, byte_size

VERSION = "v1"
BACKEND_NAME = re.compile(r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?")


@dataclass(frozen=True)
class BucketRef:
    backend: str
    bucket: str

    def encode(self) -> str:
        return f"{VERSION}/{self.backend}/{self.bucket}"


@dataclass(frozen=True)
class AccountRef:
    backend: str
    account: str
    key_version: int = 0

    def encode(self) -> str:
        return f"{VERSION}/{self.backend}/{self.key_version}/{self.account}"


def check_fits(field: str, encoded: str) -> str:
    """Ids we mint come back in request fields limited to 128 bytes; refuse to mint longer ones."""
    size = byte_size(encoded)
    if size > MAX_STRING_BYTES:
        raise InvalidArgument(
            f"{field} is too long: the id made from it ({encoded[:40]!r}...) would be {size} bytes (UTF-8), over "
            f"the {MAX_STRING_BYTES} bytes an id may have; shorten {field} by {size - MAX_STRING_BYTES} bytes"
        )
    return encoded


def read_bucket_id(value: str) -> BucketRef | None:
    """The parts of a bucket id in our layout, or None when this driver cannot have issued it."""
    parts = value.split("/", 2)
    if len(parts) != 3 or parts[0] != VERSION or not BACKEND_NAME.fullmatch(parts[1]) or not parts[2]:
        return None
    return BucketRef(parts[1], parts[2])


def read_account_id(value: str) -> AccountRef | None:
    """The parts of an account id in our layout, or None when this driver cannot have issued it."""
    parts = value.split("/", 3)
    if (
        len(parts) != 4
        or parts[0] != VERSION
        or not BACKEND_NAME.fullmatch(parts[1])
        or not (parts[2].isascii() and parts[2].isdigit())
        or not parts[3]
    ):
        return None
    return AccountRef(parts[1], parts[3], int(parts[2]))


def parse_bucket_id(value: str, field: str = "bucket_id") -> BucketRef:
    """Like :func:`read_bucket_id`, for callers (tools, tests) to whom a foreign id is an error."""
    ref = read_bucket_id(value)
    if ref is None:
        raise InvalidArgument(
            f"{field} {value!r} is not a bucket id issued by this driver (expected {VERSION}/<backend>/<bucket>)"
        )
    return ref


def parse_account_id(value: str, field: str = "account_id") -> AccountRef:
    """Like :func:`read_account_id`, for callers (tools, tests) to whom a foreign id is an error."""
    ref = read_account_id(value)
    if ref is None:
        raise InvalidArgument(
            f"{field} {value!r} is not an account id issued by this driver "
            f"(expected {VERSION}/<backend>/<key version>/<account>)"
        )
    return ref
