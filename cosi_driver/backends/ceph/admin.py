"""A small async client for the RGW Admin Ops API (``/admin/user``, ``/admin/bucket``).

Requests are signed by botocore's own ``S3SigV4Auth`` and sent with aiohttp; both already come
with aioboto3, so the Admin API costs no extra dependency and no hand-written signing. What
Pacific (16.2) needs, all measured on a real gateway:

* ``S3SigV4Auth``, not ``SigV4Auth``: RGW checks the signature against ``x-amz-content-sha256``
  and, without that header, against ``UNSIGNED-PAYLOAD``.
* A request *with a body* whose sha256 is signed gets 501 NotImplemented, so bodies are signed as
  ``UNSIGNED-PAYLOAD``.
* Query values must be percent-encoded the strict AWS way (``%20``, never ``+``); otherwise RGW
  computes another canonical request and answers 403 AccessDenied, not SignatureDoesNotMatch.
  The URL is handed to aiohttp already encoded, so it is sent byte for byte as signed.
* A bad secret, an unknown access key and a user without admin caps all get the same
  403 AccessDenied (the backend's health check tells them apart with one S3 call).

Responses can carry secret keys (``GET /admin/user`` shows them), so no response body, request
URL or header ever reaches an exception message or a log line: errors carry the method, the
resource, the HTTP status and RGW's error code only.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from cosi_driver.core.credentials import KeyPair
from cosi_driver.core.errors import FailedPrecondition, PermissionDenied, Unavailable

# Parameters given as a bare flag (``?quota``, ``?key``) are sent as ``name=``, which RGW reads the
# same way and which signs unambiguously.
Params = Mapping[str, str | int | bool | None]


class AdminError(FailedPrecondition):
    """A 4xx refusal from Admin Ops. Callers handle the codes they expect (``NoSuchUser``...);
    any other one reaches the caller as FAILED_PRECONDITION naming the request and RGW's code."""

    def __init__(self, describe: str, method: str, resource: str, status: int, rgw_code: str) -> None:
        super().__init__(f"{describe}: Admin Ops {method} /{resource} answered {status} {rgw_code or '(no code)'}")
        self.status = status
        self.rgw_code = rgw_code


class AdminServerError(Unavailable):
    """A 5xx from Admin Ops: the gateway failed (RGW also answers 500 to racing metadata writes)."""


class AdminAccessDenied(PermissionDenied):
    """The gateway refused the driver's admin credentials or their caps; the operator must act."""


def encode_query(params: Params) -> str:
    """The query string exactly as it is signed and sent: sorted, strict AWS percent-encoding."""
    pairs = []
    for key, value in sorted(params.items()):
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        pairs.append(f"{quote(key, safe='-_.~')}={quote(text, safe='-_.~')}")
    return "&".join(pairs)


class AdminOps:
    """One long-lived aiohttp session per backend; credentials are read again on every request.

    Reading the credentials each time lets a rotated Kubernetes Secret (mounted as files) take
    effect without a restart; the file reads are cached by mtime in :mod:`cosi_driver.core.kinds`.
    """

    def __init__(
        self,
        endpoint: str,
        credentials: Callable[[], KeyPair],
        *,
        region: str,
        admin_entry: str = "admin",
        ssl_context: ssl.SSLContext | bool = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        use_proxy_from_env: bool = False,
        describe: str = "RGW",
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._credentials = credentials
        self._region = region
        self._entry = admin_entry.strip("/")
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._trust_env = use_proxy_from_env
        self._describe = describe
        self._session: Any = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> Any:
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            # Proxies from the environment as for the S3 clients (never for a gateway on this
            # machine). aiohttp sets TCP_NODELAY, without which RGW's replies stall ~40 ms.
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=64, keepalive_timeout=15)
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self._connect_timeout, sock_read=self._read_timeout
            )
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=self._trust_env)
            self._session_loop = loop
        return self._session

    def _sign(self, method: str, url: str, body: bytes) -> dict[str, str]:
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.config import Config
        from botocore.credentials import Credentials

        keys = self._credentials()
        request = AWSRequest(method=method, url=url, data=body)
        if body:
            # A signed body hash gets 501 NotImplemented from RGW; sign the body as UNSIGNED-PAYLOAD.
            request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
            request.headers["Content-Type"] = "application/json"
        signer = S3SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key.reveal()), "s3", self._region)
        signer.add_auth(request)
        return dict(request.headers.items())

    async def call(self, method: str, resource: str, params: Params, body: Any = None) -> Any:
        """Send one Admin Ops request; the parsed JSON answer, or None when it has no body.

        Raises :class:`AdminError` for RGW's refusals (4xx), :class:`AdminAccessDenied` when it
        refuses the driver's admin credentials, :class:`AdminServerError` for its failures (5xx) and
        Unavailable when it cannot be reached or does not answer within the read timeout.
        """
        import aiohttp
        import yarl

        query = encode_query(params)
        url = f"{self.endpoint}/{self._entry}/{resource}" + (f"?{query}" if query else "")
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        for attempt in (1, 2):
            headers = self._sign(method, url, data)
            try:
                async with self._client().request(
                    method, yarl.URL(url, encoded=True), headers=headers, data=data or None
                ) as response:
                    payload = await response.read()
                    status = response.status
                break
            except aiohttp.ServerDisconnectedError:
                # A kept-alive connection the gateway closed in the meantime; one fresh attempt.
                if attempt == 2:
                    raise Unavailable(f"{self._describe} closed the connection during {method} /{resource}") from None
            except (aiohttp.ServerTimeoutError, TimeoutError):
                raise Unavailable(
                    f"{self._describe} did not answer Admin Ops {method} /{resource} within "
                    f"{self._read_timeout:g}s (read timeout)"
                ) from None
            except aiohttp.ClientSSLError as error:
                raise Unavailable(
                    f"TLS handshake with {self.endpoint} failed ({type(error).__name__}); "
                    "check verify_tls and ca_bundle"
                ) from None
            except (aiohttp.ClientError, OSError) as error:
                raise Unavailable(
                    f"{self._describe} at {self.endpoint} is unreachable ({type(error).__name__})"
                ) from None
        if status >= 300:
            code = _error_code(payload)
            if status == 403 and code == "AccessDenied":
                raise AdminAccessDenied(
                    f"{self._describe} refused Admin Ops {method} /{resource} (403 AccessDenied): the admin "
                    "credentials are wrong, or their user lacks the admin caps users=* and buckets=*. "
                    "Fix admin_access_key_id / admin_secret_access_key or the user's caps"
                )
            if status >= 500:
                raise AdminServerError(f"{self._describe}: Admin Ops {method} /{resource} answered {status} {code}")
            raise AdminError(self._describe, method, resource, status, code)
        if not payload:
            return None
        try:
            return json.loads(payload)
        except ValueError:
            raise Unavailable(
                f"{self._describe} answered {method} /{resource} with something that is not JSON; "
                f"is {self.endpoint} a RADOS Gateway and '{self._entry}' its admin entry?"
            ) from None

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _error_code(payload: bytes) -> str:
    try:
        document = json.loads(payload)
    except ValueError:
        return ""
    code = document.get("Code") if isinstance(document, dict) else None
    return code if isinstance(code, str) else ""
