"""A state store that forgets everything on restart: for tests and throwaway runs only."""

from __future__ import annotations

import itertools
from typing import Any

from cosi_driver.core.stores.base import Created, Entry, Version


class MemoryStateStore:
    """A store that forgets everything on restart: for tests and throwaway runs only.

    Its methods never await, so each one is atomic on the event loop: that alone makes
    ``create`` and ``replace`` race-free among the tasks of one process.
    """

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._writes = itertools.count(1)

    def _store(self, key: str, document: dict[str, Any]) -> Entry:
        entry = Entry(dict(document), Version(str(next(self._writes))))
        self._entries[key] = entry
        return Entry(dict(document), entry.version)

    async def get(self, key: str) -> dict[str, Any] | None:
        entry = await self.read(key)
        return None if entry is None else entry.document

    async def read(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        return None if entry is None else Entry(dict(entry.document), entry.version)

    async def create(self, key: str, document: dict[str, Any]) -> Created:
        existing = await self.read(key)
        if existing is not None:
            return Created(False, existing)
        return Created(True, self._store(key, document))

    async def replace(self, key: str, document: dict[str, Any], version: Version) -> Entry | None:
        existing = self._entries.get(key)
        if existing is None or existing.version != version:
            return None
        return self._store(key, document)

    async def put(self, key: str, document: dict[str, Any]) -> None:
        self._store(key, document)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def keys(self, prefix: str = "") -> list[str]:
        return sorted(key for key in self._entries if key.startswith(prefix))
