"""Backend profiles: what a scenario needs to know about one storage backend behind ``cosi-driver serve``.

Shared by the end-to-end suite (``tests/e2e``, real Kubernetes) and the emulator scenarios
(``tests/test_emulate_scenarios.py``, the emulated sidecar CI runs instead). A profile says how to
configure ``cosi-driver serve`` for the backend and how to look into the storage behind it: which
buckets and accounts exist, whether a set of credentials works with the access mode it was
granted, and how to take the storage away for a moment. The scenarios never look at storage any
other way.

Adding a backend is one subclass here (and one entry in each suite's list of profiles). An
S3-speaking one extends :class:`S3Profile`, which already lists buckets with the admin keys and
uses the granted credentials on the data path (put/get/list/delete as the access mode allows, and
denied after revoke); it adds only the admin probe, how the storage keeps accounts, and an outage
(:class:`SeaweedFSProfile`, :class:`CephRGWProfile`). A profile is handed its server; which server
(a session's shared one or a private one) is the suite's choice.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cosi_driver.core.types import AccessMode
from cosi_driver.testing.probes import S3AdminProbe, S3Session
from tests.support import wait_until


@dataclass(frozen=True)
class Credentials:
    """A BucketAccess Secret read as a consumer reads it: the ``BucketInfo`` JSON document."""

    bucket_name: str
    authentication_type: str
    protocols: list[str]
    endpoint: str
    region: str
    access_key_id: str
    secret_access_key: str

    @classmethod
    def from_secret(cls, secret: dict[str, Any]) -> Credentials:
        """From a Kubernetes Secret object (``kubectl get -o json``)."""
        assert list(secret["data"]) == ["BucketInfo"], (
            f"the Secret must hold one key, BucketInfo: {list(secret['data'])}"
        )
        return cls.from_bucket_info(base64.b64decode(secret["data"]["BucketInfo"]).decode())

    @classmethod
    def from_bucket_info(cls, text: str) -> Credentials:
        """From the value of the Secret's one key, as the sidecar (or its emulator) wrote it."""
        info = json.loads(text)
        s3 = info["spec"]["secretS3"]
        return cls(
            bucket_name=info["spec"]["bucketName"],
            authentication_type=info["spec"]["authenticationType"],
            protocols=info["spec"]["protocols"],
            endpoint=s3["endpoint"],
            region=s3["region"],
            access_key_id=s3["accessKeyID"],
            secret_access_key=s3["accessSecretKey"],
        )


@dataclass(frozen=True)
class Grant:
    """A granted BucketAccess, as the scenarios know it."""

    bucket: str  # the bucket's name in storage (from Bucket.status.bucketID)
    account: str  # the account's name in storage (from BucketAccess.status.accountID)
    mode: str  # the BucketAccessClass's accessMode: read, write or readwrite
    credentials: Credentials  # what the consumer reads from the Secret


class BackendProfile(abc.ABC):
    #: The pytest id, and the first label of the driver's name (a lowercase DNS label).
    name: str
    #: How :meth:`outage` takes the storage away, for the report.
    outage_how: str
    #: What the sidecar's Events say during the outage: gone storage is UNAVAILABLE; storage that
    #: hangs runs into the driver's own time limit, DEADLINE_EXCEEDED.
    outage_codes: tuple[str, ...] = ("code = Unavailable",)

    @abc.abstractmethod
    def driver_env(self) -> dict[str, str]:
        """Environment for ``cosi-driver serve``: the backend's type and settings (or a config file)."""

    def bucket_class_parameters(self) -> dict[str, str]:
        """Parameters every BucketClass of the scenarios carries for this backend (merged over the example's)."""
        return {}

    @abc.abstractmethod
    def buckets(self) -> set[str]:
        """Names of all buckets in storage."""

    def bucket_exists(self, bucket: str) -> bool:
        return bucket in self.buckets()

    @abc.abstractmethod
    def accounts(self, buckets: Collection[str]) -> set[str]:
        """Names of the accounts in storage that hold access to any of ``buckets``."""

    @abc.abstractmethod
    def check_granted(self, grant: Grant) -> None:
        """Assert that the credentials work in the bucket exactly as ``grant.mode`` allows."""

    @abc.abstractmethod
    def check_revoked(self, grant: Grant) -> None:
        """Assert that the credentials no longer work and the account is gone."""

    @abc.abstractmethod
    def outage(self) -> contextlib.AbstractContextManager[None]:
        """The storage is unreachable inside the block and back, with its data, after it."""

    def close(self) -> None:  # noqa: B027 - optional hook: most profiles hold nothing
        """Release what the profile holds (clients); servers belong to their own fixtures."""


class FilesystemProfile(BackendProfile):
    """The filesystem backend: buckets are directories, accounts are JSON records beside them.

    It serves no S3, so credentials are checked against the account records (keys, bucket, mode)
    rather than by using them. The outage renames the root away and back: that is what an
    unmounted volume looks like to the driver. (Making the root unwritable with chmod would not
    do: the tests run as root, which permission bits do not stop.)
    """

    name = "filesystem"
    outage_how = "root directory renamed away (volume unmounted), then back"

    def __init__(self, root: Path) -> None:
        self.root = root

    def driver_env(self) -> dict[str, str]:
        return {"COSI_DRIVER_BACKEND": "filesystem", "COSI_DRIVER_BACKEND_ROOT": str(self.root)}

    def buckets(self) -> set[str]:
        return {path.name for path in (self.root / "buckets").iterdir() if path.is_dir()}

    def _account_records(self) -> dict[str, dict[str, Any]]:
        directory = self.root / ".cosi" / "accounts"
        return {path.stem: json.loads(path.read_text()) for path in directory.glob("*.json")}

    def accounts(self, buckets: Collection[str]) -> set[str]:
        return {name for name, record in self._account_records().items() if set(record["buckets"]) & set(buckets)}

    def check_granted(self, grant: Grant) -> None:
        record = self._account_records().get(grant.account)
        assert record is not None, f"account {grant.account} is not in storage"
        assert list(record["buckets"]) == [grant.bucket]
        assert (self.root / "buckets" / grant.bucket).is_dir()
        assert (record["access_key_id"], record["secret_access_key"]) == (
            grant.credentials.access_key_id,
            grant.credentials.secret_access_key,
        ), "the Secret's keys are not the account's keys"
        assert record["buckets"][grant.bucket] == grant.mode
        assert grant.credentials.endpoint == (self.root / "buckets").as_uri()

    def check_revoked(self, grant: Grant) -> None:
        assert grant.account not in self._account_records(), f"account {grant.account} is still in storage"

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        away = self.root.with_name(self.root.name + ".unmounted")
        self.root.rename(away)
        try:
            yield
        finally:
            away.rename(self.root)


class S3Profile(BackendProfile):
    """What every S3-speaking backend shares: buckets seen by the storage admin, credentials used
    on the data path at the endpoint the Secret names, exactly as a consumer would.

    A subclass says how to reach the admin (:attr:`probe`) and how the storage keeps accounts
    (:meth:`account_keys`, :meth:`accounts`).
    """

    probe: S3AdminProbe
    #: How long the storage may take to apply a new key or policy.
    propagation_seconds = 10.0

    @abc.abstractmethod
    async def account_keys(self, account: str) -> list[str] | None:
        """The access key ids of an account, or None when the account does not exist."""

    def buckets(self) -> set[str]:
        async def names() -> set[str]:
            async with self.probe.client() as s3:
                return {bucket["Name"] for bucket in (await s3.list_buckets()).get("Buckets", [])}

        return asyncio.run(names())

    def bucket_exists(self, bucket: str) -> bool:
        return asyncio.run(self.probe.bucket_exists(bucket))

    def check_granted(self, grant: Grant) -> None:
        asyncio.run(self._check_granted(grant))

    async def _check_granted(self, grant: Grant) -> None:
        mode, bucket = AccessMode(grant.mode), grant.bucket
        assert await self.account_keys(grant.account) == [grant.credentials.access_key_id], (
            f"account {grant.account} must hold exactly the key in the Secret"
        )
        s3 = S3Session(_secrets(grant.credentials), self.propagation_seconds)
        key = f"cosi-e2e/{grant.account}"
        try:
            if mode.can_write:
                assert await s3.eventually_allowed("put", bucket, key), "the credentials cannot write"
            else:
                await self.probe.put_object(bucket, key, b"put by the storage admin")
                assert await s3.eventually_allowed("get", bucket, key), "the credentials cannot read"
                assert not await s3.allowed("put", bucket, key + ".new"), "read-only credentials could write"
                assert not await s3.allowed("delete", bucket, key), "read-only credentials could delete"
            assert await s3.allowed("get", bucket, key) is mode.can_read
            assert await s3.allowed("list", bucket) is mode.can_read
        finally:
            # Leave the bucket as empty as it was, so that deleting its claim can delete it.
            async with self.probe.client() as admin:
                await admin.delete_object(Bucket=bucket, Key=key)

    def check_revoked(self, grant: Grant) -> None:
        async def check() -> None:
            assert await self.account_keys(grant.account) is None, f"account {grant.account} is still in storage"
            s3 = S3Session(_secrets(grant.credentials), self.propagation_seconds)
            assert await s3.eventually_denied("list", grant.bucket), "revoked credentials still work"

        asyncio.run(check())


def _secrets(credentials: Credentials) -> dict[str, str]:
    return {
        "endpoint": credentials.endpoint,
        "region": credentials.region,
        "accessKeyID": credentials.access_key_id,
        "accessSecretKey": credentials.secret_access_key,
    }


class SeaweedFSProfile(S3Profile):
    """The ``s3`` backend on a real SeaweedFS (S3 + IAM on one endpoint) of the e2e suite's own.

    The outage stops the ``weed`` process and starts it again through the kit's script on the same
    directory and ports: users, keys, policies and data persist across the restart.
    """

    name = "seaweedfs"
    outage_how = "SeaweedFS process stopped, then started again on the same data and ports"

    def __init__(self, server: Any) -> None:
        self.server = server
        self.probe = S3AdminProbe(server.endpoint, server.access_key, server.secret_key)

    def driver_env(self) -> dict[str, str]:
        return {
            "COSI_DRIVER_BACKEND": "s3",
            "COSI_DRIVER_BACKEND_ENDPOINT": self.server.endpoint,
            "COSI_DRIVER_BACKEND_ACCESS_KEY_ID": self.server.access_key,
            "COSI_DRIVER_BACKEND_SECRET_ACCESS_KEY": self.server.secret_key,
        }

    def _iam(self) -> Any:
        import aioboto3

        session = aioboto3.Session(
            aws_access_key_id=self.server.access_key,
            aws_secret_access_key=self.server.secret_key,
            region_name="us-east-1",
        )
        return session.client("iam", endpoint_url=self.server.endpoint)

    async def account_keys(self, account: str) -> list[str] | None:
        from botocore.exceptions import ClientError

        async with self._iam() as iam:
            try:
                await iam.get_user(UserName=account)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "NoSuchEntity":
                    return None
                raise
            keys = (await iam.list_access_keys(UserName=account)).get("AccessKeyMetadata", [])
            return [key["AccessKeyId"] for key in keys]

    def accounts(self, buckets: Collection[str]) -> set[str]:
        """The IAM users whose inline policies name one of ``buckets``."""

        async def users() -> set[str]:
            found = set()
            async with self._iam() as iam:
                for user in (await iam.list_users()).get("Users", []):
                    name = user["UserName"]
                    for policy in (await iam.list_user_policies(UserName=name)).get("PolicyNames", []):
                        document = (await iam.get_user_policy(UserName=name, PolicyName=policy))["PolicyDocument"]
                        text = document if isinstance(document, str) else json.dumps(document)
                        if any(f"arn:aws:s3:::{bucket}" in text for bucket in buckets):
                            found.add(name)
            return found

        return asyncio.run(users())

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        from tests.fixtures.seaweedfs import KIT, weed_binary

        pid = int((self.server.directory / "weed.pid").read_text())
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), 60, "SeaweedFS to stop")
        try:
            yield
        finally:
            env = {
                **os.environ,
                "SEAWEEDFS_DIR": str(self.server.directory),
                "SEAWEEDFS_BASE_PORT": str((urlsplit(self.server.endpoint).port or 0) - 3),  # the S3 port is B+3
                "SEAWEEDFS_ACCESS_KEY": self.server.access_key,
                "SEAWEEDFS_SECRET_KEY": self.server.secret_key,
                **({"WEED": weed} if (weed := weed_binary()) else {}),
            }
            subprocess.run([str(KIT / "start-seaweedfs.sh")], env=env, capture_output=True, timeout=120, check=True)


class CephRGWProfile(S3Profile):
    """The ``ceph-rgw`` backend on a real Ceph RADOS Gateway of the e2e suite's own.

    Accounts are RGW users, looked up with ``radosgw-admin`` straight from RADOS (not through the
    driver's Admin Ops client); the driver marks its users in their display name, which names the
    bucket. The outage freezes radosgw (SIGSTOP by PID, as the Ceph kit's README describes): calls
    hang until the driver's own time limit, then it is thawed with its data.
    """

    name = "ceph-rgw"
    outage_how = "radosgw frozen (SIGSTOP), then thawed (SIGCONT)"
    outage_codes = ("code = Unavailable", "code = DeadlineExceeded")
    MASTER_KEY = "e2e-ceph-master-key-0123456789abcdefghijklmnopq"

    def __init__(self, rgw: Any) -> None:
        self.rgw = rgw
        self.probe = S3AdminProbe(rgw.endpoint, rgw.admin_access_key, rgw.admin_secret_key)
        self._displays: dict[str, str] = {}  # uid -> display name (a shared gateway holds many users)

    def driver_env(self) -> dict[str, str]:
        return {
            "COSI_DRIVER_BACKEND": "ceph-rgw",
            "COSI_DRIVER_BACKEND_ENDPOINT": self.rgw.endpoint,
            "COSI_DRIVER_BACKEND_ADMIN_ACCESS_KEY_ID": self.rgw.admin_access_key,
            "COSI_DRIVER_BACKEND_ADMIN_SECRET_ACCESS_KEY": self.rgw.admin_secret_key,
            "COSI_DRIVER_MASTER_KEY": self.MASTER_KEY,
            # A frozen gateway must fail calls well within the scenario's patience.
            "COSI_DRIVER_OPERATION_TIMEOUT": "5",
        }

    def _radosgw_admin(self, *args: str) -> tuple[int, str]:
        result = subprocess.run(
            ["radosgw-admin", "-c", self.rgw.env["CEPH_RGW_CONF"], *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return result.returncode, result.stdout

    async def account_keys(self, account: str) -> list[str] | None:
        code, out = await asyncio.to_thread(self._radosgw_admin, "user", "info", f"--uid={account}")
        if code != 0:
            return None
        return [key["access_key"] for key in json.loads(out)["keys"]]

    def accounts(self, buckets: Collection[str]) -> set[str]:
        """The RGW users whose display name says the driver made them for one of ``buckets``."""
        code, out = self._radosgw_admin("metadata", "list", "user")
        assert code == 0, "radosgw-admin metadata list user failed"
        found = set()
        for uid in json.loads(out):
            display = self._displays.get(uid)
            if display is None:
                code, info = self._radosgw_admin("user", "info", f"--uid={uid}")
                display = json.loads(info).get("display_name", "") if code == 0 else ""
                if code == 0:  # a user's display name is set when it is made: remembered, not asked again
                    self._displays[uid] = display
            if display.startswith("cosi-driver ") and any(display.endswith(f" on bucket {b}") for b in buckets):
                found.add(uid)
        return found

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        with self.rgw.paused():
            yield
