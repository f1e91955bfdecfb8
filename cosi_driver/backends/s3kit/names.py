"""S3 bucket naming rules, checked before any storage call.

The COSI bucket name is the storage bucket's name (consumers learn it from the sidecar's Secret),
so a name S3 cannot carry must be refused with the rule it breaks rather than renamed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from cosi_driver.core.errors import InvalidArgument

_ALLOWED = re.compile(r"[a-z0-9.-]+")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def _is_ipv4(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


# (broken when, the rule) in the order a user would fix them.
_RULES: tuple[tuple[Callable[[str], bool], Callable[[str], str]], ...] = (
    (lambda n: not 3 <= len(n) <= 63, lambda n: f"it must be 3 to 63 characters long (it has {len(n)})"),
    (lambda n: not _ALLOWED.fullmatch(n), lambda n: "it may contain only lowercase letters, digits, '.' and '-'"),
    (
        lambda n: not (n[0].isalnum() and n[-1].isalnum()),
        lambda n: "it must begin and end with a lowercase letter or a digit",
    ),
    (lambda n: ".." in n, lambda n: "it must not contain two adjacent periods"),
    (lambda n: ".-" in n or "-." in n, lambda n: "a period must not be next to a hyphen"),
    (_is_ipv4, lambda n: "it must not be formatted as an IP address"),
    (
        lambda n: n.startswith(_RESERVED_PREFIXES),
        lambda n: f"the prefix {next(p for p in _RESERVED_PREFIXES if n.startswith(p))!r} is reserved",
    ),
    (
        lambda n: n.endswith(_RESERVED_SUFFIXES),
        lambda n: f"the suffix {next(p for p in _RESERVED_SUFFIXES if n.endswith(p))!r} is reserved",
    ),
)


def bucket_name_problem(name: str) -> str | None:
    """The S3 rule ``name`` breaks, or None when it is a valid bucket name."""
    for broken, rule in _RULES:
        if broken(name):
            return rule(name)
    return None


def check_bucket_name(name: str, field: str = "name") -> str:
    problem = bucket_name_problem(name)
    if problem is not None:
        raise InvalidArgument(f"{field} {name[:80]!r} is not a valid S3 bucket name: {problem}")
    return name
