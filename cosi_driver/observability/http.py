"""A deliberately small HTTP/1.1 server for probes and metrics: ``/livez``, ``/readyz``, ``/metrics``.

Kubelet probes and Prometheus scrapes send one GET per connection and read one answer, so a
framework would add start-up time and dependencies for nothing. This server runs on the driver's
own event loop (so ``/livez`` answering proves the loop is responsive), reads at most a few KiB of
request head with a deadline, answers GET and HEAD, and closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from cosi_driver.core.readiness import Readiness
from cosi_driver.observability.health import describe

log = structlog.get_logger("cosi_driver.http")

READ_TIMEOUT = 5.0
MAX_HEAD_BYTES = 8192


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


PathHandler = Callable[[], Awaitable[Response]]  # answers GET on one path (not core.driver.Route)
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class HttpServer:
    def __init__(self, host: str, port: int, routes: dict[str, PathHandler]) -> None:
        self._host = host or None  # "" (from ":8080") means every interface
        self._port = port
        self._routes = routes
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        """host:port actually bound (the port is known only after start when 0 was asked)."""
        assert self._server is not None, "start() first"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self._host, self._port, limit=MAX_HEAD_BYTES, reuse_address=True
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            response, head_only = await self._answer(reader)
            reason = _REASONS.get(response.status, "")
            head = (
                f"HTTP/1.1 {response.status} {reason}\r\n"
                f"Content-Type: {response.content_type}\r\n"
                f"Content-Length: {len(response.body)}\r\n"
                "Cache-Control: no-store\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (b"" if head_only else response.body))
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away or sent garbage: nothing to answer
        except Exception:
            log.exception("http handler failed")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[Response, bool]:
        async with asyncio.timeout(READ_TIMEOUT):
            head = await reader.readuntil(b"\r\n\r\n")  # at most MAX_HEAD_BYTES: the stream's limit
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return Response(400, b"bad request\n"), False
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            return Response(405, b"only GET and HEAD\n"), False
        route = self._routes.get(target.split("?", 1)[0])
        if route is None:
            return Response(404, b"not found; try /livez, /readyz or /metrics\n"), method == "HEAD"
        return await route(), method == "HEAD"


def probe_routes(readiness: Readiness, metrics: Callable[[], tuple[bytes, str]] | None) -> dict[str, PathHandler]:
    """The routes Kubernetes and Prometheus use. ``metrics`` renders the exposition, if metrics are on."""

    async def livez() -> Response:
        return Response(200, b"ok\n")

    async def readyz() -> Response:
        ready, reports = await readiness.check()
        body: dict[str, Any] = describe(ready, reports)
        if not readiness.serving:
            body["status"] = "not serving"
        return Response(200 if ready else 503, json.dumps(body).encode() + b"\n", "application/json")

    async def metrics_route() -> Response:
        if metrics is None:
            return Response(
                404, b"metrics are off: install the otel extra (pip install 'cosi-driver[otel]') to serve them\n"
            )
        body, content_type = metrics()
        return Response(200, body, content_type)

    return {"/livez": livez, "/readyz": readyz, "/metrics": metrics_route}
