"""Liveness and readiness, as Kubernetes probes and the gRPC health service ask for them.

Liveness is "the process serves": the event loop answers. A storage outage must never make it
fail, or Kubernetes would restart a healthy driver in a loop. Readiness is "every configured
backend answers now": it calls :meth:`Driver.check_health`, which bounds each backend with a short
timeout. Probes arrive from several places (kubelet, the gRPC health service, a person with curl),
so the answer is cached for a moment and concurrent probes share one check, which keeps a hanging
storage system from piling up probe calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from cosi_driver.core.driver import Driver
from cosi_driver.core.types import HealthReport

log = structlog.get_logger("cosi_driver.health")

DEFAULT_CACHE_SECONDS = 2.0

Listener = Callable[[bool], Awaitable[None]]


class Readiness:
    """Cached, de-duplicated readiness of every backend; flips back without a restart."""

    def __init__(
        self,
        driver: Driver,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._driver = driver
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._checked_at: float | None = None
        self._reports: list[HealthReport] = []
        self._running: asyncio.Future[list[HealthReport]] | None = None
        self._listeners: list[Listener] = []
        self.serving = False  # set by the server once it accepts calls, cleared when it stops

    @property
    def last_reports(self) -> list[HealthReport]:
        """What the latest check saw (empty before the first), without probing again."""
        return list(self._reports)

    def on_change(self, listener: Listener) -> None:
        """Call ``listener(ready)`` after every check (the gRPC health service mirrors it)."""
        self._listeners.append(listener)

    async def check(self) -> tuple[bool, list[HealthReport]]:
        """(ready, one report per backend). Not ready while the server is not serving."""
        reports = await self._fresh_reports()
        return self.serving and all(report.ok for report in reports), reports

    async def _fresh_reports(self) -> list[HealthReport]:
        if self._checked_at is not None and self._clock() - self._checked_at < self._cache_seconds:
            return self._reports
        if self._running is None:
            self._running = asyncio.ensure_future(self._probe())
            self._running.add_done_callback(self._done)
        # shield: a probe client that disconnects must not cancel the check others wait for.
        return await asyncio.shield(self._running)

    def _done(self, future: asyncio.Future[list[HealthReport]]) -> None:
        self._running = None
        if not future.cancelled():
            future.exception()  # retrieved: every waiter may have gone

    async def _probe(self) -> list[HealthReport]:
        reports = await self._driver.check_health()
        self._log_changes(reports)
        self._reports, self._checked_at = reports, self._clock()
        ready = self.serving and all(report.ok for report in reports)
        for listener in self._listeners:
            try:
                await listener(ready)
            except Exception:
                log.exception("readiness listener failed")
        return reports

    def _log_changes(self, reports: list[HealthReport]) -> None:
        before = {report.backend: report.ok for report in self._reports}
        for report in reports:
            if before.get(report.backend, True) and not report.ok:
                log.warning("backend not ready", backend=report.backend, detail=report.detail)
            elif before.get(report.backend) is False and report.ok:
                log.info("backend ready again", backend=report.backend)


def describe(ready: bool, reports: list[HealthReport]) -> dict[str, Any]:
    """The JSON body of ``/readyz``: overall status and each backend's own."""
    return {
        "status": "ready" if ready else "not ready",
        "backends": {
            report.backend: {"ready": report.ok, **({"detail": report.detail} if report.detail else {})}
            for report in reports
        },
    }
