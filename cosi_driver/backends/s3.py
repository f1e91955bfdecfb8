"""The ``s3`` backend: any server that speaks S3 for data and an AWS-style IAM API for users.

AWS itself, SeaweedFS, and others. Buckets are named exactly as the COSI name (consumers learn the
name from the sidecar's Secret); each BucketAccess becomes one IAM user with one access key and
one inline policy that allows each granted bucket exactly its own access mode and names no other
bucket (Allow statements only: SeaweedFS does not evaluate Deny, measured).

Whose users are these? A user the driver made has a name it derived, lives under the IAM path
``/cosi-driver/`` and carries tags naming the driver and what it was made for, where the server
keeps paths and tags (AWS does; SeaweedFS ignores both, so there the derived name is the marker).
Two name shapes, told apart by the character before the digest:

* ``<user_prefix><bucket>-<digest of bucket and access name>``: an account of one bucket, as every
  v1alpha1 grant makes (and every release before v1alpha2 made);
* ``<user_prefix><access name>_<digest of the access name>``: a v1alpha2 account, which belongs to
  its name alone and may hold several buckets (bucket names cannot contain ``_``).

Revoke refuses an account of neither shape, a one-bucket account not derived for the revoked
bucket, and a user whose path or tags say it belongs to someone else.

The secret IAM generates is shown once, so it is kept in the driver's state store through
:class:`~cosi_driver.core.credentials.CredentialKit` and returned again by a retried Grant, after
checking with ListAccessKeys that the key still exists. If the record was lost, Grant rotates:
it deletes the user's old keys and makes a new one, because a Grant that fails forever is worse
than a Secret that is written once with a fresh key.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from cosi_driver.backends.accounts import access_digest
from cosi_driver.backends.lease import ACCOUNT_LEASE_SECONDS, Leases
from cosi_driver.backends.s3kit import endpoints
from cosi_driver.backends.s3kit import iam as iam_kit
from cosi_driver.backends.s3kit.clients import ADDRESSING_STYLES, ClientPool, read_admin_keys
from cosi_driver.backends.s3kit.contents import find_content, purge
from cosi_driver.backends.s3kit.errors import deleted_meanwhile, edge, error_code, is_missing
from cosi_driver.backends.s3kit.marks import read_mark, write_mark
from cosi_driver.backends.s3kit.names import check_bucket_name
from cosi_driver.backends.s3kit.policy import grants_document
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
from cosi_driver.core.credentials import KeyPair
from cosi_driver.core.errors import BucketNotEmpty, FailedPrecondition, InvalidArgument
from cosi_driver.core.options import (
    SECRET,
    OptionKind,
    SecretRef,
    one_of,
    option,
)
from cosi_driver.core.params import AccessParams, BucketParams, Versioning
from cosi_driver.core.types import AccessMode, AddressingStyle, BucketInfo, S3BucketInfo, S3Credentials
from cosi_driver.core.values import ValueProblem

log = structlog.get_logger("cosi_driver.backends.s3")

#: The one inline policy the driver writes on its users.
POLICY_NAME = "cosi-bucket-access"
#: IAM path of the driver's users, where the server keeps paths.
USER_PATH = "/cosi-driver/"
TAG_DRIVER = "cosi-driver/driver"
TAG_BUCKET = "cosi-driver/bucket"
TAG_ACCESS = "cosi-driver/access"
MAX_USER_NAME = 64  # IAM's limit
_DIGEST = 20
_USER_PREFIX = re.compile(r"[A-Za-z0-9+=,.@_-]{1,20}")


def _user_prefix(text: str) -> str:
    if not _USER_PREFIX.fullmatch(text):
        raise ValueProblem(f"must be 1-20 characters of letters, digits and +=,.@_- (IAM user names), not {text!r}")
    return text


USER_PREFIX: OptionKind[str] = OptionKind("1-20 IAM user name characters", _user_prefix)
#: The ``user_prefix`` option, also declared by the seaweedfs backend, which hands it on to this one.
USER_PREFIX_OPTION: endpoints.OptionArguments = {
    "kind": USER_PREFIX,
    "default": "cosi-",
    "doc": "Prefix of the IAM user names the driver creates (one user per BucketAccess).",
}


@dataclass(frozen=True)
class S3Config:
    endpoint: str = option(endpoints.ENDPOINT_URL, doc="S3 endpoint URL the driver manages buckets through.")
    access_key_id: SecretRef = option(SECRET, doc="Access key id of an account allowed to administer S3 and IAM.")
    secret_access_key: SecretRef = option(
        SECRET, doc="Its secret access key; read again on use, so rotation needs no restart."
    )
    iam_endpoint: str | None = option(
        endpoints.ENDPOINT_URL,
        default=None,
        doc="IAM endpoint URL; default: the S3 endpoint (SeaweedFS serves IAM there).",
    )
    public_endpoint: str | None = option(**endpoints.public_endpoint("endpoint"))
    region: str = option(**endpoints.REGION)
    verify_tls: bool = option(**endpoints.VERIFY_TLS)
    ca_bundle: Path | None = option(**endpoints.CA_BUNDLE)
    addressing_style: str = option(
        one_of(*ADDRESSING_STYLES),
        default="path",
        doc="S3 addressing: path works everywhere; virtual needs bucket DNS.",
    )
    connect_timeout: float = option(**endpoints.CONNECT_TIMEOUT)
    read_timeout: float = option(**endpoints.READ_TIMEOUT)
    user_prefix: str = option(**USER_PREFIX_OPTION)


@dataclass(frozen=True)
class S3BucketParams(Versioning, BucketParams):
    """Deletion policy and versioning. No quotas: the S3 API has none (SeaweedFS, AWS)."""


@dataclass(frozen=True)
class S3AccessParams(AccessParams):
    pass


def user_name(prefix: str, bucket: str, access: str) -> str:
    """A stable IAM user name for one BucketAccess: readable, unique, at most 64 characters."""
    return f"{_user_stem(prefix, bucket)}{access_digest(bucket, access, _DIGEST)}"


def account_user_name(prefix: str, access: str) -> str:
    """The IAM user of a v1alpha2 account: one per access name, whatever buckets it holds."""
    readable = _NOT_READABLE.sub("", access)[: MAX_USER_NAME - len(prefix) - 1 - _DIGEST]
    return f"{prefix}{readable}_{access_digest('', access, _DIGEST)}"


_NOT_READABLE = re.compile(r"[^A-Za-z0-9.-]")


def _user_stem(prefix: str, bucket: str) -> str:
    """What every user name of ``bucket`` starts with: the prefix and as much of the bucket as fits."""
    room = MAX_USER_NAME - len(prefix) - 1 - _DIGEST
    return f"{prefix}{bucket[:room]}-"


class S3Backend:
    """Buckets through S3, users, keys and policies through IAM, with long-lived clients."""

    def __init__(self, config: S3Config, context: BackendContext) -> None:
        self.config = config
        self.context = context
        self.s3_connection = endpoints.connection(config, addressing_style=config.addressing_style)
        self.iam_connection = dataclasses.replace(self.s3_connection, endpoint=config.iam_endpoint or config.endpoint)
        self.public_endpoint = config.public_endpoint or config.endpoint
        self.clients = ClientPool(self._admin_keys)
        self._user_name = re.compile(re.escape(config.user_prefix) + rf".*-[0-9a-f]{{{_DIGEST}}}")
        self._account_user_name = re.compile(re.escape(config.user_prefix) + rf"[A-Za-z0-9.-]*_[0-9a-f]{{{_DIGEST}}}")
        self._untaggable_warned = False
        # Grant and Revoke of one IAM user, one at a time across driver pods sharing the store: the
        # later call's outcome is the final one, never a mix (a user left with keys but no policy).
        self._users = Leases(context.store, "s3-user", ttl=ACCOUNT_LEASE_SECONDS, wait=ACCOUNT_LEASE_SECONDS)

    def _admin_keys(self) -> KeyPair:
        return read_admin_keys(
            self.config.access_key_id, self.config.secret_access_key, f"backend {self.context.name!r}"
        )

    async def _s3(self) -> Any:
        return await self.clients.s3(self.s3_connection)

    async def _iam(self) -> Any:
        return await self.clients.iam(self.iam_connection)

    # -- buckets ------------------------------------------------------------------------------

    async def find_bucket(self, name: str) -> FoundBucket | None:
        check_bucket_name(name)
        s3 = await self._s3()
        with edge(f"look up bucket {name!r}", "the S3 server"):
            return await read_mark(s3, name)

    async def create_bucket(self, request: CreateBucket[S3BucketParams]) -> BucketInfo:
        name = check_bucket_name(request.name)
        s3 = await self._s3()
        with edge(f"create bucket {name!r}", "the S3 server"):
            arguments: dict[str, Any] = {"Bucket": name}
            if self.config.region != "us-east-1":
                arguments["CreateBucketConfiguration"] = {"LocationConstraint": self.config.region}
            fresh = True
            try:
                await s3.create_bucket(**arguments)
            except Exception as error:
                # Our own earlier attempt (the core checked ownership before calling us).
                if error_code(error) != "BucketAlreadyOwnedByYou":
                    raise
                fresh = False
            steps: list[Any] = [write_mark(s3, name, request.mark, fresh=fresh)]
            if request.params.versioning:
                steps.append(s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"}))
            with deleted_meanwhile(name):
                marked, *_ = await asyncio.gather(*steps)
        if not marked and not self._untaggable_warned:
            self._untaggable_warned = True
            log.warning(
                "bucket tagging is not implemented by the server; the driver's state store alone records "
                "which buckets are its own",
                backend=self.context.name,
            )
        return self.bucket_info(name)

    def bucket_info(self, name: str) -> BucketInfo:
        return S3BucketInfo(
            region=self.config.region,
            bucket_name=name,
            endpoint=self.public_endpoint,
            addressing_style=AddressingStyle(self.config.addressing_style),
        )

    async def delete_bucket(self, request: DeleteBucket) -> None:
        name = check_bucket_name(request.name)
        s3 = await self._s3()
        with edge(f"delete bucket {name!r}", "the S3 server"):
            if request.purge:
                await purge(s3, name)
            else:
                # Never trust the server's BucketNotEmpty alone: SeaweedFS deletes versioned buckets
                # and buckets holding only unfinished uploads together with their data.
                reason = await find_content(s3, name)
                if reason is not None:
                    raise BucketNotEmpty(name, reason)
            try:
                await s3.delete_bucket(Bucket=name)
            except Exception as error:
                if error_code(error) == "BucketNotEmpty":
                    raise BucketNotEmpty(name, "data arrived while it was being deleted") from None
                if not is_missing(error):
                    raise

    # -- access -------------------------------------------------------------------------------

    def user_name(self, bucket: str, access: str) -> str:
        return user_name(self.config.user_prefix, bucket, access)

    def account_name(self, scope: str, access_name: str) -> str:
        """The IAM user a grant is made as, known before any storage call (core ``NamesAccounts``):
        the core locks a Grant and a Revoke of one account under it. ``scope`` is the bucket of a
        one-bucket (v1alpha1) account, "" for a name-scoped one."""
        if scope:
            return self.user_name(scope, access_name)
        return account_user_name(self.config.user_prefix, access_name)

    def _account(self, request: GrantAccess[S3AccessParams]) -> tuple[str, dict[str, str]]:
        """The IAM user a grant is made as, and the tags that say what it was made for."""
        tags = {TAG_DRIVER: self.context.driver_name}
        user = self.account_name(request.scope, request.name)
        if request.per_bucket:
            return user, {**tags, TAG_BUCKET: request.bucket}
        # Tag values hold at most 256 characters: room for an access name, not for a set of buckets.
        return user, {**tags, TAG_ACCESS: request.name[:256]}

    def _verify_user(self, user: dict[str, Any], bucket: str | None) -> None:
        """Refuse a user whose path or tags (where the server keeps them) say it is not ours.

        ``bucket``: the bucket a one-bucket account was made for; None for a v1alpha2 account.
        """
        name = user.get("UserName", "?")
        path = user.get("Path") or "/"
        if path not in (USER_PATH, "/"):
            raise FailedPrecondition(f"IAM user {name!r} is under path {path!r}, not {USER_PATH!r}: not the driver's")
        tags = iam_kit.tags_of(user)
        if TAG_DRIVER in tags and tags[TAG_DRIVER] != self.context.driver_name:
            raise FailedPrecondition(f"IAM user {name!r} belongs to driver {tags[TAG_DRIVER]!r}; leaving it alone")
        if bucket is not None and TAG_BUCKET in tags and tags[TAG_BUCKET] != bucket:
            raise FailedPrecondition(f"IAM user {name!r} was made for bucket {tags[TAG_BUCKET]!r}, not {bucket!r}")

    async def grant_access(self, request: GrantAccess[S3AccessParams]) -> Granted:
        grants = {check_bucket_name(b.bucket, "bucket"): b.mode for b in request.buckets}
        user, tags = self._account(request)
        scope = request.bucket if request.per_bucket else None
        iam = await self._iam()
        described = ", ".join(repr(bucket) for bucket in grants)
        with edge(f"grant access to bucket{'s' if len(grants) > 1 else ''} {described}", "the IAM server"):
            async with self._exclusive(user):
                keys = await self._grant(iam, user, scope, tags, grants)
        credentials = S3Credentials(
            access_key_id=keys.access_key_id,
            secret_access_key=keys.secret_access_key,
            endpoint=self.public_endpoint,
            region=self.config.region,
        )
        return Granted(account=user, credentials=credentials)

    def _exclusive(self, user: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._users.hold(f"{self.iam_connection.endpoint}/{user}", f"IAM user {user!r}")

    async def _grant(
        self, iam: Any, user: str, scope: str | None, tags: dict[str, str], grants: dict[str, AccessMode]
    ) -> KeyPair:
        """The IAM steps of a Grant: the user, its one policy, and its one key (stored first-writer-wins)."""
        created = await iam_kit.create_user(iam, user, path=USER_PATH, tags=tags)
        if not created:
            record = await iam_kit.get_user(iam, user)
            if record is not None:
                self._verify_user(record, scope)
        # Our one policy, written every time (it also applies a changed access mode); any other
        # inline policy on the user (SeaweedFS hands a deleted user's policies to the next user of
        # that name) is removed, so the user can do exactly what was asked and no more.
        await iam_kit.put_inline_policy(iam, user, POLICY_NAME, grants_document(grants))
        names = await iam_kit.inline_policy_names(iam, user)
        recalled = await self.context.credentials.recall(self.context.name, user)
        existing = [] if created else await iam_kit.access_key_ids(iam, user)
        stray = [policy for policy in names if policy != POLICY_NAME]
        if stray:
            await iam_kit.delete_inline_policies(iam, user, stray)
        if recalled is not None and recalled.access_key_id in existing:
            return recalled
        return await self._rotate(iam, user, existing, recalled, lost=recalled is None and bool(existing))

    async def _rotate(
        self, iam: Any, user: str, existing: list[str], recalled: KeyPair | None, *, lost: bool
    ) -> KeyPair:
        """A new key for ``user`` replacing every old one; remembered before it is returned.

        The new key is minted before old ones go: another driver pod may have minted one of them
        and stored it first, in which case that key is returned and ours deleted.
        """
        if lost:
            log.warning(
                "stored secret of an IAM user is missing; rotating its access key",
                backend=self.context.name,
                account=user,
            )
        keys = await iam_kit.create_access_key(iam, user)
        remembered = await self.context.credentials.remember(self.context.name, user, keys, replacing=recalled)
        stale = existing if remembered.kept else [keys.access_key_id]
        if stale:
            await iam_kit.delete_access_keys(iam, user, stale)
        return remembered.keys

    def _check_account(self, account: str, buckets: tuple[str, ...]) -> str | None:
        """Refuse an account this driver does not derive; the bucket of a one-bucket account."""
        if self._account_user_name.fullmatch(account):
            return None
        if self._user_name.fullmatch(account):
            for bucket in buckets:
                if account.startswith(_user_stem(self.config.user_prefix, bucket)):
                    return bucket
        described = ", ".join(repr(bucket) for bucket in buckets)
        raise InvalidArgument(
            f"account {account!r} is not an IAM user this driver derives for bucket {described}; refusing to touch it"
        )

    async def revoke_access(self, request: RevokeAccess) -> None:
        # The user holds the one policy naming every bucket: deleting it revokes all of them.
        bucket = self._check_account(request.account, request.buckets)
        iam = await self._iam()
        with edge(f"revoke account {request.account!r}", "the IAM server"):
            async with self._exclusive(request.account):
                await iam_kit.delete_user(
                    iam,
                    request.account,
                    known_policies=[POLICY_NAME],
                    verify=lambda record: self._verify_user(record, bucket),
                )
                # Inside the lease: a Grant after us must not find (and keep) the key we just deleted.
                await self.context.credentials.forget(self.context.name, request.account)

    # -- lifecycle ----------------------------------------------------------------------------

    async def check_health(self) -> None:
        s3, iam = await asyncio.gather(self._s3(), self._iam())
        with edge("check health (ListBuckets, ListUsers)", "the S3/IAM server"):
            await asyncio.gather(s3.list_buckets(MaxBuckets=1), iam.list_users(MaxItems=1))

    async def close(self) -> None:
        await self.clients.close()


BACKEND = BackendType(
    type_name="s3",
    summary="Any S3 server with an AWS-style IAM API (AWS, SeaweedFS, ...): buckets via S3, one IAM user per access.",
    config=S3Config,
    bucket_params=S3BucketParams,
    access_params=S3AccessParams,
    build=S3Backend,
    s3_compatible=True,
    multi_bucket_grants=True,
)
