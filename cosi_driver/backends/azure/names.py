"""Container names: COSI's bucket names where Azure accepts them, a deterministic stand-in where not.

Azure wants 3-63 characters of lowercase letters, digits and single hyphens, starting and ending
with a letter or digit. Every name the COSI controllers generate (``bucket-<uid>``, 43 characters;
``bc-<uid>``, 39) already fits and is used unchanged, so users find their container under the name
Kubernetes shows. Any other name (a v0.2.0-style ``<class name><uid>`` longer than 63 characters,
dots, capitals, non-ASCII) is mapped to ``<stem>-<digest>``: the stem is the name lowercased with
every other character turned into a hyphen, and the digest is the first 16 hex characters of the
SHA-256 of the original name. The mapping needs no state: the bucket id keeps the original name,
and the same rule recomputes the container from it on every later call. The SAS URL a grant
returns names the container, which is how a consumer learns a mapped name.
"""

from __future__ import annotations

import hashlib
import re

MIN_LENGTH, MAX_LENGTH = 3, 63
DIGEST_LENGTH = 16
_VALID = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")


def is_container_name(name: str) -> bool:
    """True when Azure accepts ``name`` as a container name as it is."""
    return bool(_VALID.fullmatch(name))


def container_name(name: str) -> str:
    """The container that holds COSI bucket ``name`` (the name itself when Azure accepts it)."""
    if is_container_name(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:DIGEST_LENGTH]
    stem = _NOT_ALLOWED.sub("-", name.lower()).strip("-")[: MAX_LENGTH - DIGEST_LENGTH - 1].rstrip("-")
    return f"{stem}-{digest}" if stem else digest
