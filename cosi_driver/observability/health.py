"""Readiness as the probes show it: the ``/readyz`` body.

The readiness check itself (cached, de-duplicated :meth:`Driver.check_health`) is a core service,
:class:`cosi_driver.core.readiness.Readiness`, because the transport's gRPC health service reads
it too.
"""

from __future__ import annotations

from typing import Any

from cosi_driver.core.types import HealthReport

__all__ = ["describe"]


def describe(ready: bool, reports: list[HealthReport]) -> dict[str, Any]:
    """The JSON body of ``/readyz``: overall status and each backend's own."""
    return {
        "status": "ready" if ready else "not ready",
        "backends": {
            report.backend: {"ready": report.ok, **({"detail": report.detail} if report.detail else {})}
            for report in reports
        },
    }
