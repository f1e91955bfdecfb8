"""How the driver knows a bucket is its own.

Never adopt what the driver did not make. A bucket is ours when it carries our mark (written by
the backend into the storage system, e.g. as a tag) or when the state store holds our intent
record for it. The intent is recorded *before* the storage call, so a crash between creating the
bucket and marking it leaves a record that still claims it. Both name the parameters'
fingerprint, which is how a retried Create with the same parameters is told apart from a
conflicting one.

Two driver pods may share the store, so a record is written by compare-and-swap
(:func:`~cosi_driver.core.stores.base.update`): a write is retried on a concurrent change and
never lost, and :meth:`Ledger.claim` lets a caller record an intent only if nobody recorded
another one in the meantime.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cosi_driver.core.stores import StateStore
from cosi_driver.core.stores.base import update

_PREFIX = "cosi-driver"


@dataclass(frozen=True)
class Claim:
    """Who made a bucket and with which parameters."""

    driver: str
    fingerprint: str

    def encode(self) -> str:
        return f"{_PREFIX}/{self.driver}/{self.fingerprint}"

    @staticmethod
    def decode(mark: str | None) -> Claim | None:
        if not mark:
            return None
        parts = mark.split("/")
        if len(parts) != 3 or parts[0] != _PREFIX:
            return None
        return Claim(parts[1], parts[2])


@dataclass(frozen=True)
class Intent:
    """The record written before a bucket is created; also remembers its parameters."""

    fingerprint: str
    params: dict[str, str]


class Ledger:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    @staticmethod
    def _key(backend: str, bucket: str) -> str:
        return f"bucket/{backend}/{bucket}"

    @staticmethod
    def _intent(document: dict[str, Any] | None) -> Intent | None:
        if not document:
            return None
        return Intent(str(document["fingerprint"]), dict(document.get("params", {})))

    @staticmethod
    def _document(intent: Intent) -> dict[str, Any]:
        return {"fingerprint": intent.fingerprint, "params": intent.params, "recorded_at": int(time.time())}

    async def get(self, backend: str, bucket: str) -> Intent | None:
        return self._intent(await self._store.get(self._key(backend, bucket)))

    async def record(self, backend: str, bucket: str, intent: Intent) -> None:
        """Record ``intent`` whatever was recorded before; retried, never lost, on a concurrent write."""
        document = self._document(intent)
        await update(self._store, self._key(backend, bucket), lambda _current: document)

    async def claim(self, backend: str, bucket: str, intent: Intent) -> Intent:
        """Record ``intent`` unless another intent is recorded; the intent that stands afterwards.

        Two pods creating one bucket: the first record wins, and the other learns the winner's
        fingerprint (equal: the same request, go on; different: a conflicting Create).
        """
        document = self._document(intent)

        def decide(current: dict[str, Any] | None) -> dict[str, Any] | None:
            return document if current is None else None

        stood = self._intent(await update(self._store, self._key(backend, bucket), decide))
        return intent if stood is None else stood

    async def forget(self, backend: str, bucket: str) -> None:
        await self._store.delete(self._key(backend, bucket))
