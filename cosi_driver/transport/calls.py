"""What an RPC looks like to the hooks that watch it: :class:`CallRecord` and :class:`CallObserver`.

Only types, no server machinery: the recovery interceptor fills a record per call, and the layers
above the transport (observability's metrics and tracing) implement the observer protocol by
importing this module, never the interceptor itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import grpc

#: Services whose calls are logged at debug level and make no spans: probes call them every few seconds.
QUIET_SERVICES = frozenset({"grpc.health.v1.Health"})


@dataclass(slots=True)
class CallRecord:
    """One RPC as the observers see it; filled in as the call progresses."""

    method: str  # "/cosi.v1alpha1.Provisioner/DriverCreateBucket"
    rpc: str  # "DriverCreateBucket"
    ids: dict[str, str] = field(default_factory=dict)  # name, bucket_id, account_id of request and response
    code: grpc.StatusCode = grpc.StatusCode.OK
    seconds: float = 0.0
    error: BaseException | None = None
    correlation_id: str | None = None  # set only for a panic (an unexpected exception)

    @property
    def panicked(self) -> bool:
        return self.correlation_id is not None

    @property
    def full_method(self) -> str:
        """The semantic-conventions form of ``rpc.method``: ``service/method`` without the slash."""
        return self.method.lstrip("/")


class CallObserver(Protocol):
    """A hook that sees every call start and finish. It must be quick and must not raise."""

    def call_started(self, call: CallRecord) -> None: ...

    def call_finished(self, call: CallRecord) -> None: ...
