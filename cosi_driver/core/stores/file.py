"""The default state store: one 0600 file per key in a 0700 directory.

A file is named from a digest of its key, so every key fits a file name (255 bytes on the common
filesystems) whatever its length or characters; the key is kept inside the file for ``keys()``.
Earlier releases named files by the percent-encoded key (``bucket%2Ffs%2Fname.json``) and
stored the bare document. Those files stay readable: a read falls back to the old name, a write
moves the key to its digest name and removes the old file, a delete removes both, and
``keys()`` lists keys of either kind once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from cosi_driver.core.files import NAME_MAX, atomic_write_json, ensure_private_dir, read_json, remove_file
from cosi_driver.core.options import PATH, option

SUFFIX = ".json"
_DIGEST_PREFIX = "k-"
_DIGEST_NAME = re.compile(r"k-[0-9a-f]{64}\.json")
_FORMAT = 2  # wrapped documents: {"format": 2, "key": ..., "document": {...}}


@dataclass(frozen=True)
class FileStoreConfig:
    directory: Path = option(
        PATH,
        default=Path("/var/lib/cosi-driver/state"),
        doc="Directory of the state files; put it on a volume so state survives restarts.",
    )


def digest_name(key: str) -> str:
    """The file name of ``key``: fixed length, ASCII, never a name the old scheme produced.

    Old names are percent-encoded keys, and every key the driver writes holds a ``/``, so an old
    name always contains ``%2F`` and never matches ``k-<64 hex>.json``.
    """
    return _DIGEST_PREFIX + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest() + SUFFIX


def legacy_name(key: str) -> str | None:
    """The file name the percent-encoding scheme gave ``key``, or None where it could not exist."""
    name = quote(key, safe="") + SUFFIX
    return name if len(name.encode()) <= NAME_MAX and not _DIGEST_NAME.fullmatch(name) else None


class FileStateStore:
    """One 0600 file per key in a 0700 directory; writes are atomic and fsynced."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        ensure_private_dir(directory)

    def _legacy_path(self, key: str) -> Path | None:
        name = legacy_name(key)
        return None if name is None else self.directory / name

    async def get(self, key: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._get, key)

    def _get(self, key: str) -> dict[str, Any] | None:
        wrapped = read_json(self.directory / digest_name(key))
        if isinstance(wrapped, dict) and wrapped.get("key") == key and isinstance(wrapped.get("document"), dict):
            return dict(wrapped["document"])
        legacy = self._legacy_path(key)
        document = read_json(legacy) if legacy is not None else None
        return document if isinstance(document, dict) else None

    async def put(self, key: str, document: dict[str, Any]) -> None:
        await asyncio.to_thread(self._put, key, document)

    def _put(self, key: str, document: dict[str, Any]) -> None:
        atomic_write_json(self.directory / digest_name(key), {"format": _FORMAT, "key": key, "document": document})
        legacy = self._legacy_path(key)
        if legacy is not None:  # written only after the new file is durable: a crash loses nothing
            remove_file(legacy)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    def _delete(self, key: str) -> None:
        remove_file(self.directory / digest_name(key))
        legacy = self._legacy_path(key)
        if legacy is not None:
            remove_file(legacy)

    async def keys(self, prefix: str = "") -> list[str]:
        return await asyncio.to_thread(self._keys, prefix)

    def _keys(self, prefix: str) -> list[str]:
        found: set[str] = set()
        for name in os.listdir(self.directory):
            if not name.endswith(SUFFIX):
                continue
            if _DIGEST_NAME.fullmatch(name):
                wrapped = read_json(self.directory / name)
                if isinstance(wrapped, dict) and isinstance(wrapped.get("key"), str):
                    found.add(wrapped["key"])
            else:
                found.add(unquote(name[: -len(SUFFIX)]))
        return sorted(key for key in found if key.startswith(prefix))
