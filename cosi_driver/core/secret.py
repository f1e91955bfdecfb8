"""A string that refuses to show itself.

Credential values travel through the core wrapped in :class:`Secret`, so that an accidental
``repr``, f-string, log field or exception message shows ``'***'`` instead of the value. Only
the code that must hand the value to a storage system or to the wire calls :meth:`reveal`.
"""

from __future__ import annotations

from typing import Final

MASK: Final = "***"


class Secret:
    """An opaque secret value; equality and hashing work, printing does not reveal it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Secret values are not picklable")
