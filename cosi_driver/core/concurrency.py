"""De-duplication of identical calls and serialisation of calls on one resource.

The sidecar's own retry and a duplicated event can deliver the same Create or Grant while the
first is still running. :class:`SingleFlight` runs one operation per key and hands its result to
every caller; the operation keeps running if a caller goes away, so a retry can pick it up.
:class:`KeyedLocks` serialises different calls on the same resource (a Create racing a Delete of
one bucket) while unrelated resources proceed in parallel.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

T = TypeVar("T")


class SingleFlight:
    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._running)

    async def do(self, key: Hashable, operation: Callable[[], Awaitable[T]]) -> T:
        future = self._running.get(key)
        if future is None:
            future = asyncio.ensure_future(operation())
            self._running[key] = future
            future.add_done_callback(lambda done: self._forget(key, done))
        # shield: a cancelled caller (client gone) must not cancel the shared operation.
        result: T = await asyncio.shield(future)
        return result

    def _forget(self, key: Hashable, done: asyncio.Future[Any]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # mark retrieved: every waiter may already have gone


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
