"""Short leases in the driver's state store: mutual exclusion between driver pods, not just tasks.

Why a backend needs them: some storage offers only a read-modify-write for a shared document
(RGW's bucket policy is replaced wholesale by PutBucketPolicy, with no version to write against),
so two writers that read the same version lose one of their changes. The core's keyed locks
exclude the tasks of one process only; during a leader handover the old and the new leader's
drivers can both be working. Both pods share the state store, and its create-if-absent and
compare-and-swap are enough to build a lease on:

* acquire: create ``lease/<scope>/<name>`` holding a random token and an expiry; when another
  holder's lease is there, wait (with backoff) until it is released or has expired, and take an
  expired one over with a compare-and-swap, so two waiters never both win it;
* release: delete the record only while it is still ours and far from expiry; closer to expiry
  (where another pod may be taking it over between our read and our delete) mark it released
  with a compare-and-swap instead, leaving a small record the next holder reuses.

A lease expires so that a pod that dies while holding one blocks the others for at most its
time to live. The expiry is wall-clock time, compared across pods: clocks synchronised to well
within the time to live are assumed. Work that can outlast its lease must check its own result
afterwards (the Ceph policy update verifies after writing).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from cosi_driver.core.errors import Unavailable
from cosi_driver.core.stores.base import StateStore

PREFIX = "lease/"
#: Time to live of a lease held over a whole Grant or Revoke of one account (several requests,
#: and for RGW a policy lease per bucket inside it).
ACCOUNT_LEASE_SECONDS = 60.0
_FIRST_PAUSE = 0.02
_LONGEST_PAUSE = 0.5


def backoff(attempt: int, first: float = _FIRST_PAUSE, longest: float = _LONGEST_PAUSE) -> float:
    """Seconds to pause before retry ``attempt`` (from 1): doubling, capped, with jitter so that
    two pods retrying the same thing drift apart."""
    return min(first * 2.0 ** (attempt - 1), longest) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


def lease_key(scope: str, name: str) -> str:
    return f"{PREFIX}{scope}/{name}"


def _expires(document: dict[str, Any]) -> float:
    value = document.get("expires")
    return float(value) if isinstance(value, int | float) else 0.0


class Leases:
    """Named leases of one kind (``scope``) in one store.

    ``ttl``: how long a lease holds without its holder; the work done under it must normally
    finish well within it. ``wait``: how long to wait for a busy lease before UNAVAILABLE (the
    caller's own time limit may end the wait sooner).
    """

    def __init__(
        self,
        store: StateStore,
        scope: str,
        *,
        ttl: float = 30.0,
        wait: float = 30.0,
        clock: Callable[[], float] = time.time,
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.scope = scope
        self.ttl = ttl
        self.wait = wait
        self._clock = clock
        self._pause = pause

    @contextlib.asynccontextmanager
    async def hold(self, name: str, describe: str) -> AsyncIterator[None]:
        """Hold the lease on ``name`` for the body; ``describe`` names the guarded thing in errors."""
        key = lease_key(self.scope, name)
        token = uuid.uuid4().hex
        await self._acquire(key, token, describe)
        try:
            yield
        finally:
            await self._release(key, token)

    def _document(self, token: str) -> dict[str, Any]:
        return {"holder": token, "expires": self._clock() + self.ttl}

    async def _acquire(self, key: str, token: str, describe: str) -> None:
        give_up = time.monotonic() + self.wait
        attempt = 0
        while True:
            attempt += 1
            created = await self.store.create(key, self._document(token))
            if created.won:
                return
            held = created.entry
            # Expired or released: take it over only if nobody else did since our read.
            expired = _expires(held.document) <= self._clock()
            if expired and await self.store.replace(key, self._document(token), held.version) is not None:
                return
            if time.monotonic() >= give_up:
                raise Unavailable(
                    f"{describe} is being changed by another driver instance (it has held the lease for "
                    f"longer than {self.wait:g}s); retry"
                )
            await self._pause(backoff(attempt))

    async def _release(self, key: str, token: str) -> None:
        current = await self.store.read(key)
        if current is None or current.document.get("holder") != token:
            return  # expired and taken over, or gone: nothing of ours to release
        if _expires(current.document) - self._clock() > self.ttl / 2:
            await self.store.delete(key)
        else:
            await self.store.replace(key, {"holder": "", "expires": 0}, current.version)
