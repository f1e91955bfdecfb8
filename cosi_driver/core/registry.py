"""Find backend types through the ``cosi_driver.backends`` entry-point group.

Built-in backends are registered in our own ``pyproject.toml`` exactly as a third-party package
registers its own, so there is one mechanism. Listing names reads package metadata only; a
backend's module is imported when it is first asked for, so the driver never imports a storage
SDK it was not configured to use.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from cosi_driver.core.backend import BackendType

GROUP = "cosi_driver.backends"


class UnknownBackendType(LookupError):
    def __init__(self, type_name: str, known: list[str]) -> None:
        super().__init__(f"no backend type {type_name!r} is installed; installed types: {', '.join(known) or 'none'}")
        self.type_name = type_name
        self.known = known


class BrokenBackendType(ImportError):
    pass


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=GROUP):
        found.setdefault(point.name, point)  # first one wins if two distributions claim a name
    return found


def available() -> list[str]:
    """Names of every installed backend type, without importing any of them."""
    return sorted(_entry_points())


@functools.cache
def load(type_name: str) -> BackendType[Any, Any, Any]:
    point = _entry_points().get(type_name)
    if point is None:
        raise UnknownBackendType(type_name, available())
    try:
        loaded = point.load()
    except ImportError as error:
        raise BrokenBackendType(
            f"backend type {type_name!r} ({point.value}) could not be imported: {error}. "
            f"Install its extra, e.g. pip install 'cosi-driver[{type_name}]'"
        ) from error
    if not isinstance(loaded, BackendType):
        raise BrokenBackendType(f"entry point {type_name!r} ({point.value}) is not a cosi_driver BackendType")
    if loaded.type_name != type_name:
        raise BrokenBackendType(
            f"entry point {type_name!r} ({point.value}) declares type_name {loaded.type_name!r}; they must match"
        )
    return loaded


def refresh() -> None:
    """Forget what was discovered (after installing a package at run time, in tests)."""
    _entry_points.cache_clear()
    load.cache_clear()
