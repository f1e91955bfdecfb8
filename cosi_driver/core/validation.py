"""The request rules of the COSI v1alpha1 spec, applied before anything touches storage.

spec.v1alpha1.md: strings are at most 128 bytes and maps at most 4 KiB unless stated otherwise;
missing required fields and invalid values are INVALID_ARGUMENT. Secret-like map keys consist of
alphanumerics, ``-``, ``_`` and ``.``; we also admit ``/`` so that prefixed Kubernetes-style keys
(``example.com/tier``) get a precise "unknown parameter" answer instead of a generic one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from cosi_driver.core.errors import InvalidArgument

MAX_STRING_BYTES = 128
MAX_MAP_BYTES = 4096

_KEY = re.compile(r"[A-Za-z0-9._/-]+")
# C0 and C1 control characters and DEL (Unicode category Cc), and lone surrogates, which cannot be
# encoded as UTF-8 at all. Names and ids end up in file names, tags, user names and Events.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Map values may hold tabs and newlines (a policy document, a list); nothing else of the above.
_VALUE_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def byte_size(value: str) -> int:
    """Size as the spec counts it: bytes of UTF-8 (lone surrogates counted as 3, not an error)."""
    return len(value.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class ApiRules:
    """What differs between the two COSI APIs for the same core operation: sizes and field names.

    The core's operations serve both APIs; each adapter passes its rules so that limits and
    messages name the fields its caller sent.
    """

    api: str
    name_bytes: int  # a bucket's or an account's name
    id_bytes: int  # ids we mint and ids we are sent
    name_field: str  # the grant's account name field
    delete_field: str  # the delete call's parameter map
    per_bucket_accounts: bool  # an account belongs to (bucket, name) rather than to name alone

    def bucket_field(self, index: int) -> str:
        return "bucket_id" if self.per_bucket_accounts else f"buckets[{index}].bucket_id"


V1ALPHA1 = ApiRules("v1alpha1", MAX_STRING_BYTES, MAX_STRING_BYTES, "name", "delete_context", True)
# v1alpha2: names are DNS subdomains (at most 253 characters), ids at most 2048 characters.
V1ALPHA2 = ApiRules("v1alpha2", 253, 2048, "account_name", "parameters", False)


def require_string(field: str, value: str, limit: int = MAX_STRING_BYTES) -> str:
    """A REQUIRED string field: present, not blank, within the size limit, printable."""
    if not value:
        raise InvalidArgument(f"{field} is required and must not be empty")
    check_string(field, value, limit)
    if value.strip() != value:
        raise InvalidArgument(f"{field} must not start or end with whitespace")
    return value


def check_string(field: str, value: str, limit: int = MAX_STRING_BYTES) -> str:
    size = byte_size(value)
    if size > limit:
        raise InvalidArgument(f"{field} is {size} bytes long (UTF-8); the limit is {limit} bytes")
    if _CONTROL.search(value):
        raise InvalidArgument(f"{field} must not contain control characters")
    return value


def check_map(field: str, values: Mapping[str, str]) -> dict[str, str]:
    """An OPTIONAL map field: total size within 4 KiB, keys well-formed, no control characters."""
    size = sum(byte_size(k) + byte_size(v) for k, v in values.items())
    if size > MAX_MAP_BYTES:
        raise InvalidArgument(
            f"{field} holds {size} bytes (UTF-8) of keys and values; the limit is {MAX_MAP_BYTES} bytes"
        )
    for key, value in values.items():
        if not _KEY.fullmatch(key):
            raise InvalidArgument(
                f"{field} has an invalid key {key[:MAX_STRING_BYTES]!r}: keys may contain only letters, digits, "
                "'-', '_', '.' and '/'"
            )
        check_string(f"{field}[{key!r}]", key)
        if _VALUE_CONTROL.search(value):
            raise InvalidArgument(f"{field}[{key!r}] must not contain control characters")
    return dict(values)
