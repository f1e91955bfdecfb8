"""The default state store: one 0600 file per key in a 0700 directory."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from cosi_driver.core.files import atomic_write_json, ensure_private_dir, read_json, remove_file
from cosi_driver.core.options import PATH, option


@dataclass(frozen=True)
class FileStoreConfig:
    directory: Path = option(
        PATH,
        default=Path("/var/lib/cosi-driver/state"),
        doc="Directory of the state files; put it on a volume so state survives restarts.",
    )


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
