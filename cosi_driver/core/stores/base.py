"""Where the driver keeps the little state it needs: ownership records and stored credentials.

Most of what the driver knows lives in the storage system itself. Two things cannot: the intent
to create a bucket (recorded *before* the storage call, so that a crash between the call and
the bucket's ownership mark never turns our own bucket into a "foreign" one), and secrets that a
storage system generates but will not show again (IAM secret keys), which a retried Grant must
return unchanged because the sidecar never rewrites a Secret.

A store maps short keys (``bucket/<backend>/<name>``) to small JSON documents. Two driver pods
may share one store, so a plain write is not enough: ``create`` lets the first writer of a key
win and tells the others what it stored, and ``replace`` writes only if the document is still
the version the caller read. Versions are opaque tokens: a caller only hands back what ``read``
or ``create`` gave it. ``update`` builds a bounded read-modify-write loop on the two.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NewType, Protocol, runtime_checkable

from cosi_driver.core.errors import Unavailable

Version = NewType("Version", str)
"""Which write of a key a document came from; meaningful only to the store that issued it."""

ATTEMPTS = 8
"""How often a read-modify-write is retried when other writers keep changing the key under it."""


@dataclass(frozen=True)
class Entry:
    """A stored document and the version it was read at."""

    document: dict[str, Any]
    version: Version


@dataclass(frozen=True)
class Created:
    """The outcome of ``create``: ``won`` when our document was stored, else the winner's entry."""

    won: bool
    entry: Entry


@runtime_checkable
class StateStore(Protocol):
    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def read(self, key: str) -> Entry | None:
        """The document and its version, or None when the key is absent."""
        ...

    async def create(self, key: str, document: dict[str, Any]) -> Created:
        """Store ``document`` only if ``key`` is absent; the first writer wins, the others learn its entry."""
        ...

    async def replace(self, key: str, document: dict[str, Any], version: Version) -> Entry | None:
        """Store ``document`` only if ``key`` is still at ``version``; None when it changed or is gone."""
        ...

    async def put(self, key: str, document: dict[str, Any]) -> None:
        """Store ``document`` whatever is there (the last writer wins)."""
        ...

    async def delete(self, key: str) -> None: ...

    async def keys(self, prefix: str = "") -> list[str]: ...


Change = Callable[[dict[str, Any] | None], dict[str, Any] | None]
"""Given the current document (None when absent), the document wanted, or None to leave it be."""


async def update(store: StateStore, key: str, change: Change, attempts: int = ATTEMPTS) -> dict[str, Any] | None:
    """Apply ``change`` to ``key`` with compare-and-swap until it sticks; the document stored at the end.

    The first attempt assumes the key is absent and creates it, so the common case (a new record)
    costs one write; a lost race yields the winner's entry to decide on. A change is never
    written over a document it did not see. When other writers win ``attempts`` times in a row,
    the caller gets UNAVAILABLE (the sidecar retries) rather than a silently dropped write.
    """
    current: Entry | None = None
    known = False  # whether ``current`` was read, or only assumed absent
    for _ in range(attempts):
        wanted = change(None if current is None else current.document)
        if wanted is None:
            if known or current is not None:
                return None if current is None else current.document
            current, known = await store.read(key), True
            continue
        if current is not None and wanted == current.document:
            return wanted
        if current is None:
            created = await store.create(key, wanted)
            if created.won:
                return wanted
            current, known = created.entry, True
        elif await store.replace(key, wanted, current.version) is not None:
            return wanted
        else:
            current, known = await store.read(key), True
    raise contention(key, attempts)


def contention(key: str, attempts: int) -> Unavailable:
    """What a caller hears when other writers won every one of its attempts: retry later."""
    return Unavailable(
        f"the state record {key!r} kept changing under concurrent writers ({attempts} attempts); "
        "another driver instance is writing it, retry"
    )
