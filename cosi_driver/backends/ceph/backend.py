"""The ``ceph-rgw`` backend: what each COSI call does on a RADOS Gateway.

* Create: S3 CreateBucket as the admin user (so the driver's user owns the bucket), the core's
  ownership mark as a bucket tag, versioning over S3 and the quota over Admin Ops.
* Grant: one RGW user per BucketAccess with keys derived from the master key, and bucket policy
  statements for it; both steps are idempotent and run side by side.
* Revoke: the statements go, the user and its keys go, the objects it uploaded stay.
* Delete: S3 DeleteBucket after an emptiness check (Pacific deletes a bucket that holds only
  unfinished multipart uploads, stranding their parts), or Admin Ops' purge.
* Lookups use Admin Ops ``GET /admin/bucket``, which shows the owner and the tags of any bucket in
  one request, including buckets the admin user cannot read over S3.

A bucket policy is a single document that PutBucketPolicy replaces wholesale, so every change is
a read-modify-write under a lock per bucket (shared by all grants and revokes of this driver).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from cosi_driver.backends.ceph import policy
from cosi_driver.backends.ceph.admin import AdminAccessDenied, AdminError, AdminOps
from cosi_driver.backends.ceph.users import Users, account_uid
from cosi_driver.backends.s3kit import endpoints
from cosi_driver.backends.s3kit.clients import ClientPool, Connection, read_admin_keys
from cosi_driver.backends.s3kit.contents import find_content
from cosi_driver.backends.s3kit.errors import edge, error_code
from cosi_driver.backends.s3kit.marks import MARK_TAG, write_mark
from cosi_driver.backends.s3kit.names import check_bucket_name
from cosi_driver.core.backend import (
    BackendContext,
    CreateBucket,
    DeleteBucket,
    FoundBucket,
    GrantAccess,
    Granted,
    RevokeAccess,
)
from cosi_driver.core.credentials import KeyPair
from cosi_driver.core.errors import (
    BucketNotEmpty,
    CosiError,
    FailedPrecondition,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
)
from cosi_driver.core.types import AddressingStyle, BucketInfo, S3BucketInfo, S3Credentials

if TYPE_CHECKING:
    from cosi_driver.backends.ceph import CephRgwAccessParams, CephRgwBucketParams, CephRgwConfig

T = TypeVar("T")

INT64_MAX = (1 << 63) - 1
_ABSENT_MEMORY = 1024
_MISSING_BUCKET = ("NoSuchBucket", "NoSuchKey")  # Admin Ops says NoSuchKey for some missing buckets


class CephRgwBackend:
    def __init__(self, config: CephRgwConfig, context: BackendContext) -> None:
        self.config = config
        self.context = context
        self.storage = f"RGW backend {context.name!r}"
        self.connection = endpoints.connection(config)
        self.admin = AdminOps(
            config.endpoint,
            self._admin_keys,
            region=config.region,
            admin_entry=config.admin_entry,
            ssl_context=_ssl(self.connection),
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            use_proxy_from_env=not self.connection.is_loopback,
            describe=self.storage,
        )
        self.clients = ClientPool(self._admin_keys)
        self.users = Users(self.admin, context.driver_name)
        self._owner: tuple[str, str] | None = None  # (admin access key id, owner uid)
        # Buckets the latest lookup found missing (insertion-ordered, bounded). The core looks a
        # bucket up right before creating it, so a create can tag a bucket it made fresh without
        # first reading the tags it cannot have yet.
        self._absent: dict[str, None] = {}

    def _admin_keys(self) -> KeyPair:
        return read_admin_keys(self.config.admin_access_key_id, self.config.admin_secret_access_key, self.storage)

    async def _s3(self) -> Any:
        return await self.clients.s3(self.connection)

    # -- the owner ----------------------------------------------------------------------------

    async def _owner_uid(self, *, refresh: bool = False) -> str:
        """The uid behind the admin keys: it owns our buckets and is named in every policy."""
        access_key = self._admin_keys().access_key_id
        if not refresh and self._owner is not None and self._owner[0] == access_key:
            return self._owner[1]
        user = await self.admin.call("GET", "user", {"access-key": access_key})
        if not isinstance(user, dict) or not user.get("user_id"):
            raise FailedPrecondition(f"{self.storage}: Admin Ops did not name the user of the admin keys")
        tenant = str(user.get("tenant") or "")
        uid = f"{tenant}${user['user_id']}" if tenant else str(user["user_id"])
        self._owner = (access_key, uid)
        return uid

    # -- buckets ------------------------------------------------------------------------------

    async def find_bucket(self, name: str) -> FoundBucket | None:
        check_bucket_name(name)
        info, owner = await _both(self._bucket_info(name), self._owner_uid())
        if info is None:
            self._absent[name] = None
            while len(self._absent) > _ABSENT_MEMORY:
                self._absent.pop(next(iter(self._absent)))
            return None
        if info.get("owner") != owner:
            # Not owned by the driver's user: whatever its tags say, it is not ours to touch.
            return FoundBucket(mark=None)
        tags = info.get("tagset")
        return FoundBucket(mark=tags.get(MARK_TAG) if isinstance(tags, dict) else None)

    async def _bucket_info(self, name: str) -> dict[str, Any] | None:
        try:
            info = await self.admin.call("GET", "bucket", {"bucket": name})
        except AdminError as error:
            if error.rgw_code in _MISSING_BUCKET:
                return None
            raise
        return info if isinstance(info, dict) else None

    async def create_bucket(self, request: CreateBucket[CephRgwBucketParams]) -> BucketInfo:
        name = check_bucket_name(request.name)
        params = request.params
        quota = _quota(params.max_size, params.max_objects)  # refused before anything is made
        s3 = await self._s3()
        with edge(f"create bucket {name!r}", self.storage):
            try:
                # No LocationConstraint: RGW compares it with its zonegroup's api_name, which has
                # nothing to do with the region the driver reports to consumers.
                await s3.create_bucket(Bucket=name)
            except Exception as error:
                # RGW answers 200 when the owner re-creates its own bucket; other servers say this.
                if error_code(error) != "BucketAlreadyOwnedByYou":
                    raise
            # One after the other: each rewrites the bucket's metadata object, and RGW answers
            # concurrent rewrites with 500 UnknownError instead of retrying them (measured).
            if name in self._absent:
                await s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": MARK_TAG, "Value": request.mark}]})
            else:
                await write_mark(s3, name, request.mark)  # a retry: keep tags others may have added
            self._absent.pop(name, None)
            if params.versioning:
                await s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if quota is not None:
            # A JSON body takes max_size in bytes; the query form takes max-size-kb and, when that
            # is left out, silently sets the size limit to 0 (every write refused).
            owner = await self._owner_uid()
            await self.admin.call("PUT", "bucket", {"quota": "", "uid": owner, "bucket": name}, quota)
        return self.bucket_info(name)

    def bucket_info(self, name: str) -> BucketInfo:
        # The driver's clients use path addressing; RGW serves virtual hosts only with DNS set up.
        return S3BucketInfo(
            region=self.config.region,
            bucket_name=name,
            endpoint=self.config.public_endpoint or self.config.endpoint,
            addressing_style=AddressingStyle.PATH,
        )

    async def delete_bucket(self, request: DeleteBucket) -> None:
        name = check_bucket_name(request.name)
        if request.purge:
            # One request removes every object, version and unfinished upload, whoever wrote them.
            try:
                await self.admin.call("DELETE", "bucket", {"bucket": name, "purge-objects": True})
            except AdminError as error:
                if error.rgw_code not in _MISSING_BUCKET:
                    raise
            return
        s3 = await self._s3()
        with edge(f"delete bucket {name!r}", self.storage):
            # RGW's DeleteBucket refuses objects, old versions and delete markers itself, but not
            # unfinished multipart uploads (it deletes the bucket and strands their parts).
            try:
                uploads = await s3.list_multipart_uploads(Bucket=name, MaxUploads=1)
            except Exception as error:
                if error_code(error) == "NoSuchBucket":
                    return
                raise
            if uploads.get("Uploads"):
                raise BucketNotEmpty(name, "it holds unfinished multipart uploads")
            try:
                await s3.delete_bucket(Bucket=name)
            except Exception as error:
                if error_code(error) == "BucketNotEmpty":
                    raise BucketNotEmpty(name, await find_content(s3, name) or "it holds objects") from None
                if error_code(error) != "NoSuchBucket":
                    raise

    # -- access -------------------------------------------------------------------------------

    async def grant_access(self, request: GrantAccess[CephRgwAccessParams]) -> Granted:
        # One bucket per grant until multi-bucket grants land here (multi_bucket_grants is off, so
        # the core never sends more); the uid is derived from (bucket, name) as before v1alpha2.
        bucket = request.bucket
        uid = account_uid(bucket, request.name)
        keys = self.context.credentials.derive(backend=self.context.name, bucket=bucket, account=uid)
        owner = await self._owner_uid()
        statements = [
            policy.owner_statement(owner, bucket),
            *policy.access_statements(uid, bucket, request.mode),
        ]
        await _both(
            self.users.ensure(uid, self.users.display_name(bucket, request.name), keys),
            self._update_policy(bucket, lambda document: policy.with_statements(document, *statements)),
        )
        credentials = S3Credentials(
            access_key_id=keys.access_key_id,
            secret_access_key=keys.secret_access_key,
            endpoint=self.config.public_endpoint or self.config.endpoint,
            region=self.config.region,
        )
        return Granted(account=uid, credentials=credentials, key_version=self.context.credentials.key_version)

    async def revoke_access(self, request: RevokeAccess) -> None:
        sids = policy.access_sids(request.account)
        await _both(
            self._update_policy(
                request.bucket, lambda document: policy.without_statements(document, *sids), missing_ok=True
            ),
            self.users.delete(request.account),
        )

    async def _update_policy(
        self, bucket: str, change: Callable[[dict[str, Any]], dict[str, Any]], *, missing_ok: bool = False
    ) -> None:
        """Read, change and write the bucket's policy, one change per bucket at a time."""
        s3 = await self._s3()
        async with self.context.locks.hold(("ceph-rgw bucket policy", self.config.endpoint, bucket)):
            with edge(f"update the policy of bucket {bucket!r}", self.storage):
                try:
                    text = (await s3.get_bucket_policy(Bucket=bucket))["Policy"]
                except Exception as error:
                    code = error_code(error)
                    if code == "NoSuchBucket" and missing_ok:
                        return
                    if code != "NoSuchBucketPolicy":
                        raise
                    text = None
                try:
                    document = policy.parse(text)
                except ValueError:
                    raise FailedPrecondition(
                        f"bucket {bucket!r} has a bucket policy that is not a JSON object; fix or remove it"
                    ) from None
                changed = change(document)
                if changed == document:
                    return
                try:
                    await s3.put_bucket_policy(Bucket=bucket, Policy=policy.render(changed))
                except Exception as error:
                    if error_code(error) == "NoSuchBucket" and missing_ok:
                        return
                    if error_code(error) == "InvalidRange":  # RGW's answer to a body over rgw_max_put_param_size
                        raise ResourceExhausted(
                            f"the policy of bucket {bucket!r} would exceed what {self.storage} accepts "
                            "(rgw_max_put_param_size, 1 MiB by default: about 900 BucketAccesses per bucket)"
                        ) from None
                    raise

    # -- lifecycle ----------------------------------------------------------------------------

    async def check_health(self) -> None:
        try:
            await self._owner_uid(refresh=True)
        except AdminAccessDenied:
            raise await self._diagnose_access_denied() from None

    async def _diagnose_access_denied(self) -> CosiError:
        """Admin Ops says AccessDenied for bad keys and for missing caps alike; S3 tells them apart."""
        s3 = await self._s3()
        try:
            await s3.list_buckets()
        except Exception as error:
            if error_code(error) in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                return PermissionDenied(
                    f"{self.storage}: the gateway rejects the configured admin credentials (S3 and Admin Ops "
                    "both answer AccessDenied); fix admin_access_key_id / admin_secret_access_key"
                )
            with edge("check the admin credentials over S3", self.storage):
                raise
        return PermissionDenied(
            f"{self.storage}: the admin credentials are valid but their user lacks the admin caps the driver "
            "needs; grant them with: radosgw-admin caps add --uid=<admin user> --caps='users=*;buckets=*'"
        )

    async def close(self) -> None:
        await _all(self.admin.close(), self.clients.close())


def _ssl(connection: Connection) -> ssl.SSLContext | bool:
    """aiohttp's form of the connection's TLS settings (the S3 clients take botocore's)."""
    verify = connection.verify
    if verify is False or not connection.endpoint.startswith("https://"):
        return verify is not False
    # An unreadable ca_bundle is an OSError, which the driver reports at start-up naming the backend.
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)


def _quota(max_size: int | None, max_objects: int | None) -> dict[str, Any] | None:
    if max_size is None and max_objects is None:
        return None
    for parameter, value in (("maxSizePerBucket", max_size), ("maxObjectsPerBucket", max_objects)):
        if value is not None and value > INT64_MAX:
            raise OutOfRange(f"parameters: {parameter} {value} is larger than RGW's limit of {INT64_MAX}")
    return {
        "enabled": True,
        "check_on_raw": False,
        "max_size": -1 if max_size is None else max_size,
        "max_objects": -1 if max_objects is None else max_objects,
    }


async def _all(*steps: Awaitable[Any]) -> list[Any]:
    """Run independent steps side by side; let every one finish, then raise the first failure.

    Unlike a TaskGroup this raises the step's own (core) error, not an ExceptionGroup, and unlike a
    bare gather it never leaves a step running, unobserved, after another one failed.
    """
    results = await asyncio.gather(*steps, return_exceptions=True)
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        raise next((f for f in failures if isinstance(f, CosiError)), failures[0])
    return results


async def _both(first: Awaitable[T], second: Awaitable[Any]) -> tuple[T, Any]:
    one, two = await _all(first, second)
    return one, two
