"""A state store that forgets everything on restart: for tests and throwaway runs only."""

from __future__ import annotations

from typing import Any


class MemoryStateStore:
    """A store that forgets everything on restart: for tests and throwaway runs only."""

    def __init__(self) -> None:
        self._documents: dict[str, dict[str, Any]] = {}

    async def get(self, key: str) -> dict[str, Any] | None:
        document = self._documents.get(key)
        return dict(document) if document is not None else None

    async def put(self, key: str, document: dict[str, Any]) -> None:
        self._documents[key] = dict(document)

    async def delete(self, key: str) -> None:
        self._documents.pop(key, None)

    async def keys(self, prefix: str = "") -> list[str]:
        return sorted(key for key in self._documents if key.startswith(prefix))
