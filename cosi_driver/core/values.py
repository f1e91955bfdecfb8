"""Parsers that turn configuration and parameter strings into typed values.

Shared by every declared value kind (``core.kinds``): BucketClass/BucketAccessClass parameters,
backend settings and the driver's own process settings. Each parser raises :class:`ValueProblem`
with a sentence that says what is wrong and which form is accepted; the caller adds *where* (a
parameter, a config path or a variable) and, for configuration, the fix (:class:`ConfigProblem`).
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation


class ValueProblem(ValueError):
    """A value has the wrong form. The text completes "<where> <text>"."""


class ConfigProblem(ValueError):
    """A configuration error: where it is, what is wrong, and how to fix it."""

    def __init__(self, where: str, problem: str, fix: str = "") -> None:
        self.where, self.problem, self.fix = where, problem, fix
        text = f"{where}: {problem}"
        super().__init__(f"{text}. Fix: {fix}" if fix else text)


_TRUE = frozenset({"true", "yes", "on", "1", "enabled"})
_FALSE = frozenset({"false", "no", "off", "0", "disabled"})


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueProblem(f"must be true or false, not {text!r}")


def parse_int(text: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    stripped = text.strip()
    if not re.fullmatch(r"[+-]?[0-9]+", stripped):
        raise ValueProblem(f"must be a whole number, not {text!r}")
    value = int(stripped)
    if minimum is not None and value < minimum:
        raise ValueProblem(f"must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise ValueProblem(f"must be at most {maximum}, not {value}")
    return value


def parse_float(text: str, *, minimum: float | None = None) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueProblem(f"must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise ValueProblem(f"must be a finite number, not {text!r}")
    if minimum is not None and value < minimum:
        raise ValueProblem(f"must be at least {minimum:g}, not {value:g}")
    return value


# Kubernetes resource.Quantity suffixes (k8s.io/apimachinery/pkg/api/resource).
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?P<suffix>[A-Za-z]*|[eE][+-]?[0-9]+)")
QUANTITY_FORM = (
    "a Kubernetes quantity such as 500Mi, 10Gi or 1T (binary Ki/Mi/Gi/Ti/Pi/Ei, decimal k/M/G/T/P/E, or plain bytes)"
)


def parse_quantity(text: str) -> int:
    """Parse a Kubernetes quantity into a whole number of bytes, rounding up as Kubernetes does."""
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise ValueProblem(f"must be {QUANTITY_FORM}, not {text!r}")
    suffix = match["suffix"]
    try:
        number = Decimal(match["number"])
    except InvalidOperation:  # pragma: no cover - the pattern only admits valid decimals
        raise ValueProblem(f"must be {QUANTITY_FORM}, not {text!r}") from None
    if suffix in _BINARY:
        scaled = number * _BINARY[suffix]
    elif suffix in _DECIMAL:
        scaled = number * _DECIMAL[suffix]
    elif suffix[:1] in ("e", "E") and len(suffix) > 1:
        exponent = int(suffix[1:])
        if abs(exponent) > 30:
            raise ValueProblem(f"exponent is out of range in {text!r}")
        scaled = number.scaleb(exponent)
    else:
        raise ValueProblem(f"has an unknown unit {suffix!r} in {text!r}; use {QUANTITY_FORM}")
    if scaled < 0:
        raise ValueProblem(f"must not be negative, not {text!r}")
    return int(scaled.to_integral_value(rounding=ROUND_CEILING))


def parse_octal_mode(text: str) -> int:
    stripped = text.strip()
    if not re.fullmatch(r"0?[0-7]{3,4}", stripped) and not re.fullmatch(r"0o[0-7]{3,4}", stripped):
        raise ValueProblem(f"must be an octal file mode such as 0660, not {text!r}")
    value = int(stripped.removeprefix("0o"), 8)
    if value > 0o777:
        raise ValueProblem(f"must not set setuid, setgid or sticky bits, not {text!r}")
    return value


# v1alpha2's rule for driver names, stricter than v1alpha1's, so one name suits both sidecars.
_DNS_LABEL = re.compile(r"[a-z]([a-z0-9-]*[a-z0-9])?")


def parse_driver_name(text: str) -> str:
    name = text.strip()
    if not name:
        raise ValueProblem("must not be empty")
    if len(name) > 63:
        raise ValueProblem(f"must be at most 63 characters, not {len(name)} ({name!r})")
    for label in name.split("."):
        if not _DNS_LABEL.fullmatch(label):
            raise ValueProblem(
                f"must be dot-separated lowercase DNS labels, each starting with a letter and "
                f"ending with a letter or digit (e.g. objectstorage.example.com), not {name!r}"
            )
    return name
