"""The ``s3`` backend: any server that speaks S3 for data and an AWS-style IAM API for users.

AWS itself, SeaweedFS, and others. Buckets are named exactly as the COSI name (consumers learn the
name from the sidecar's Secret); each BucketAccess becomes one IAM user with one access key and
one inline policy that allows exactly the requested access mode on exactly that bucket.

Whose users are these? A user the driver made has a name it derived (``user_prefix``, the bucket,
a digest of bucket and access name), lives under the IAM path ``/cosi-driver/`` and carries tags
naming the driver and the bucket, where the server keeps paths and tags (AWS does; SeaweedFS
ignores both, so there the derived name is the marker). Revoke refuses an account whose name was
not derived for the bucket, or whose path or tags say it belongs to someone else.

The secret IAM generates is shown once, so it is kept in the driver's state store through
:class:`~cosi_driver.core.credentials.CredentialKit` and returned again by a retried Grant, after
checking with ListAccessKeys that the key still exists. If the record was lost, Grant rotates:
it deletes the user's old keys and makes a new one, because a Grant that fails forever is worse
than a Secret that is written once with a fresh key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from cosi_driver.backends.accounts import access_digest
from cosi_driver.backends.s3kit import endpoints
from cosi_driver.backends.s3kit import iam as iam_kit
from cosi_driver.backends.s3kit.clients import ADDRESSING_STYLES, ClientPool, read_admin_keys
from cosi_driver.backends.s3kit.contents import find_content, purge
from cosi_driver.backends.s3kit.errors import edge, error_code, is_missing
from cosi_driver.backends.s3kit.marks import read_mark, write_mark
from cosi_driver.backends.s3kit.names import check_bucket_name
from cosi_driver.backends.s3kit.policy import policy_document
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
from cosi_driver.core.types import AddressingStyle, BucketInfo, S3BucketInfo, S3Credentials
from cosi_driver.core.values import ValueProblem

log = structlog.get_logger("cosi_driver.backends.s3")

#: The one inline policy the driver writes on its users.
POLICY_NAME = "cosi-bucket-access"
#: IAM path of the driver's users, where the server keeps paths.
USER_PATH = "/cosi-driver/"
TAG_DRIVER = "cosi-driver/driver"
TAG_BUCKET = "cosi-driver/bucket"
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
        self._untaggable_warned = False

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

    def _user_tags(self, bucket: str) -> dict[str, str]:
        return {TAG_DRIVER: self.context.driver_name, TAG_BUCKET: bucket}

    def _verify_user(self, user: dict[str, Any], bucket: str) -> None:
        """Refuse a user whose path or tags (where the server keeps them) say it is not ours."""
        name = user.get("UserName", "?")
        path = user.get("Path") or "/"
        if path not in (USER_PATH, "/"):
            raise FailedPrecondition(f"IAM user {name!r} is under path {path!r}, not {USER_PATH!r}: not the driver's")
        tags = iam_kit.tags_of(user)
        if TAG_DRIVER in tags and tags[TAG_DRIVER] != self.context.driver_name:
            raise FailedPrecondition(f"IAM user {name!r} belongs to driver {tags[TAG_DRIVER]!r}; leaving it alone")
        if TAG_BUCKET in tags and tags[TAG_BUCKET] != bucket:
            raise FailedPrecondition(f"IAM user {name!r} was made for bucket {tags[TAG_BUCKET]!r}, not {bucket!r}")

    async def grant_access(self, request: GrantAccess[S3AccessParams]) -> Granted:
        # One bucket per grant until multi-bucket grants land here (multi_bucket_grants is off, so
        # the core never sends more); the user is named after (bucket, name) as before v1alpha2.
        bucket = request.bucket
        user = self.user_name(bucket, request.name)
        iam = await self._iam()
        with edge(f"grant access to bucket {bucket!r}", "the IAM server"):
            created = await iam_kit.create_user(iam, user, path=USER_PATH, tags=self._user_tags(bucket))
            if not created:
                record = await iam_kit.get_user(iam, user)
                if record is not None:
                    self._verify_user(record, bucket)
            document = policy_document(bucket, request.mode)
            # Our one policy, written every time (it also applies a changed access mode); any other
            # inline policy on the user (SeaweedFS hands a deleted user's policies to the next user of
            # that name) is removed, so the user can do exactly what was asked and no more.
            await iam_kit.put_inline_policy(iam, user, POLICY_NAME, document)
            names = await iam_kit.inline_policy_names(iam, user)
            recalled = await self.context.credentials.recall(self.context.name, user)
            existing = [] if created else await iam_kit.access_key_ids(iam, user)
            stray = [policy for policy in names if policy != POLICY_NAME]
            if stray:
                await iam_kit.delete_inline_policies(iam, user, stray)
            if recalled is not None and recalled.access_key_id in existing:
                keys = recalled
            else:
                keys = await self._rotate(iam, user, existing, lost=recalled is None and bool(existing))
        credentials = S3Credentials(
            access_key_id=keys.access_key_id,
            secret_access_key=keys.secret_access_key,
            endpoint=self.public_endpoint,
            region=self.config.region,
        )
        return Granted(account=user, credentials=credentials)

    async def _rotate(self, iam: Any, user: str, existing: list[str], *, lost: bool) -> KeyPair:
        """A new key for ``user`` replacing every old one; remembered before it is returned."""
        if lost:
            log.warning(
                "stored secret of an IAM user is missing; rotating its access key",
                backend=self.context.name,
                account=user,
            )
        if existing:
            await iam_kit.delete_access_keys(iam, user, existing)
        keys = await iam_kit.create_access_key(iam, user)
        await self.context.credentials.remember(self.context.name, user, keys)
        return keys

    def _check_account(self, account: str, bucket: str) -> None:
        if not self._user_name.fullmatch(account) or not account.startswith(
            _user_stem(self.config.user_prefix, bucket)
        ):
            raise InvalidArgument(
                f"account {account!r} is not an IAM user this driver derives for bucket {bucket!r}; "
                "refusing to touch it"
            )

    async def revoke_access(self, request: RevokeAccess) -> None:
        self._check_account(request.account, request.bucket)
        iam = await self._iam()
        with edge(f"revoke account {request.account!r}", "the IAM server"):
            await iam_kit.delete_user(
                iam,
                request.account,
                known_policies=[POLICY_NAME],
                verify=lambda record: self._verify_user(record, request.bucket),
            )
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
)
