"""Server interceptors: error recovery and the one log event per RPC.

:class:`RecoveryInterceptor` wraps every unary handler. A core error becomes its gRPC status; any
other exception (a "panic") becomes INTERNAL with a correlation id, and its traceback goes to the
log under that id. The process keeps serving. Each call also produces exactly one structured log
event with the RPC, the resulting code, the duration and the ids the request names, and is shown
to the registered :class:`~cosi_driver.transport.calls.CallObserver` hooks (metrics, tracing
attributes) as a :class:`~cosi_driver.transport.calls.CallRecord`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import grpc
import structlog

from cosi_driver.core.errors import CosiError
from cosi_driver.transport.calls import QUIET_SERVICES, CallObserver, CallRecord
from cosi_driver.transport.status import new_correlation_id, to_status

log = structlog.get_logger("cosi_driver.rpc")

Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _short_rpc(method: str) -> str:
    return method.rsplit("/", 1)[-1]


def _service(method: str) -> str:
    return method.lstrip("/").split("/", 1)[0]


class RecoveryInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        observers: Collection[CallObserver] = (),
        correlation_id: Callable[[], str] = new_correlation_id,
        quiet_services: Collection[str] = QUIET_SERVICES,
    ) -> None:
        self._observers = tuple(observers)
        self._correlation_id = correlation_id
        self._quiet = frozenset(quiet_services)
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:  # this runs for every call: wrap once per method
            return cached[1]
        wrapped = grpc.unary_unary_rpc_method_handler(
            self._wrap(method, _service(method) in self._quiet, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, quiet: bool, behavior: Handler) -> Handler:
        rpc = _short_rpc(method)
        observers = self._observers

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            call = CallRecord(method, rpc, _ids(request))
            message = ""
            for observer in observers:
                _notify(observer.call_started, call)
            try:
                try:
                    response = await behavior(request, context)
                    call.ids.update(_ids(response, _RESPONSE_IDS))  # the bucket_id a Create made, ...
                    return response
                except asyncio.CancelledError:
                    call.code, message = grpc.StatusCode.CANCELLED, "the caller went away"
                    raise
                except grpc.aio.AbortError:
                    # The handler aborted the call itself (the health service does for an unknown
                    # service name); the status is already set on the context.
                    call.code = _context_code(context)
                    raise
                except CosiError as error:
                    call.error = error
                    call.code, message = to_status(error)
                except Exception as error:
                    call.error = error
                    call.correlation_id = self._correlation_id()
                    call.code, message = to_status(error, call.correlation_id)
                # Outside the except blocks, so the AbortError this raises does not chain the
                # original exception: a tracer recording it would otherwise copy its message.
                await context.abort(call.code, message)
            finally:
                call.seconds = time.perf_counter() - started
                _log(call, message, quiet)
                for observer in observers:
                    _notify(observer.call_finished, call)

        return guarded


def _log(call: CallRecord, message: str, quiet: bool) -> None:
    fields: dict[str, Any] = {"rpc": call.rpc, "code": call.code.name, "duration_ms": round(call.seconds * 1000, 3)}
    fields.update(call.ids)
    if call.correlation_id is not None:
        log.error("rpc", error=message, correlation_id=call.correlation_id, exc_info=call.error, **fields)
    elif call.error is not None:
        log.warning("rpc", error=message, **fields)
    elif quiet:
        log.debug("rpc", **fields)
    else:
        log.info("rpc", **fields)


def _notify(hook: Callable[[CallRecord], None], call: CallRecord) -> None:
    """Run an observer hook; a broken hook is logged, never allowed to fail the call."""
    try:
        hook(call)
    except Exception:
        log.exception("call observer failed", rpc=call.rpc, observer=type(getattr(hook, "__self__", hook)).__name__)


def _context_code(context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    try:
        code = context.code()
    except (AttributeError, NotImplementedError):
        return grpc.StatusCode.UNKNOWN
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):  # some grpcio versions hand back the numeric code
        return next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    return grpc.StatusCode.UNKNOWN


_REQUEST_IDS = ("name", "bucket_id", "account_id")
_RESPONSE_IDS = ("bucket_id", "account_id")


def _ids(message: Any, fields: tuple[str, ...] = _REQUEST_IDS) -> dict[str, str]:
    """The identifying fields of a COSI message, safe to log (never parameters or credentials)."""
    out = {}
    for name in fields:
        value = getattr(message, name, "")
        if value:
            out[name] = str(value)
    return out
