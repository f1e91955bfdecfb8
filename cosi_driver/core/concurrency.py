"""De-duplication of identical calls and serialisation of calls on one resource.

The sidecar's own retry and a duplicated event can deliver the same Create or Grant while the
first is still running. :class:`SingleFlight` runs one operation per key and hands its result to
every caller; the operation keeps running if a caller goes away, so a retry can pick it up, and
:meth:`SingleFlight.drain` lets the process wait for such orphans before it closes what they use.

:class:`KeyedLocks` serialises different calls on the same resource while unrelated resources
proceed in parallel. Each key is a reader-writer lock: Grants and Revokes on one bucket may run
together (shared), but a Create or Delete of that bucket runs alone (exclusive). Waiters are
served first come, first served, so a Delete is not starved by a stream of Grants. An operation
needing several keys takes them with :meth:`KeyedLocks.hold_all`, which always takes keys in one
global order: two operations can then never each hold a key the other waits for.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

T = TypeVar("T")
log = structlog.get_logger("cosi_driver.core")

#: How long :meth:`SingleFlight.drain` waits for cancelled operations to unwind.
UNWIND_SECONDS = 5.0


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

    async def drain(self, grace: float) -> int:
        """Let running operations finish within ``grace`` seconds, cancel the rest; how many were cancelled.

        Returns only when every operation has ended (or refused to unwind within
        :data:`UNWIND_SECONDS` of its cancellation), so whatever they use may be closed afterwards.
        """
        running = set(self._running.values())
        if not running:
            return 0
        _, late = await asyncio.wait(running, timeout=max(grace, 0.0))
        for future in late:
            future.cancel()
        if late:
            _, stuck = await asyncio.wait(late, timeout=UNWIND_SECONDS)
            if stuck:
                log.warning("operations did not unwind after cancellation", count=len(stuck))
        return len(late)


@dataclass
class _Waiter:
    exclusive: bool
    granted: asyncio.Future[None]


@dataclass
class _KeyState:
    """One key's holders and its queue of waiters, oldest first."""

    readers: int = 0
    writer: bool = False
    queue: deque[_Waiter] = field(default_factory=deque)

    def admits(self, exclusive: bool) -> bool:
        return not self.writer and (self.readers == 0 or not exclusive)

    def take(self, exclusive: bool) -> None:
        if exclusive:
            self.writer = True
        else:
            self.readers += 1

    def give_back(self, exclusive: bool) -> None:
        if exclusive:
            self.writer = False
        else:
            self.readers -= 1

    @property
    def idle(self) -> bool:
        return not self.writer and self.readers == 0 and not self.queue


class KeyedLocks:
    """A reader-writer lock per key, made on first use and dropped when nobody holds or waits."""

    def __init__(self) -> None:
        self._keys: dict[Hashable, _KeyState] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def waiting(self, key: Hashable) -> int:
        """How many callers queue for ``key`` (what a stuck shutdown or a test wants to see)."""
        state = self._keys.get(key)
        return 0 if state is None else sum(not waiter.granted.done() for waiter in state.queue)

    def hold(self, key: Hashable) -> AbstractAsyncContextManager[None]:
        """Hold ``key`` alone: no other holder, shared or exclusive, meanwhile."""
        return self._held(key, exclusive=True)

    def hold_shared(self, key: Hashable) -> AbstractAsyncContextManager[None]:
        """Hold ``key`` together with other shared holders, never with an exclusive one."""
        return self._held(key, exclusive=False)

    @asynccontextmanager
    async def _held(self, key: Hashable, *, exclusive: bool) -> AsyncIterator[None]:
        await self._acquire(key, exclusive=exclusive)
        try:
            yield
        finally:
            self._release(key, exclusive=exclusive)

    @asynccontextmanager
    async def hold_all(
        self, *, shared: Iterable[Hashable] = (), exclusive: Iterable[Hashable] = ()
    ) -> AsyncIterator[None]:
        """Hold several keys at once, taken in :func:`lock_order`; a key in both sets is held exclusively."""
        modes = dict.fromkeys(shared, False)
        modes.update(dict.fromkeys(exclusive, True))
        async with AsyncExitStack() as stack:
            for key in sorted(modes, key=lock_order):
                await stack.enter_async_context(self.hold(key) if modes[key] else self.hold_shared(key))
            yield

    async def _acquire(self, key: Hashable, *, exclusive: bool) -> None:
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState()
        if not state.queue and state.admits(exclusive):
            state.take(exclusive)
            return
        waiter = _Waiter(exclusive, asyncio.get_running_loop().create_future())
        state.queue.append(waiter)
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter.granted.done() and not waiter.granted.cancelled():
                self._release(key, exclusive=exclusive)  # granted and cancelled at the same moment
            else:
                if waiter in state.queue:
                    state.queue.remove(waiter)
                self._wake(key, state)  # a waiter that left the head may have been blocking others
            raise

    def _release(self, key: Hashable, *, exclusive: bool) -> None:
        state = self._keys[key]
        state.give_back(exclusive)
        self._wake(key, state)

    def _wake(self, key: Hashable, state: _KeyState) -> None:
        while state.queue:
            head = state.queue[0]
            if head.granted.done():  # cancelled while queued; its own handler is on the way
                state.queue.popleft()
                continue
            if not state.admits(head.exclusive):
                break
            state.queue.popleft()
            state.take(head.exclusive)
            head.granted.set_result(None)
        if state.idle and self._keys.get(key) is state:
            del self._keys[key]


def lock_order(key: Hashable) -> str:
    """The one order in which every multi-key acquisition takes its keys (keys are tuples of strings)."""
    return repr(key)
