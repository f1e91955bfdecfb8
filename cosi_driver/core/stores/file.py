"""The default state store: one 0600 file per key in a 0700 directory.

A file is named from a digest of its key, so every key fits a file name (255 bytes on the common
filesystems) whatever its length or characters; the key is kept inside the file for ``keys()``.
Earlier releases named files by the percent-encoded key (``bucket%2Ffs%2Fname.json``) and
stored the bare document. Those files stay readable: a read falls back to the old name, a write
moves the key to its digest name and removes the old file, a delete removes both, and
``keys()`` lists keys of either kind once.

Writes (create, replace, put, delete) hold an exclusive ``flock`` on one of
:data:`LOCK_STRIPES` small lock files (``.lock-NN``, chosen by the key's digest), which excludes
other threads, other store objects and other processes sharing the directory (a second driver on
the same volume, a CLI run): a compare-and-swap is a read and a write with nobody in between,
while writes of keys in other stripes (and their fsyncs) run side by side. Reads take
no lock; every write is an atomic rename or link, so a reader sees a whole file. A document's
version is a digest of the file's bytes. Disk failures (full, read-only, corrupt JSON) become
UNAVAILABLE naming the directory, never INTERNAL.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from cosi_driver.core.errors import Unavailable
from cosi_driver.core.files import (
    NAME_MAX,
    atomic_write_bytes,
    create_bytes,
    ensure_private_dir,
    remove_file,
)
from cosi_driver.core.options import PATH, option
from cosi_driver.core.stores.base import Created, Entry, Version

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


#: Writers of keys in one stripe wait for each other; 64 lets a burst of concurrent Creates write
#: (and fsync) side by side. The lock files are empty and never listed as keys.
LOCK_STRIPES = 64
LOCK_PREFIX = ".lock-"


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
    """One 0600 file per key in a 0700 directory; writes are atomic, fsynced and serialised by a lock."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        ensure_private_dir(directory)

    def _legacy_path(self, key: str) -> Path | None:
        name = legacy_name(key)
        return None if name is None else self.directory / name

    @contextlib.contextmanager
    def _disk(self, doing: str) -> Iterator[None]:
        """Disk trouble as UNAVAILABLE: the driver cannot keep its records, and says where and why."""
        try:
            yield
        except OSError as error:
            raise Unavailable(
                f"the driver's state directory {str(self.directory)!r} could not be {doing}: "
                f"{error.strerror or type(error).__name__}"
            ) from None

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        """The key's stripe lock; flock belongs to the open file, so threads exclude each other too."""
        stripe = int(digest_name(key)[2:10], 16) % LOCK_STRIPES
        fd = os.open(self.directory / f"{LOCK_PREFIX}{stripe:02d}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the last descriptor releases the lock

    def _load(self, path: Path) -> tuple[Any, bytes] | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return json.loads(raw), raw
        except ValueError:
            raise Unavailable(
                f"the driver's state file {path.name!r} in {str(self.directory)!r} is not valid JSON; "
                "restore it from a backup or move it aside"
            ) from None

    def _read(self, key: str) -> Entry | None:
        loaded = self._load(self.directory / digest_name(key))
        if loaded is not None:
            wrapped, raw = loaded
            if isinstance(wrapped, dict) and wrapped.get("key") == key and isinstance(wrapped.get("document"), dict):
                return Entry(dict(wrapped["document"]), _version(raw))
        legacy = self._legacy_path(key)
        loaded = self._load(legacy) if legacy is not None else None
        if loaded is None or not isinstance(loaded[0], dict):
            return None
        return Entry(loaded[0], _version(loaded[1]))

    def _write(self, key: str, document: dict[str, Any]) -> Entry:
        raw = _wrap(key, document)
        atomic_write_bytes(self.directory / digest_name(key), raw)
        legacy = self._legacy_path(key)
        if legacy is not None:  # removed only after the new file is durable: a crash loses nothing
            remove_file(legacy)
        return Entry(dict(document), _version(raw))

    async def get(self, key: str) -> dict[str, Any] | None:
        entry = await self.read(key)
        return None if entry is None else entry.document

    async def read(self, key: str) -> Entry | None:
        # A read is one small local file and takes no lock: done in the event loop, as a thread hop
        # would cost more than the read (measured: a Create+Delete pair makes two of them).
        return self._read_guarded(key)

    def _read_guarded(self, key: str) -> Entry | None:
        with self._disk("read"):
            return self._read(key)

    async def create(self, key: str, document: dict[str, Any]) -> Created:
        return await asyncio.to_thread(self._create, key, document)

    def _create(self, key: str, document: dict[str, Any]) -> Created:
        with self._disk("written"), self._locked(key):
            existing = self._read(key)
            if existing is not None:
                return Created(False, existing)
            raw = _wrap(key, document)
            if not create_bytes(self.directory / digest_name(key), raw):
                # A file under the name that is not this key's document (another writer that
                # takes no lock): never overwritten by a create.
                existing = self._read(key)
                if existing is None:
                    raise Unavailable(
                        f"the driver's state file {digest_name(key)!r} in {str(self.directory)!r} "
                        "holds no document for its key; move it aside"
                    )
                return Created(False, existing)
            return Created(True, Entry(dict(document), _version(raw)))

    async def replace(self, key: str, document: dict[str, Any], version: Version) -> Entry | None:
        return await asyncio.to_thread(self._replace, key, document, version)

    def _replace(self, key: str, document: dict[str, Any], version: Version) -> Entry | None:
        with self._disk("written"), self._locked(key):
            existing = self._read(key)
            if existing is None or existing.version != version:
                return None
            return self._write(key, document)

    async def put(self, key: str, document: dict[str, Any]) -> None:
        await asyncio.to_thread(self._put, key, document)

    def _put(self, key: str, document: dict[str, Any]) -> None:
        with self._disk("written"), self._locked(key):
            self._write(key, document)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    def _delete(self, key: str) -> None:
        with self._disk("written"), self._locked(key):
            remove_file(self.directory / digest_name(key))
            legacy = self._legacy_path(key)
            if legacy is not None:
                remove_file(legacy)

    async def keys(self, prefix: str = "") -> list[str]:
        return await asyncio.to_thread(self._keys, prefix)

    def _keys(self, prefix: str) -> list[str]:
        found: set[str] = set()
        with self._disk("listed"):
            for name in os.listdir(self.directory):
                if not name.endswith(SUFFIX):
                    continue
                if _DIGEST_NAME.fullmatch(name):
                    loaded = self._load(self.directory / name)
                    if loaded is not None and isinstance(loaded[0], dict) and isinstance(loaded[0].get("key"), str):
                        found.add(loaded[0]["key"])
                else:
                    found.add(unquote(name[: -len(SUFFIX)]))
        return sorted(key for key in found if key.startswith(prefix))


def _wrap(key: str, document: dict[str, Any]) -> bytes:
    """The bytes of a key's file; its version is their digest, so one layout for every write."""
    return json.dumps({"format": _FORMAT, "key": key, "document": document}, sort_keys=True, indent=1).encode()


def _version(raw: bytes) -> Version:
    return Version(hashlib.sha256(raw).hexdigest()[:32])
