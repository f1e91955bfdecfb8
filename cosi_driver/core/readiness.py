"""Readiness: whether every configured backend answers now, asked for by several probes at once.

Liveness is only "the process serves", so a storage outage never gets a healthy driver restarted;
readiness is :meth:`Driver.check_health`, which bounds each backend with a short timeout. Probes
come from several sides (kubelet over HTTP, the gRPC health service, a person with curl), so the
answer is cached for a moment and concurrent probes share one check through the core's
:class:`~cosi_driver.core.concurrency.SingleFlight`: a hanging storage system cannot pile up
probe calls. It lives in the core because both the transport (gRPC health) and observability
(HTTP probes, the readiness gauge) read it, and neither may depend on the other for it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog

from cosi_driver.core.concurrency import SingleFlight
from cosi_driver.core.driver import Driver
from cosi_driver.core.types import HealthReport

log = structlog.get_logger("cosi_driver.health")

DEFAULT_CACHE_SECONDS = 2.0

#: Told ``ready`` after every completed check (the gRPC health service mirrors it).
Listener = Callable[[bool], Awaitable[None]]

_CHECK = "readiness"  # the single key under which concurrent probes share one check


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
        self._flight = SingleFlight()
        self._listeners: list[Listener] = []
        self.serving = False  # set by the server once it accepts calls, cleared when it stops

    @property
    def last_reports(self) -> list[HealthReport]:
        """What the latest check saw (empty before the first), without probing again."""
        return list(self._reports)

    def on_change(self, listener: Listener) -> None:
        """Call ``listener(ready)`` after every check."""
        self._listeners.append(listener)

    async def check(self) -> tuple[bool, list[HealthReport]]:
        """(ready, one report per backend). Not ready while the server is not serving."""
        reports = await self._fresh_reports()
        return self.serving and all(report.ok for report in reports), reports

    async def _fresh_reports(self) -> list[HealthReport]:
        if self._checked_at is not None and self._clock() - self._checked_at < self._cache_seconds:
            return self._reports
        # A probe client that disconnects does not cancel the check others wait for: SingleFlight shields it.
        return await self._flight.do(_CHECK, self._probe)

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
