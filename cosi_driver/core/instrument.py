"""The seam through which telemetry sees each backend operation.

The core knows which backend, operation and bucket a storage call is about; tracing spans and
latency histograms live in :mod:`cosi_driver.observability`, which the core must not import.
So the driver accepts an :class:`OperationInstrument`: a factory of context managers entered
around every backend call (inside the driver's time limit translation, so the exception they
see is the core error the caller will get). With none installed the driver does nothing extra.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BackendOperation:
    """What a backend call is about: names only, never parameters (they may hold secrets)."""

    backend: str  # the configured name, as in ids
    backend_type: str
    operation: str  # the Backend method: find_bucket, create_bucket, grant_access...
    bucket: str
    account: str | None = None  # the account (or BucketAccess name) a grant or revoke is about


class OperationInstrument(Protocol):
    def __call__(self, operation: BackendOperation) -> AbstractContextManager[object]: ...
