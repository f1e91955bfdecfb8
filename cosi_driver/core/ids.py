"""Opaque, versioned bucket and account ids that carry their backend's name.

The sidecar stores ``bucket_id`` in the Bucket's status and ``account_id`` in the BucketAccess's
status and hands them back on Delete, Grant and Revoke. Encoding the backend name in them lets the
driver route those calls with no lookup table, and the leading layout tag lets a release change the
layout without misreading old ids.

Layout ``v2`` (issued by both APIs): only ``[A-Za-z0-9.-]``, as v1alpha2 demands, and at most 2048
characters; v1alpha1 fields hold 128 bytes, so a v1alpha1 call refuses a name whose id would not
fit (:func:`check_fits`)::

    bucket made by us:        v2.<backend>.b.<escaped bucket name>
    bucket taken as existing: v2.<backend>.e.<escaped bucket name>   (Delete leaves it alone)
    account:                  v2.<backend>.a<key version>.<escaped account name>

Backend names have no dot, so the first three dots split the fields and the name keeps its own
dots. The escape is reversible for any name: lowercase letters, digits, ``.`` and ``-`` stand for
themselves; every other character becomes its UTF-8 bytes, each byte two capital letters ``A``-``P``
(its high and low nibble). Capitals never stand for themselves, so decoding is unambiguous, and
DNS-style names (every Kubernetes and S3 name) come out unchanged and readable.

Layout ``v1`` (issued before v1alpha2, still read): ``v1/<backend>/<bucket>`` and
``v1/<backend>/<key version>/<account>``.

The key version is the credential-derivation key version the account's keys were made with (0 for
keys the storage generated).

An id in no layout was never issued by this driver, so nothing of ours exists under it: the driver
answers Delete and Revoke on such an id with OK (the sidecar retries every error forever and keeps
the object's finalizer) and Grant with NOT_FOUND. ``read_*`` tell those ids apart without raising;
``parse_*`` raise for tools to which a foreign id is a mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cosi_driver.core.errors import InvalidArgument
from cosi_driver.core.validation import MAX_STRING_BYTES, byte_size

VERSION = "v2"
LEGACY_VERSION = "v1"
#: v1alpha2's limit on every id (characters of ``[A-Za-z0-9.-]``).
MAX_ID_CHARS = 2048
BACKEND_NAME = re.compile(r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?")
ID_CHARACTERS = re.compile(r"[A-Za-z0-9.-]*")

_LITERAL = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
_NIBBLES = "ABCDEFGHIJKLMNOP"
_NIBBLE_VALUE = {letter: value for value, letter in enumerate(_NIBBLES)}
_ESCAPED_RUN = re.compile(r"[A-P]+")
_OURS, _EXISTING, _ACCOUNT = "b", "e", "a"


def escape(name: str) -> str:
    """``name`` in the id alphabet; reversible with :func:`unescape` for every string."""
    out: list[str] = []
    for char in name:
        if char in _LITERAL:
            out.append(char)
        else:
            for byte in char.encode("utf-8", "surrogatepass"):
                out.append(_NIBBLES[byte >> 4] + _NIBBLES[byte & 15])
    return "".join(out)


def unescape(text: str) -> str | None:
    """The name :func:`escape` turned into ``text``, or None when no name escapes to it."""
    if not ID_CHARACTERS.fullmatch(text):
        return None
    pieces: list[str] = []
    position = 0
    for run in _ESCAPED_RUN.finditer(text):
        pieces.append(text[position : run.start()])
        letters = run.group()
        if len(letters) % 2:
            return None
        data = bytes(_NIBBLE_VALUE[letters[i]] << 4 | _NIBBLE_VALUE[letters[i + 1]] for i in range(0, len(letters), 2))
        try:
            pieces.append(data.decode("utf-8"))
        except UnicodeDecodeError:
            return None
        position = run.end()
    pieces.append(text[position:])
    name = "".join(pieces)
    # One id per name: an escaped literal character ("GB" for "a") would be a second spelling.
    return name if name and escape(name) == text else None


@dataclass(frozen=True)
class BucketRef:
    backend: str
    bucket: str
    existing: bool = False  # taken with GetExistingBucket: never deleted or purged by the driver

    def encode(self) -> str:
        kind = _EXISTING if self.existing else _OURS
        return f"{VERSION}.{self.backend}.{kind}.{escape(self.bucket)}"


@dataclass(frozen=True)
class AccountRef:
    backend: str
    account: str
    key_version: int = 0

    def encode(self) -> str:
        return f"{VERSION}.{self.backend}.{_ACCOUNT}{self.key_version}.{escape(self.account)}"


def check_fits(field: str, encoded: str, limit: int = MAX_STRING_BYTES) -> str:
    """Ids we mint come back in request fields of bounded size; refuse to mint longer ones.

    ``limit`` is in bytes of UTF-8, which for our alphabet equals characters: 128 where the id
    travels through v1alpha1, :data:`MAX_ID_CHARS` where only v1alpha2 sees it.
    """
    size = byte_size(encoded)
    if size > limit:
        raise InvalidArgument(
            f"{field} is too long: the id made from it ({encoded[:40]!r}...) would be {size} bytes, over the "
            f"{limit} bytes an id may have; shorten {field} (characters other than a-z, 0-9, '.' and '-' take "
            "two bytes per UTF-8 byte in an id)"
        )
    return encoded


def _split(value: str) -> tuple[str, str, str] | None:
    """(backend, kind, escaped name) of a ``v2`` id, or None."""
    parts = value.split(".", 3)
    if len(parts) != 4 or parts[0] != VERSION or not BACKEND_NAME.fullmatch(parts[1]) or len(value) > MAX_ID_CHARS:
        return None
    return parts[1], parts[2], parts[3]


def read_bucket_id(value: str) -> BucketRef | None:
    """The parts of a bucket id in one of our layouts, or None when this driver cannot have issued it."""
    if value.startswith(LEGACY_VERSION + "/"):
        legacy = value.split("/", 2)
        if len(legacy) != 3 or not BACKEND_NAME.fullmatch(legacy[1]) or not legacy[2]:
            return None
        return BucketRef(legacy[1], legacy[2])
    split = _split(value)
    if split is None or split[1] not in (_OURS, _EXISTING):
        return None
    name = unescape(split[2])
    return None if name is None else BucketRef(split[0], name, existing=split[1] == _EXISTING)


def read_account_id(value: str) -> AccountRef | None:
    """The parts of an account id in one of our layouts, or None when this driver cannot have issued it."""
    if value.startswith(LEGACY_VERSION + "/"):
        legacy = value.split("/", 3)
        if (
            len(legacy) != 4
            or not BACKEND_NAME.fullmatch(legacy[1])
            or not (legacy[2].isascii() and legacy[2].isdigit())
            or not legacy[3]
        ):
            return None
        return AccountRef(legacy[1], legacy[3], int(legacy[2]))
    split = _split(value)
    if split is None or not re.fullmatch(r"a(0|[1-9][0-9]{0,8})", split[1]):
        return None
    name = unescape(split[2])
    return None if name is None else AccountRef(split[0], name, int(split[1][1:]))


def parse_bucket_id(value: str, field: str = "bucket_id") -> BucketRef:
    """Like :func:`read_bucket_id`, for callers (tools, tests) to whom a foreign id is an error."""
    ref = read_bucket_id(value)
    if ref is None:
        raise InvalidArgument(
            f"{field} {value!r} is not a bucket id issued by this driver (expected {VERSION}.<backend>.b.<bucket>)"
        )
    return ref


def parse_account_id(value: str, field: str = "account_id") -> AccountRef:
    """Like :func:`read_account_id`, for callers (tools, tests) to whom a foreign id is an error."""
    ref = read_account_id(value)
    if ref is None:
        raise InvalidArgument(
            f"{field} {value!r} is not an account id issued by this driver "
            f"(expected {VERSION}.<backend>.a<key version>.<account>)"
        )
    return ref
