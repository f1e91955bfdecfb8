"""S3 over aioboto3 for the RGW backend: one long-lived client, emptiness checks, error translation.

Stop-gap until the shared S3 toolkit (built on the ``s3`` branch) lands; its API mirrors what
this backend needs so the switch is a change of imports.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from cosi_driver.backends.ceph.admin import AdminCredentials
from cosi_driver.core.errors import (
    AlreadyExists,
    CosiError,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)


def client_error_code(error: BaseException) -> str | None:
    """The S3 error code of a botocore ClientError (None for anything else)."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code else None


@contextlib.asynccontextmanager
async def translate_s3_errors(describe: str, *, bucket: str | None = None) -> AsyncIterator[None]:
    """Turn botocore failures into core errors whose messages carry names and codes only."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    try:
        yield
    except CosiError:
        raise
    except ClientError as error:
        raise _from_client_error(describe, bucket, error) from None
    except ReadTimeoutError:
        raise DeadlineExceeded(f"{describe} did not answer an S3 request in time") from None
    except (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError) as error:
        raise Unavailable(f"{describe} is unreachable over S3 ({type(error).__name__})") from None
    except BotoCoreError as error:
        raise Unavailable(f"{describe}: S3 request failed ({type(error).__name__})") from None


def _from_client_error(describe: str, bucket: str | None, error: Any) -> CosiError:
    code = client_error_code(error) or "unknown"
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    what = f"bucket {bucket!r}" if bucket else "the request"
    known: dict[str, CosiError] = {
        "NoSuchBucket": NotFound(f"{what} does not exist in {describe}"),
        "InvalidBucketName": InvalidArgument(f"{describe} refused {what}: InvalidBucketName"),
        "BucketAlreadyExists": AlreadyExists(f"{what} already exists in {describe} and belongs to another user"),
        "TooManyBuckets": ResourceExhausted(
            f"{describe}: the admin user may not own more buckets (TooManyBuckets); raise its max-buckets"
        ),
        "QuotaExceeded": ResourceExhausted(f"{describe}: {what} is over its quota (QuotaExceeded)"),
    }
    if code in known:
        return known[code]
    if isinstance(status, int) and status >= 500:
        return Unavailable(f"{describe} failed an S3 request on {what} ({status} {code})")
    return FailedPrecondition(f"{describe} refused an S3 request on {what} ({code})")


class S3Clients:
    """One aioboto3 client kept open for the backend's life, rebuilt when the admin keys rotate."""

    def __init__(
        self,
        endpoint: str,
        credentials: Callable[[], AdminCredentials],
        *,
        region: str,
        verify: bool | str,
        connect_timeout: float,
        read_timeout: float,
        describe: str,
    ) -> None:
        self.endpoint = endpoint
        self._credentials = credentials
        self._region = region
        self._verify = verify
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._describe = describe
        self._client: Any = None
        self._exit: Any = None
        self._built_for: tuple[str, str] | None = None
        self._lock: asyncio.Lock | None = None

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[Any]:
        yield await self._current()

    async def _current(self) -> Any:
        keys = self._credentials()
        wanted = (keys.access_key_id, keys.secret_access_key.reveal())
        if self._client is not None and self._built_for == wanted:
            return self._client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is not None and self._built_for == wanted:
                return self._client
            await self.close()
            import aioboto3
            from aiobotocore.config import AioConfig

            session = aioboto3.Session(
                aws_access_key_id=wanted[0], aws_secret_access_key=wanted[1], region_name=self._region
            )
            config = AioConfig(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=self._connect_timeout,
                read_timeout=self._read_timeout,
                max_pool_connections=64,
                tcp_keepalive=True,
            )
            manager = session.client("s3", endpoint_url=self.endpoint, config=config, verify=self._verify)
            self._client = await manager.__aenter__()
            self._exit = manager.__aexit__
            self._built_for = wanted
            return self._client

    async def contents(self, s3: Any, bucket: str) -> str | None:
        """What keeps the bucket from being empty (objects, versions, unfinished uploads), or None."""
        versions = await s3.list_object_versions(Bucket=bucket, MaxKeys=1)
        if versions.get("Versions") or versions.get("DeleteMarkers"):
            return "it still holds objects or object versions"
        uploads = await s3.list_multipart_uploads(Bucket=bucket, MaxUploads=1)
        if uploads.get("Uploads"):
            return "it holds unfinished multipart uploads"
        return None

    async def close(self) -> None:
        if self._exit is not None:
            exit_, self._exit, self._client, self._built_for = self._exit, None, None, None
            await exit_(None, None, None)
