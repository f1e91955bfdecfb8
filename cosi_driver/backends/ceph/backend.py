"""The ``ceph-rgw`` backend: what each COSI call does on a RADOS Gateway.

* Create: S3 CreateBucket as the admin user (so the driver's user owns the bucket), the core's
  ownership mark as a bucket tag, versioning over S3 and the quota over Admin Ops.
* Grant: one RGW user per BucketAccess with keys derived from the master key, and statements for
  it in the policy of each bucket it is granted, each with that bucket's mode; all steps are
  idempotent and run side by side (one bucket's policy at a time, buckets in parallel).
* Revoke: the statements go from every bucket the core names, the user and its keys go, the
  objects it uploaded stay.
* Existing (brownfield) buckets: found like any other (no mark of ours), never deleted by the core;
  a grant names the bucket's real owner in the owner statement. RGW lets only a bucket's owner
  change its policy (measured: the admin user gets AccessDenied on another user's bucket), so an
  existing bucket is grantable when the driver's admin user owns it.
* Delete: S3 DeleteBucket after an emptiness check (Pacific deletes a bucket that holds only
  unfinished multipart uploads, stranding their parts), or Admin Ops' purge.
* Lookups use Admin Ops ``GET /admin/bucket``, which shows the owner and the tags of any bucket in
  one request, including buckets the admin user cannot read over S3.

A bucket policy is a single document that PutBucketPolicy replaces wholesale, with no version
to write against, so every change is a read-modify-write under a lock per bucket: a keyed lock
among the tasks of this process, a lease in the shared state store among driver pods, and a
check after each write that the change survived (see ``_update_policy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from cosi_driver.backends.ceph import policy
from cosi_driver.backends.ceph.admin import AdminAccessDenied, AdminError, AdminOps
from cosi_driver.backends.ceph.users import Users, account_uid
from cosi_driver.backends.lease import ACCOUNT_LEASE_SECONDS, Leases, backoff
from cosi_driver.backends.s3kit import endpoints
from cosi_driver.backends.s3kit.clients import ClientPool, Connection, read_admin_keys
from cosi_driver.backends.s3kit.contents import find_content
from cosi_driver.backends.s3kit.errors import deleted_meanwhile, edge, error_code
from cosi_driver.backends.s3kit.marks import MARK_TAG, write_mark
from cosi_driver.backends.s3kit.names import check_bucket_name
from cosi_driver.core.backend import (
    AccessedBucket,
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
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from cosi_driver.core.types import AddressingStyle, BucketInfo, S3BucketInfo, S3Credentials

if TYPE_CHECKING:
    from cosi_driver.backends.ceph import CephRgwAccessParams, CephRgwBucketParams, CephRgwConfig

T = TypeVar("T")

INT64_MAX = (1 << 63) - 1
_ABSENT_MEMORY = 1024
_MISSING_BUCKET = ("NoSuchBucket", "NoSuchKey")  # Admin Ops says NoSuchKey for some missing buckets
#: Read-modify-write rounds of one policy update before giving up on a writer that keeps replacing it.
POLICY_ATTEMPTS = 5
#: How long a policy lease holds without its holder: a read, a write and a check take milliseconds;
#: a pod that dies holding one delays that bucket's grants by at most this.
POLICY_LEASE_SECONDS = 30.0

log = structlog.get_logger("cosi_driver.backends.ceph")


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
        self._leases = Leases(context.store, "ceph-rgw-policy", ttl=POLICY_LEASE_SECONDS, wait=POLICY_LEASE_SECONDS)
        self._account_leases = Leases(
            context.store, "ceph-rgw-account", ttl=ACCOUNT_LEASE_SECONDS, wait=ACCOUNT_LEASE_SECONDS
        )
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

    @staticmethod
    def account_name(scope: str, access_name: str) -> str:
        """The RGW uid a grant is made as, known before any storage call (core ``NamesAccounts``)."""
        return account_uid(scope, access_name)

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
            with deleted_meanwhile(name):
                # One after the other: each rewrites the bucket's metadata object, and RGW answers
                # concurrent rewrites with 500 UnknownError instead of retrying them (measured).
                if name in self._absent:
                    tags = {"TagSet": [{"Key": MARK_TAG, "Value": request.mark}]}
                    await s3.put_bucket_tagging(Bucket=name, Tagging=tags)
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
        return S3BucketInfo(
            region=self.config.region,
            bucket_name=name,
            endpoint=self.config.public_endpoint or self.config.endpoint,
            addressing_style=AddressingStyle.PATH,  # RGW without bucket DNS: path style only
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
        uid = account_uid(request.scope, request.name)
        keys = self.context.credentials.derive(backend=self.context.name, bucket=request.scope, account=uid)
        buckets = [check_bucket_name(granted.bucket, "bucket") for granted in request.buckets]
        owners = await _all(*(self._bucket_owner(granted) for granted in request.buckets))

        def grant(granted: AccessedBucket, owner: str) -> Awaitable[None]:
            statements = policy.grant_statements(uid, owner, granted.bucket, granted.mode)
            return self._update_policy(
                granted.bucket, lambda document: policy.with_statements(document, *statements), owner=owner
            )

        async with self._account(uid):
            await _all(
                self.users.ensure(uid, self.users.display_name(buckets, request.name), keys),
                *(grant(granted, owner) for granted, owner in zip(request.buckets, owners, strict=True)),
            )
        credentials = S3Credentials(
            access_key_id=keys.access_key_id,
            secret_access_key=keys.secret_access_key,
            endpoint=self.config.public_endpoint or self.config.endpoint,
            region=self.config.region,
        )
        return Granted(account=uid, credentials=credentials, key_version=self.context.credentials.key_version)

    async def _bucket_owner(self, granted: AccessedBucket) -> str:
        """Who owns a granted bucket: the admin user for ours, Admin Ops says for an existing one."""
        if not granted.existing:
            return await self._owner_uid()
        # The admin's uid too: a refusal on another user's bucket names both (see _not_owned).
        info, _ = await _both(self._bucket_info(granted.bucket), self._owner_uid())
        if info is None or not info.get("owner"):
            raise NotFound(f"bucket {granted.bucket!r} does not exist in {self.storage}")
        return str(info["owner"])

    async def revoke_access(self, request: RevokeAccess) -> None:
        sids = policy.access_sids(request.account)

        def revoke(bucket: str) -> Awaitable[None]:
            return self._update_policy(
                bucket, lambda document: policy.without_statements(document, *sids), missing_ok=True
            )

        async with self._account(request.account):
            await _all(*(revoke(bucket) for bucket in request.buckets), self.users.delete(request.account))

    def _account(self, uid: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Grant and Revoke of one account, one at a time across driver pods.

        Each runs its user step and its policy steps side by side; interleaved across two pods
        (the old leader retrying a Grant while the new one revokes) they could end with a user
        whose statements are gone (keys handed out that do nothing) or the reverse. Holding the
        account's lease makes the later call's outcome the final one. Always taken before any
        bucket's policy lease, so the two kinds never wait on each other in a cycle.
        """
        return self._account_leases.hold(f"{self.config.endpoint}/{uid}", f"RGW user {uid!r}")

    async def _update_policy(
        self,
        bucket: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        missing_ok: bool = False,
        owner: str | None = None,
    ) -> None:
        """Change the bucket's policy so that ``change`` holds in it, across driver processes.

        ``change`` must be idempotent (add our statements, or remove them). Within this process
        the keyed lock serialises the read-modify-write; between processes sharing the state
        store a lease does (see :mod:`cosi_driver.backends.lease`). Writers outside both (an older
        driver during a rolling upgrade, an operator, a holder slower than its lease) can still
        overwrite us, so after each write the policy is read again: when our change no longer
        holds in it, the update starts over from what is there now (bounded, with backoff).
        Statements of other accesses missing from that document are left to their own writers'
        checks: from here a lost update cannot be told apart from that access's revoke.

        ``owner``: the bucket's owner, when known, to explain a refusal on a bucket the driver's
        admin user does not own.
        """
        s3 = await self._s3()
        describe = f"the policy of bucket {bucket!r}"
        async with (
            self.context.locks.hold(("ceph-rgw bucket policy", self.config.endpoint, bucket)),
            self._leases.hold(f"{self.config.endpoint}/{bucket}", describe),
        ):
            with self._not_owned(bucket, owner), edge(f"update {describe}", self.storage):
                for attempt in range(POLICY_ATTEMPTS):
                    if attempt:
                        await asyncio.sleep(backoff(attempt, first=0.05, longest=1.0))
                    document = await self._read_policy(s3, bucket, missing_ok)
                    if document is None:
                        return
                    changed = change(document)
                    if changed == document:
                        return
                    if not await self._write_policy(s3, bucket, changed, missing_ok):
                        return
                    after = await self._read_policy(s3, bucket, missing_ok)
                    if after is None or change(after) == after:
                        return
                    log.warning(
                        "another writer replaced the bucket policy between our write and our check; "
                        "applying the change again",
                        backend=self.context.name,
                        bucket=bucket,
                    )
        raise Unavailable(
            f"{describe} in {self.storage} kept being replaced by another writer ({POLICY_ATTEMPTS} attempts); "
            "something outside this driver rewrites it, retry"
        )

    async def _read_policy(self, s3: Any, bucket: str, missing_ok: bool) -> dict[str, Any] | None:
        """The bucket's policy (an empty one when it has none); None when the bucket is gone and that is fine."""
        try:
            text = (await s3.get_bucket_policy(Bucket=bucket))["Policy"]
        except Exception as error:
            code = error_code(error)
            if code == "NoSuchBucket" and missing_ok:
                return None
            if code != "NoSuchBucketPolicy":
                raise
            text = None
        try:
            return policy.parse(text)
        except ValueError:
            raise FailedPrecondition(
                f"bucket {bucket!r} has a bucket policy that is not a JSON object; fix or remove it"
            ) from None

    async def _write_policy(self, s3: Any, bucket: str, document: dict[str, Any], missing_ok: bool) -> bool:
        """Store ``document`` as the bucket's policy; False when the bucket is gone and that is fine."""
        try:
            await s3.put_bucket_policy(Bucket=bucket, Policy=policy.render(document))
        except Exception as error:
            if error_code(error) == "NoSuchBucket" and missing_ok:
                return False
            if error_code(error) == "InvalidRange":  # RGW's answer to a body over rgw_max_put_param_size
                raise ResourceExhausted(
                    f"the policy of bucket {bucket!r} would exceed what {self.storage} accepts "
                    "(rgw_max_put_param_size, 1 MiB by default: about 900 BucketAccesses per bucket)"
                ) from None
            raise
        return True

    @contextlib.contextmanager
    def _not_owned(self, bucket: str, owner: str | None) -> Iterator[None]:
        try:
            yield
        except PermissionDenied:
            if owner is None or self._owner is None or owner == self._owner[1]:
                raise
            raise FailedPrecondition(
                f"bucket {bucket!r} is owned by RGW user {owner!r}, and RGW lets only a bucket's owner change "
                f"its policy; to grant it through the driver, make the driver's admin user {self._owner[1]!r} "
                f"its owner (radosgw-admin bucket link --bucket={bucket} --uid={self._owner[1]})"
            ) from None

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
