"""``example-kv``: buckets and accounts in one JSON file; credentials derived from the master key.

Small on purpose: it shows everything a third-party backend needs (a config dataclass, parameter
dataclasses, the five operations, health, and one ``BackendType`` behind an entry point).
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosi_driver.sdk import (
    PATH,
    STRING,
    AccessParams,
    BackendContext,
    BackendType,
    BucketInfo,
    BucketNotEmpty,
    BucketParams,
    CreateBucket,
    DeleteBucket,
    FoundBucket,
    GrantAccess,
    Granted,
    RevokeAccess,
    S3BucketInfo,
    S3Credentials,
    Unavailable,
    Versioning,
    atomic_write_json,
    seconds,
    setting,
)


@dataclass(frozen=True)
class ExampleConfig:
    path: Path = setting(PATH, doc="JSON file holding every bucket and account.")
    endpoint: str = setting(STRING, default="http://example.invalid", doc="Endpoint reported to consumers.")
    delay_seconds: float = setting(seconds(), default=0.0, doc="Test hook: sleep this long in every operation.")
    pause_file: Path | None = setting(PATH, default=None, doc="Test hook: operations wait while this file exists.")


@dataclass(frozen=True)
class ExampleBucketParams(Versioning, BucketParams):
    pass


@dataclass(frozen=True)
class ExampleAccessParams(AccessParams):
    pass


@dataclass
class _State:
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)


class ExampleBackend:
    def __init__(self, config: ExampleConfig, context: BackendContext) -> None:
        self.config = config
        self.context = context
        self._lock = asyncio.Lock()

    def _load(self) -> _State:
        try:
            raw = json.loads(self.config.path.read_text())
        except FileNotFoundError:
            return _State()
        return _State(raw["buckets"], raw["accounts"])

    def _save(self, state: _State) -> None:
        atomic_write_json(self.config.path, {"buckets": state.buckets, "accounts": state.accounts})

    async def _hooks(self) -> None:
        if self.config.pause_file is not None:
            waiting = self.config.pause_file.with_suffix(".waiting")
            waiting.touch()
            while self.config.pause_file.exists():
                await asyncio.sleep(0.02)
            waiting.unlink(missing_ok=True)
        if self.config.delay_seconds:
            await asyncio.sleep(self.config.delay_seconds)

    async def find_bucket(self, name: str) -> FoundBucket | None:
        bucket = self._load().buckets.get(name)
        return None if bucket is None else FoundBucket(mark=bucket.get("mark"))

    async def create_bucket(self, request: CreateBucket[ExampleBucketParams]) -> BucketInfo:
        await self._hooks()
        async with self._lock:
            state = self._load()
            bucket = state.buckets.setdefault(request.name, {"objects": []})
            bucket.update(mark=request.mark, versioning=request.params.versioning)
            self._save(state)
        return self.bucket_info(request.name)

    def bucket_info(self, name: str) -> BucketInfo:
        return S3BucketInfo(region="example", bucket_name=name, endpoint=self.config.endpoint)

    async def delete_bucket(self, request: DeleteBucket) -> None:
        await self._hooks()
        async with self._lock:
            state = self._load()
            bucket = state.buckets.get(request.name)
            if bucket is None:
                return
            if bucket["objects"] and not request.purge:
                raise BucketNotEmpty(request.name)
            del state.buckets[request.name]
            self._save(state)

    async def grant_access(self, request: GrantAccess[ExampleAccessParams]) -> Granted:
        await self._hooks()
        account = f"{request.bucket}.{request.name}"
        keys = self.context.credentials.derive(backend=self.context.name, bucket=request.bucket, account=account)
        async with self._lock:
            state = self._load()
            state.accounts[account] = {
                "bucket": request.bucket,
                "access_key_id": keys.access_key_id,
                "mode": request.mode.value,  # one bucket per grant: multi_bucket_grants is off
            }
            self._save(state)
        credentials = S3Credentials(keys.access_key_id, keys.secret_access_key, self.config.endpoint, "example")
        return Granted(account=account, credentials=credentials, key_version=self.context.credentials.key_version)

    async def revoke_access(self, request: RevokeAccess) -> None:
        await self._hooks()
        async with self._lock:
            state = self._load()
            if state.accounts.pop(request.account, None) is not None:
                self._save(state)

    async def check_health(self) -> None:
        if not os.access(self.config.path.parent, os.W_OK):
            raise Unavailable(f"{self.config.path.parent} is not writable")

    async def close(self) -> None:
        return None


BACKEND = BackendType(
    type_name="example-kv",
    summary="Buckets in a JSON file, credentials derived from the master key (a test plug-in).",
    config=ExampleConfig,
    bucket_params=ExampleBucketParams,
    access_params=ExampleAccessParams,
    build=ExampleBackend,
    derives_credentials=True,
)


class ExampleProbe:
    """The acceptance suite's out-of-band view of an ``example-kv`` store (its JSON file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            state = {"buckets": {}, "accounts": {}}
        return state

    async def bucket_exists(self, bucket: str) -> bool:
        return bucket in self._state()["buckets"]

    async def put_object(self, bucket: str, key: str, data: bytes) -> None:
        state = self._state()
        state["buckets"][bucket]["objects"].append(key)
        atomic_write_json(self.path, state)

    async def object_exists(self, bucket: str, key: str) -> bool:
        return key in self._state()["buckets"].get(bucket, {}).get("objects", [])

    async def create_foreign_bucket(self, bucket: str) -> None:
        state = self._state()
        state["buckets"][bucket] = {"objects": []}
        atomic_write_json(self.path, state)

    async def remove_foreign_bucket(self, bucket: str) -> None:
        state = self._state()
        state["buckets"].pop(bucket, None)
        atomic_write_json(self.path, state)

    async def account_exists(self, account: str) -> bool:
        return account in self._state()["accounts"]
