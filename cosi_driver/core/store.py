"""Where the driver keeps the little state it needs: ownership records and stored credentials.

Most of what the driver knows lives in the storage system itself. Two things cannot: the intent
to create a bucket (recorded *before* the storage call, so that a crash between the call and
the bucket's ownership mark never turns our own bucket into a "foreign" one), and secrets that a
storage system generates but will not show again (IAM secret keys), which a retried Grant must
return unchanged because the sidecar never rewrites a Secret.

A store maps short keys (``bucket/<backend>/<name>``) to small JSON documents. The file store is
the default; ``cosi_driver.core.stores`` adds a Kubernetes Secret store for in-cluster runs.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, unquote

from cosi_driver.core.files import atomic_write_json, ensure_private_dir, read_json, remove_file


@runtime_checkable
class StateStore(Protocol):
    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def put(self, key: str, document: dict[str, Any]) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def keys(self, prefix: str = "") -> list[str]: ...


class FileStateStore:
    """One 0600 file per key in a 0700 directory; writes are atomic and fsynced."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        ensure_private_dir(directory)

    def _path(self, key: str) -> Path:
        return self.directory / (quote(key, safe="") + ".json")

    async def get(self, key: str) -> dict[str, Any] | None:
        document = read_json(self._path(key))
        return document if isinstance(document, dict) else None

    async def put(self, key: str, document: dict[str, Any]) -> None:
        await asyncio.to_thread(atomic_write_json, self._path(key), document)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(remove_file, self._path(key))

    async def keys(self, prefix: str = "") -> list[str]:
        names = [unquote(name[: -len(".json")]) for name in os.listdir(self.directory) if name.endswith(".json")]
        return sorted(name for name in names if name.startswith(prefix))


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
