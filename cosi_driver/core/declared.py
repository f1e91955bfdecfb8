"""Reading the metadata that ``param()`` and ``option()`` attach to dataclass fields.

Parameter schemas and backend config schemas are both plain dataclasses whose fields carry a
metadata entry; this turns a class into the tuple of its declarations once and caches it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_CACHE: dict[tuple[type[Any], str], tuple[Any, ...]] = {}


def declared_fields(
    cls: type[Any], key: str, build: Callable[[dataclasses.Field[Any], Mapping[str, Any]], T], declarer: str
) -> tuple[T, ...]:
    """``build(field, metadata)`` for every field of ``cls``, in order; every field must be declared."""
    cached = _CACHE.get((cls, key))
    if cached is None:
        out = []
        for f in dataclasses.fields(cls):
            meta = f.metadata.get(key)
            if meta is None:
                raise TypeError(f"{cls.__name__}.{f.name} is not declared with {declarer}")
            out.append(build(f, meta))
        cached = _CACHE[(cls, key)] = tuple(out)
    return cached
