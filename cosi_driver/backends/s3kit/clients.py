"""Long-lived aioboto3 clients for one set of admin credentials.

Creating an aioboto3 client loads botocore's service model and opens a connection pool, which
costs tens of milliseconds; doing that per call would dominate every COSI operation. A
:class:`ClientPool` creates each (service, endpoint) client once and keeps it. The admin keys are
read again on every use (they are usually a mounted Kubernetes Secret), and when they change the
pool builds fresh clients; the old ones keep serving the calls already using them and are closed
with the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cosi_driver.core.credentials import KeyPair
from cosi_driver.core.errors import Unavailable
from cosi_driver.core.options import ConfigProblem, SecretRef

ADDRESSING_STYLES = ("path", "virtual", "auto")


@dataclass(frozen=True)
class Connection:
    """How to reach one S3 or IAM endpoint."""

    endpoint: str
    region: str = "us-east-1"
    verify_tls: bool = True
    ca_bundle: Path | None = None
    addressing_style: str = "path"  # path works on every S3 server; virtual needs per-bucket DNS
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 3  # botocore "standard" retries: throttling and 5xx, with backoff
    max_pool_connections: int = 64

    @property
    def is_loopback(self) -> bool:
        host = urlsplit(self.endpoint).hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def botocore_config(self) -> Any:
        from botocore.config import Config

        return Config(
            region_name=self.region,
            signature_version="s3v4",
            s3={"addressing_style": self.addressing_style},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries={"mode": "standard", "max_attempts": self.max_attempts},
            max_pool_connections=self.max_pool_connections,
            # A proxy from the environment never makes sense for a server on this machine.
            proxies={} if self.is_loopback else None,
            # Only send and check checksums where the operation requires them: several S3
            # servers reject the CRC headers newer botocore adds by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )

    @property
    def verify(self) -> bool | str:
        if not self.verify_tls:
            return False
        return str(self.ca_bundle) if self.ca_bundle is not None else True


KeySource = Callable[[], KeyPair]


def read_admin_keys(access_key_id: SecretRef, secret_access_key: SecretRef, owner: str) -> KeyPair:
    """The admin keys as they are now (a mounted Secret may have been rotated since the last call).

    Keys that cannot be read at all (the file went away with its volume, the variable is unset)
    are UNAVAILABLE, not PERMISSION_DENIED. Nothing the caller sent or is allowed to do is at
    fault: the driver's own deployment is incomplete, an operator repairs it (remounts the
    Secret, sets the variable), and then the very same call succeeds, so it is an outage of the
    driver that the sidecar should keep retrying through. PERMISSION_DENIED is left for what the
    storage answers about keys that were read and sent. ``owner`` names the backend in the message;
    only where the keys are referenced from is shown, never their values.
    """
    try:
        return KeyPair(access_key_id.get().reveal(), secret_access_key.get())
    except (OSError, ConfigProblem) as error:
        detail = (error.strerror or type(error).__name__) if isinstance(error, OSError) else error.problem
        where = f"{access_key_id.describe()} / {secret_access_key.describe()}"
        raise Unavailable(f"{owner} cannot read its admin credentials ({where}): {detail}") from None


@dataclass
class _Entry:
    keys: KeyPair
    client: Any


class ClientPool:
    """One long-lived client per (service, connection), for the keys ``keys()`` returns now."""

    def __init__(self, keys: KeySource) -> None:
        self._keys = keys
        self._session: Any = None
        self._entries: dict[tuple[str, Connection], _Entry] = {}
        self._lock = asyncio.Lock()
        self._stack = contextlib.AsyncExitStack()
        self._closed = False

    async def s3(self, connection: Connection) -> Any:
        return await self.client("s3", connection)

    async def iam(self, connection: Connection) -> Any:
        return await self.client("iam", connection)

    async def client(self, service: str, connection: Connection) -> Any:
        keys = self._keys()
        entry = self._entries.get((service, connection))
        if entry is not None and entry.keys == keys:
            return entry.client
        async with self._lock:
            if self._closed:
                raise RuntimeError("the client pool is closed")
            entry = self._entries.get((service, connection))
            if entry is None or entry.keys != keys:
                entry = _Entry(keys, await self._open(service, connection, keys))
                self._entries[(service, connection)] = entry
            return entry.client

    async def _open(self, service: str, connection: Connection, keys: KeyPair) -> Any:
        if self._session is None:
            import aioboto3

            self._session = aioboto3.Session()
        factory = self._session.client(
            service,
            endpoint_url=connection.endpoint,
            region_name=connection.region,
            aws_access_key_id=keys.access_key_id,
            aws_secret_access_key=keys.secret_access_key.reveal(),
            verify=connection.verify,
            config=connection.botocore_config(),
        )
        return await self._stack.enter_async_context(factory)

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            self._entries.clear()
            await self._stack.aclose()
