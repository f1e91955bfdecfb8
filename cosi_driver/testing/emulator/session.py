"""One emulated sidecar process: its one connection to the driver, its worker pool, its clock.

Every object of a run goes through the same :class:`SidecarSession`, as every object of the real
sidecar goes through its one gRPC connection and its 40 workers. A worker is held only for the
driver call itself; the backoff wait between attempts holds none (the real work queue parks the
object and hands the worker to someone else). An object is handled by one task at a time, so it
never has two calls in flight: the sidecar's one-operation-per-object rule.

A call that cannot reach the driver (socket gone, driver killed mid-call) fails in the gRPC client
with UNAVAILABLE, which the sidecar treats like any refusal: an Event, a backoff, a retry on the same
connection. gRPC reconnects by itself, so a driver restarted on the same socket is picked up again.

Both sidecar generations use it: ``api`` picks the stubs (v0.2.2 speaks v1alpha1, upstream main
v1alpha2); everything else, the pool, the reconnect backoff and the recording, is the same.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc

from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb1
from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb1_grpc
from cosi_driver.spec.v1alpha2 import cosi_pb2 as pb2
from cosi_driver.spec.v1alpha2 import cosi_pb2_grpc as pb2_grpc
from cosi_driver.testing.emulator.options import EmulatorOptions
from cosi_driver.testing.emulator.record import Call, Problem

#: The generated modules each sidecar generation talks through.
_STUBS: dict[str, tuple[Any, Any]] = {"v1alpha1": (pb1, pb1_grpc), "v1alpha2": (pb2, pb2_grpc)}

#: Called with every call as soon as its answer is in (tests use it to act at chosen points).
Observer = Callable[[Call], None]


@dataclass
class Answer:
    code: grpc.StatusCode
    response: Any
    message: str


class SidecarSession:
    def __init__(self, options: EmulatorOptions, observer: Observer | None = None, api: str = "v1alpha1") -> None:
        self.options = options
        self.pb, self._pb_grpc = _STUBS[api]
        self.observer = observer
        self.started = time.monotonic()
        self.workers = asyncio.Semaphore(max(1, options.workers))
        self.driver_name: str | None = None
        self.info: Any = None  # the DriverGetInfo answer, once started
        #: Set once an answer has crashed the sidecar: every object stops where it is.
        self.crashed = False
        self._channel: grpc.aio.Channel | None = None

    async def __aenter__(self) -> SidecarSession:
        channel_options: list[tuple[str, Any]] = []
        if self.options.reconnect_backoff is not None:
            ms = max(1, int(self.options.reconnect_backoff * 1000))
            channel_options += [
                ("grpc.initial_reconnect_backoff_ms", ms),
                ("grpc.min_reconnect_backoff_ms", ms),
                ("grpc.max_reconnect_backoff_ms", ms),
            ]
        self._channel = grpc.aio.insecure_channel(self.options.endpoint, options=channel_options)
        self.identity = self._pb_grpc.IdentityStub(self._channel)
        self.provisioner = self._pb_grpc.ProvisionerStub(self._channel)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def call(
        self, rpc: str, subject: str, attempt: int, make_call: Callable[[], Awaitable[Any]], note: str = ""
    ) -> tuple[Answer, Call]:
        """One driver call on a worker of the pool, recorded as the sidecar would have seen it."""
        async with self.workers:
            try:
                response = await make_call()
            except grpc.aio.AioRpcError as error:
                answer = Answer(error.code(), None, error.details() or "")
            else:
                answer = Answer(grpc.StatusCode.OK, response, "")
        detail = answer.message if answer.code is not grpc.StatusCode.OK else _summary(rpc, answer.response)
        call = Call(time.monotonic() - self.started, rpc, subject, attempt, answer.code.name, detail, note)
        if self.observer is not None:
            self.observer(call)
        return answer, call

    async def start(self) -> tuple[Call, Problem | None]:
        """DriverGetInfo, once, as the sidecar does at start-up; a Problem when it would not go on."""
        answer, call = await self.call(
            "DriverGetInfo",
            "sidecar start",
            1,
            lambda: self.identity.DriverGetInfo(self.pb.DriverGetInfoRequest(), timeout=self.options.call_timeout),
        )
        if answer.code is not grpc.StatusCode.OK:
            self.crashed = True
            return call, Problem(
                "crashed",
                f"DriverGetInfo failed ({answer.code.name}: {answer.message}); the sidecar exits at start-up and "
                "restarts in CrashLoopBackOff, serving no claim at all",
            )
        self.info = answer.response
        self.driver_name = name = str(answer.response.name)
        wanted = self.options.driver_name
        if wanted is not None and wanted.lower() != name.lower():
            return call, Problem(
                "ignored",
                f"the driver calls itself {name!r} but the classes name driverName {wanted!r}; the sidecar skips "
                "these objects silently: the claim stays pending with no Event",
            )
        return call, None


def _summary(rpc: str, response: Any) -> str:
    if rpc == "DriverGetInfo":
        return f"name {response.name!r}"
    if rpc == "DriverCreateBucket":
        return f"bucket_id {response.bucket_id!r}"
    if rpc == "DriverGrantBucketAccess":
        credentials = response.credentials  # v1alpha1: a map by protocol; v1alpha2: one slot set
        slots = (
            sorted(credentials)
            if not hasattr(credentials, "ListFields")
            else [f.name for f, _ in credentials.ListFields()]
        )
        return f"account_id {response.account_id!r}, credentials {slots}"
    return ""
