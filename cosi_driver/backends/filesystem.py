"""The embedded filesystem backend: buckets are directories. For development and tests only.

Modelled on Thanos objstore's FILESYSTEM provider. It needs no server, keeps everything under
one root directory and survives restarts, which makes it the tests' backend and the smallest
complete example of a backend (registered as development-only, never a default). It does not
serve S3: the returned credentials are well-formed and stable, but only the driver itself checks
them.

Layout under ``root``::

    buckets/<bucket>/...           the bucket's objects (plain files)
    .cosi/marks/<bucket>.json      the core's ownership mark for the bucket
    .cosi/accounts/<account>.json  one account: its buckets with their access modes, and keys (0600)

One account may cover several buckets (v1alpha2 grants), each with its own mode; records written
before v1alpha2 hold one ``bucket`` and ``mode`` and are read as a one-bucket map.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosi_driver.backends.accounts import access_digest
from cosi_driver.core.backend import (
    BackendContext,
    BackendType,
    CreateBucket,
    DeleteBucket,
    FoundBucket,
    GrantAccess,
    Granted,
    RevokeAccess,
)
from cosi_driver.core.errors import BucketNotEmpty, InvalidArgument, Unavailable
from cosi_driver.core.files import atomic_write_json, create_json, ensure_private_dir, read_json, remove_file
from cosi_driver.core.options import PATH, STRING, option
from cosi_driver.core.params import AccessParams, BucketParams
from cosi_driver.core.secret import Secret
from cosi_driver.core.types import AddressingStyle, BucketInfo, S3BucketInfo, S3Credentials


@dataclass(frozen=True)
class FilesystemConfig:
    root: Path = option(
        PATH, default=Path("/var/lib/cosi-driver/filesystem"), doc="Directory holding buckets and accounts."
    )
    region: str = option(STRING, default="local", doc="Region reported in BucketInfo and credentials.")


@dataclass(frozen=True)
class FilesystemBucketParams(BucketParams):
    """Only the deletion policy: a directory has no versioning or quotas."""


@dataclass(frozen=True)
class FilesystemAccessParams(AccessParams):
    pass


#: A file name holds 255 bytes on every common filesystem; the mark file adds ".json" to the name.
MAX_NAME_BYTES = 250


def _check_bucket_name(name: str) -> str:
    if name in (".", "..") or "/" in name or "\x00" in name or name.startswith(".cosi"):
        raise InvalidArgument(f"name {name!r} cannot be a directory name: no '/', not '.' or '..', not '.cosi*'")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidArgument(
            f"name {name[:40]!r}... is too long for the filesystem backend: at most {MAX_NAME_BYTES} bytes (UTF-8)"
        )
    return name


class FilesystemBackend:
    def __init__(self, config: FilesystemConfig, context: BackendContext) -> None:
        self.config = config
        self.context = context
        self.root = config.root.resolve()
        self._buckets = self.root / "buckets"
        self._marks = self.root / ".cosi" / "marks"
        self._accounts = self.root / ".cosi" / "accounts"
        for directory in (self._buckets, self._marks, self._accounts):
            ensure_private_dir(directory)

    @contextlib.contextmanager
    def _storage(self, doing: str) -> Iterator[None]:
        """Treat a missing or failing root as a storage outage (UNAVAILABLE, retried by the sidecar).

        The root is usually a volume, and a volume can go away (unmounted, detached, full). The
        check comes first so that a delete or a revoke never "succeeds" against an absent root:
        the bucket or account would reappear with the volume, owned by nothing.
        """
        if not self._buckets.is_dir():
            raise Unavailable(
                f"filesystem root {self.root} is not available (its buckets directory is missing; "
                "is the volume mounted?)"
            )
        try:
            yield
        except OSError as error:
            raise Unavailable(
                f"filesystem root {self.root} failed while trying to {doing}: {error.strerror or type(error).__name__}"
            ) from None

    # -- buckets ------------------------------------------------------------------------------

    async def find_bucket(self, name: str) -> FoundBucket | None:
        path = self._buckets / _check_bucket_name(name)
        with self._storage(f"look up bucket {name!r}"):
            if not path.is_dir():
                return None
            mark = read_json(self._marks / f"{name}.json")
            return FoundBucket(mark=mark.get("mark") if isinstance(mark, dict) else None)

    async def create_bucket(self, request: CreateBucket[FilesystemBucketParams]) -> BucketInfo:
        name = _check_bucket_name(request.name)
        with self._storage(f"create bucket {name!r}"):
            (self._buckets / name).mkdir(mode=0o700, exist_ok=True)
            await asyncio.to_thread(atomic_write_json, self._marks / f"{name}.json", {"mark": request.mark})
        return self.bucket_info(name)

    def bucket_info(self, name: str) -> BucketInfo:
        return S3BucketInfo(
            region=self.config.region,
            bucket_name=name,
            endpoint=self._buckets.as_uri(),
            addressing_style=AddressingStyle.PATH,
        )

    async def delete_bucket(self, request: DeleteBucket) -> None:
        path = self._buckets / _check_bucket_name(request.name)
        with self._storage(f"delete bucket {request.name!r}"):
            if request.purge:
                await asyncio.to_thread(shutil.rmtree, path, True)
            elif await asyncio.to_thread(_holds_files, path):
                raise BucketNotEmpty(request.name)
            else:
                await asyncio.to_thread(shutil.rmtree, path, True)
            await asyncio.to_thread(remove_file, self._marks / f"{request.name}.json")

    # -- access -------------------------------------------------------------------------------

    @staticmethod
    def account_name(scope: str, access_name: str) -> str:
        """``scope`` is the bucket for a per-bucket (v1alpha1) account, "" for a name-scoped one."""
        return f"acct-{access_digest(scope, access_name, 24)}"

    async def grant_access(self, request: GrantAccess[FilesystemAccessParams]) -> Granted:
        account = self.account_name(request.scope, request.name)
        path = self._accounts / f"{account}.json"
        modes = {bucket.bucket: bucket.mode.value for bucket in request.buckets}
        with self._storage(f"grant access to bucket(s) {', '.join(map(repr, modes))}"):
            record = read_json(path)
            if not isinstance(record, dict):
                fresh = {
                    "name": request.name,
                    "buckets": modes,
                    "access_key_id": "FS" + secrets.token_hex(9).upper(),
                    "secret_access_key": secrets.token_hex(20),
                }
                # First writer wins: another driver (a replica during a leader handover) may be
                # granting the same access now, and its keys may already be in a Secret.
                created = await asyncio.to_thread(create_json, path, fresh)
                record = fresh if created else read_json(path)
            if not isinstance(record, dict):
                raise Unavailable(f"the account record of {request.name!r} vanished while it was granted; retry")
            if _granted_modes(record) != modes:
                # The BucketAccessClass changed between v1alpha1 retries (the core refuses a changed
                # v1alpha2 grant before it gets here): apply the new modes, keep the keys.
                record = {key: value for key, value in record.items() if key not in ("bucket", "mode")}
                record["buckets"] = modes
                await asyncio.to_thread(atomic_write_json, path, record)
        credentials = S3Credentials(
            access_key_id=record["access_key_id"],
            secret_access_key=Secret(record["secret_access_key"]),
            endpoint=self._buckets.as_uri(),
            region=self.config.region,
        )
        return Granted(account=account, credentials=credentials)

    async def revoke_access(self, request: RevokeAccess) -> None:
        try:
            _check_bucket_name(request.account)
        except InvalidArgument:
            return  # an id may name any account (NUL, '/', 300 bytes); no file of ours is called that
        with self._storage(f"revoke account {request.account!r}"):
            await asyncio.to_thread(remove_file, self._accounts / f"{request.account}.json")

    # -- lifecycle ----------------------------------------------------------------------------

    async def check_health(self) -> None:
        if not os.access(self._buckets, os.W_OK | os.X_OK):
            raise Unavailable(f"filesystem root {self.root} is not writable")

    async def close(self) -> None:
        return None


def _granted_modes(record: dict[str, Any]) -> dict[str, str]:
    """An account record's bucket -> mode map, in either record format."""
    if isinstance(record.get("buckets"), dict):
        return {str(bucket): str(mode) for bucket, mode in record["buckets"].items()}
    return {str(record.get("bucket")): str(record.get("mode"))}


def _holds_files(path: Path) -> bool:
    try:
        return any(files for _, _, files in os.walk(path))
    except FileNotFoundError:
        return False


BACKEND = BackendType(
    type_name="filesystem",
    summary="Buckets are directories under a root directory. For development and tests only.",
    config=FilesystemConfig,
    bucket_params=FilesystemBucketParams,
    access_params=FilesystemAccessParams,
    build=FilesystemBackend,
    multi_bucket_grants=True,
    development_only=True,
)
