"""Wrappers around a real backend that count calls, block, hang or fail on purpose.

They wrap the filesystem backend rather than replace it, so everything not under test still
happens for real.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

Hook = Callable[[str, Any], Awaitable[None]]


class Instrumented:
    """Forward every backend method to ``inner``; count calls; run ``before`` hooks first."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.before: dict[str, Hook] = {}

    def __getattr__(self, method: str) -> Any:
        target = getattr(self.inner, method)
        if not asyncio.iscoroutinefunction(target):
            return target

        async def call(*args: Any) -> Any:
            self.calls[method] += 1
            hook = self.before.get(method)
            if hook is not None:
                await hook(method, args[0] if args else None)
            return await target(*args)

        return call


def raising(error: BaseException) -> Hook:
    async def hook(method: str, request: Any) -> None:
        raise error

    return hook


def hanging() -> Hook:
    async def hook(method: str, request: Any) -> None:
        await asyncio.Event().wait()

    return hook


def gate(event: asyncio.Event) -> Hook:
    """Block the call until ``event`` is set."""

    async def hook(method: str, request: Any) -> None:
        await event.wait()

    return hook


class Rendezvous:
    """Lets ``parties`` calls through only once all of them have arrived: proves they overlap."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.all_here = asyncio.Event()

    async def __call__(self, method: str, request: Any) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            self.all_here.set()
        await self.all_here.wait()


def spy(route: Any) -> Instrumented:
    """The :class:`Instrumented` wrapper a test route was built with (``filesystem_route(wrap=Instrumented)``)."""
    assert isinstance(route.backend, Instrumented)
    return route.backend
