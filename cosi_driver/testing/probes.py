"""Out-of-band views of a storage system, for the acceptance suite.

The suite drives a backend through the driver, then checks the storage itself through a probe:
did the bucket really go, is the data really still there, is the account really gone. A backend's
test supplies the probe; S3-speaking systems can start from :class:`S3AdminProbe`.
:class:`S3Session` exercises granted credentials as a consumer would (acceptance and conformance).
"""

from __future__ import annotations

import asyncio
import functools
import shutil
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol


class StorageProbe(Protocol):
    async def bucket_exists(self, bucket: str) -> bool: ...

    async def put_object(self, bucket: str, key: str, data: bytes) -> None:
        """Store an object as the storage administrator (makes a bucket non-empty)."""
        ...

    async def object_exists(self, bucket: str, key: str) -> bool: ...

    async def create_foreign_bucket(self, bucket: str) -> None:
        """Create a bucket behind the driver's back, as another tenant or an admin would."""
        ...

    async def remove_foreign_bucket(self, bucket: str) -> None: ...

    async def account_exists(self, account: str) -> bool:
        """Whether the backend's account (as named in the account id) still exists."""
        ...


class FilesystemProbe:
    """Looks at a filesystem backend's root directly."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def bucket_exists(self, bucket: str) -> bool:
        return (self.root / "buckets" / bucket).is_dir()

    async def put_object(self, bucket: str, key: str, data: bytes) -> None:
        path = self.root / "buckets" / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    async def object_exists(self, bucket: str, key: str) -> bool:
        return (self.root / "buckets" / bucket / key).is_file()

    async def create_foreign_bucket(self, bucket: str) -> None:
        (self.root / "buckets" / bucket).mkdir(parents=True)

    async def remove_foreign_bucket(self, bucket: str) -> None:
        shutil.rmtree(self.root / "buckets" / bucket, ignore_errors=True)

    async def account_exists(self, account: str) -> bool:
        return (self.root / ".cosi" / "accounts" / f"{account}.json").is_file()


class S3AdminProbe:
    """Bucket and object checks with an S3 administrator's keys (aioboto3, imported lazily).

    ``account_exists`` depends on how the storage names users (IAM, RGW Admin Ops...): pass it in.
    """

    def __init__(
        self,
        endpoint: str,
        access_key_id: str,
        secret_access_key: str,
        region: str = "us-east-1",
        account_exists: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._keys = (access_key_id, secret_access_key)
        self.region = region
        self._account_exists = account_exists

    def client(self) -> Any:
        return s3_client(self.endpoint, *self._keys, region=self.region)

    async def bucket_exists(self, bucket: str) -> bool:
        from botocore.exceptions import ClientError

        async with self.client() as s3:
            try:
                await s3.head_bucket(Bucket=bucket)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
                    return False
                raise
            return True

    async def put_object(self, bucket: str, key: str, data: bytes) -> None:
        async with self.client() as s3:
            await s3.put_object(Bucket=bucket, Key=key, Body=data)

    async def object_exists(self, bucket: str, key: str) -> bool:
        from botocore.exceptions import ClientError

        async with self.client() as s3:
            try:
                await s3.head_object(Bucket=bucket, Key=key)
            except ClientError:
                return False
            return True

    async def create_foreign_bucket(self, bucket: str) -> None:
        async with self.client() as s3:
            await s3.create_bucket(Bucket=bucket)

    async def remove_foreign_bucket(self, bucket: str) -> None:
        from botocore.exceptions import ClientError

        async with self.client() as s3:
            try:
                listing = await s3.list_objects_v2(Bucket=bucket)
                for item in listing.get("Contents", []):
                    await s3.delete_object(Bucket=bucket, Key=item["Key"])
                await s3.delete_bucket(Bucket=bucket)
            except ClientError:
                pass

    async def account_exists(self, account: str) -> bool:
        if self._account_exists is None:
            raise NotImplementedError("pass account_exists= for this storage system")
        return await self._account_exists(account)


@functools.cache
def _session() -> Any:
    """One aioboto3 session for every client: a client from a shared session takes milliseconds,
    one from a new session loads botocore's models again (100-300 ms), which dominated the data-path
    checks that open a client per operation."""
    import aioboto3

    return aioboto3.Session()


def s3_client(endpoint: str, access_key_id: str, secret_access_key: str, region: str = "us-east-1") -> Any:
    """An aioboto3 S3 client context manager with path-style addressing and no retries.

    No retries, so a denial is seen as a denial at once; path style, because test servers on
    127.0.0.1 have no per-bucket DNS names.
    """
    from botocore.config import Config

    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=5, read_timeout=15)
    return _session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=config,
    )


async def poll(check: Callable[[], Awaitable[bool]], within: float, interval: float = 0.1) -> bool:
    """True as soon as ``check`` is, False if it never is within ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await check():
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(interval)


class S3Session:
    """Exercise credentials from a Grant exactly as a consumer would, at the endpoint they name."""

    def __init__(self, secrets: Mapping[str, str], propagation_seconds: float) -> None:
        self.secrets = secrets
        self.propagation_seconds = propagation_seconds

    async def allowed(self, operation: str, bucket: str, key: str | None = None) -> bool:
        """True if the storage accepted the operation, False if it denied it."""
        from botocore.exceptions import ClientError

        client = s3_client(
            self.secrets["endpoint"],
            self.secrets["accessKeyID"],
            self.secrets["accessSecretKey"],
            region=self.secrets["region"],
        )
        async with client as s3:
            try:
                if operation == "put":
                    await s3.put_object(Bucket=bucket, Key=key, Body=b"cosi acceptance")
                elif operation == "get":
                    await (await s3.get_object(Bucket=bucket, Key=key))["Body"].read()
                elif operation == "list":
                    await s3.list_objects_v2(Bucket=bucket)
                elif operation == "delete":
                    await s3.delete_object(Bucket=bucket, Key=key)
                else:  # pragma: no cover - a typo in a test
                    raise ValueError(operation)
            except ClientError as error:
                status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                code = error.response.get("Error", {}).get("Code", "")
                if status in (401, 403) or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                    return False
                raise
        return True

    async def eventually_allowed(self, operation: str, bucket: str, key: str | None = None) -> bool:
        return await poll(lambda: self.allowed(operation, bucket, key), self.propagation_seconds)

    async def eventually_denied(self, operation: str, bucket: str, key: str | None = None) -> bool:
        async def denied() -> bool:
            return not await self.allowed(operation, bucket, key)

        return await poll(denied, self.propagation_seconds)


__all__ = [
    "FilesystemProbe",
    "S3AdminProbe",
    "S3Session",
    "StorageProbe",
    "poll",
    "s3_client",
]
