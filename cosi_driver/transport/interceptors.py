"""Server interceptors: error recovery and the one log event per RPC.

:class:`RecoveryInterceptor` wraps every unary handler. A core error becomes its gRPC status; any
other exception becomes INTERNAL with a correlation id, and its traceback goes to the log under
that id. The process keeps serving. Each call also produces exactly one structured log event with
the RPC, the resulting code and the duration.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import structlog

from cosi_driver.core.errors import CosiError
from cosi_driver.transport.status import new_correlation_id, to_status

log = structlog.get_logger("cosi_driver.rpc")

Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]

#: Hooks other layers (metrics, tracing) register to see each finished call:
#: ``hook(rpc, code, seconds, error_or_None)``.
CallObserver = Callable[[str, grpc.StatusCode, float, BaseException | None], None]


def _short_rpc(method: str) -> str:
    return method.rsplit("/", 1)[-1]


class RecoveryInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        observers: list[CallObserver] | None = None,
        correlation_id: Callable[[], str] = new_correlation_id,
    ) -> None:
        self._observers = list(observers or [])
        self._correlation_id = correlation_id

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        rpc = _short_rpc(handler_call_details.method)
        return grpc.unary_unary_rpc_method_handler(
            self._wrap(rpc, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap(self, rpc: str, behavior: Handler) -> Handler:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code, message = grpc.StatusCode.OK, ""
            failure: BaseException | None = None
            correlation_id: str | None = None
            try:
                return await behavior(request, context)
            except asyncio.CancelledError:
                code, message = grpc.StatusCode.CANCELLED, "the caller went away"
                raise
            except CosiError as error:
                failure = error
                code, message = to_status(error)
                await context.abort(code, message)
            except Exception as error:
                failure = error
                correlation_id = self._correlation_id()
                code, message = to_status(error, correlation_id)
                await context.abort(code, message)
            finally:
                elapsed = time.perf_counter() - started
                fields: dict[str, Any] = {"rpc": rpc, "code": code.name, "duration_ms": round(elapsed * 1000, 3)}
                fields.update(_ids(request))
                if correlation_id is not None:
                    log.error("rpc", error=message, correlation_id=correlation_id, exc_info=failure, **fields)
                elif failure is not None:
                    log.warning("rpc", error=message, **fields)
                else:
                    log.info("rpc", **fields)
                for observer in self._observers:
                    observer(rpc, code, elapsed, failure)

        return guarded


def _ids(request: Any) -> dict[str, str]:
    """The identifying fields of a COSI request, safe to log (never parameters: they may hold secrets)."""
    out = {}
    for field in ("name", "bucket_id", "account_id"):
        value = getattr(request, field, "")
        if value:
            out[field] = str(value)
    return out
