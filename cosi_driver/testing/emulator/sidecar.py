"""Replay the v0.2.2 provisioner sidecar's calls for one BucketClaim and one BucketAccess.

The call pattern, error handling and backoff follow the sidecar's source and the measurements in
../shared/cosi/SIDECAR.md and ../shared/k8s/README.md:

* DriverGetInfo once at start; any error and the sidecar exits.
* DriverCreateBucket ``bucket-<claim uid>`` with the BucketClass parameters; a failure becomes a
  ``FailedCreateBucket`` Event; ALREADY_EXISTS is a nil response (no Event) retried forever; the
  Create is re-run when the sidecar's status write conflicts (the duplicates).
* DriverGrantBucketAccess ``ba-<access uid>``, Key, BucketAccessClass parameters; ALREADY_EXISTS
  dereferences a nil response and crashes the sidecar; an empty account_id or other than exactly
  one credentials entry is an Event and a retry; the Secret is written once, never rewritten.
* Deleting the claim first (the default) sends DeleteBucket before Revoke; every error but
  NOT_FOUND from Delete, and every error from Revoke, is retried. Retain never calls DeleteBucket.
* Every failure is retried with a per-object backoff of 100 ms doubling up to 30 s, whose
  failure count is never reset. ``max_backoff`` caps it for tests; after ``max_attempts`` failures
  in a row the emulation stops and reports that the sidecar would go on forever.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc

from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc
from cosi_driver.testing.emulator.bucketinfo import bucket_info_json
from cosi_driver.testing.emulator.record import Call, Problem, Record
from cosi_driver.testing.sidecar_formats import go_status_error

FIRST_BACKOFF = 0.1
SIDECAR_MAX_BACKOFF = 30.0
_AUTH = {"Key": pb.Key, "IAM": pb.IAM}


@dataclass(frozen=True)
class EmulatorOptions:
    endpoint: str
    bucket_params: Mapping[str, str] = field(default_factory=dict)  # BucketClass.parameters
    access_params: Mapping[str, str] = field(default_factory=dict)  # BucketAccessClass.parameters
    deletion_policy: str = "Delete"  # BucketClass.deletionPolicy: Delete | Retain
    authentication_type: str = "Key"  # BucketAccessClass.authenticationType
    protocol: str = "S3"  # BucketAccess.spec.protocol
    driver_name: str | None = None  # the classes' driverName; None: whatever the driver says
    namespace: str = "cosi-emulated"
    claim: str = "emulated-claim"
    access: str = "emulated-access"
    secret_name: str = "emulated-creds"  # noqa: S105 - BucketAccess.spec.credentialsSecretName
    duplicate_creates: int = 1  # Creates re-run after success (status write conflicts)
    duplicate_grants: int = 1
    delete_order: str = "claim-first"  # claim-first | access-first
    max_backoff: float = SIDECAR_MAX_BACKOFF
    max_attempts: int = 12
    call_timeout: float = 120.0  # the sidecar sets none; bound the emulation anyway


@dataclass
class _Answer:
    code: grpc.StatusCode
    response: Any
    message: str


class _Stop(Exception):
    """The sidecar would not get further (crash, or retrying forever); the Problem is recorded."""


class SidecarEmulator:
    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.claim_uid = str(uuid.uuid4())
        self.access_uid = str(uuid.uuid4())
        self.bucket = f"bucket-{self.claim_uid}"
        self.account_name = f"ba-{self.access_uid}"
        self.record = Record(endpoint=options.endpoint)
        self.record.names = {
            "BucketClaim": f"{options.namespace}/{options.claim} (uid {self.claim_uid})",
            "Bucket": self.bucket,
            "BucketAccess": f"{options.namespace}/{options.access} (uid {self.access_uid})",
            "Secret": f"{options.namespace}/{options.secret_name}",
        }
        self._failures = {"Bucket": 0, "BucketAccess": 0}  # per object, never reset (as upstream)
        self._started = time.monotonic()
        self.bucket_id = ""
        self._last_create_code: grpc.StatusCode | None = None
        self.grant: Any = None

    def _problem(self, kind: str, text: str) -> None:
        self.record.problems.append(Problem(kind, text))

    async def run(self) -> Record:
        channel = grpc.aio.insecure_channel(self.options.endpoint)
        self._identity = pb_grpc.IdentityStub(channel)
        self._provisioner = pb_grpc.ProvisionerStub(channel)
        try:
            await self._start()
            await self._provision_bucket()
            await self._grant_access()
            self._snapshot_provisioned()
            await self._delete()
        except _Stop:
            pass
        finally:
            await channel.close()
        return self.record

    # -- calls and retries ---------------------------------------------------------------------

    async def _call(self, rpc: str, subject: str, attempt: int, call: Awaitable[Any], note: str = "") -> _Answer:
        try:
            response = await call
        except grpc.aio.AioRpcError as error:
            answer = _Answer(error.code(), None, error.details() or "")
        else:
            answer = _Answer(grpc.StatusCode.OK, response, "")
        detail = answer.message if answer.code is not grpc.StatusCode.OK else _summary(rpc, answer.response)
        at = time.monotonic() - self._started
        self.record.calls.append(Call(at, rpc, subject, attempt, answer.code.name, detail, note))
        return answer

    async def _backoff(self, kind: str) -> None:
        self._failures[kind] += 1
        delay = min(FIRST_BACKOFF * 2 ** (self._failures[kind] - 1), self.options.max_backoff)
        await asyncio.sleep(delay)

    async def _retry(
        self,
        kind: str,
        rpc: str,
        make_call: Callable[[], Awaitable[Any]],
        judge: Callable[[_Answer], tuple[bool, Any]],
        stuck: Callable[[int], Problem] | None,
        *,
        note: str = "",
    ) -> Any:
        """Call until ``judge`` accepts, backing off after each refusal.

        With ``stuck`` None the call is tried once and None returned on refusal (the caller goes on, as
        the sidecar's other workers do); otherwise running out of attempts records ``stuck(attempts)``.
        """
        limit = 1 if stuck is None else self.options.max_attempts
        subject = f"{kind}/{self.bucket if kind == 'Bucket' else self.options.access}"
        for attempt in range(1, limit + 1):
            answer = await self._call(rpc, subject, attempt, make_call(), note)
            done, value = judge(answer)
            if done:
                return value
            await self._backoff(kind)
        if stuck is None:
            return None
        self.record.problems.append(stuck(limit))
        raise _Stop

    # -- the lifecycle -------------------------------------------------------------------------

    async def _start(self) -> None:
        answer = await self._call(
            "DriverGetInfo",
            "sidecar start",
            1,
            self._identity.DriverGetInfo(pb.DriverGetInfoRequest(), timeout=self.options.call_timeout),
        )
        if answer.code is not grpc.StatusCode.OK:
            self._problem(
                "crashed",
                f"DriverGetInfo failed ({answer.code.name}: {answer.message}); the sidecar exits at start-up and "
                "restarts in CrashLoopBackOff, serving no claim at all",
            )
            raise _Stop
        self.record.driver_name = name = str(answer.response.name)
        wanted = self.options.driver_name
        if wanted is not None and wanted.lower() != name.lower():
            self._problem(
                "ignored",
                f"the driver calls itself {name!r} but the classes name driverName {wanted!r}; the sidecar skips "
                "these objects silently: the claim stays pending with no Event",
            )
            raise _Stop

    def _create_call(self) -> Awaitable[Any]:
        request = pb.DriverCreateBucketRequest(name=self.bucket, parameters=dict(self.options.bucket_params))
        return self._provisioner.DriverCreateBucket(request, timeout=self.options.call_timeout)  # type: ignore[no-any-return]

    def _judge_create(self, answer: _Answer) -> tuple[bool, Any]:
        self._last_create_code = answer.code
        if answer.code is grpc.StatusCode.ALREADY_EXISTS:
            self.record.sidecar_log.append(f"driverCreateBucket returned a nil response for Bucket {self.bucket}")
            return False, None
        if answer.code is not grpc.StatusCode.OK:
            message = f"failed to create bucket: {go_status_error(answer.code, answer.message)}"
            self.record.event("FailedCreateBucket", "Bucket", self.bucket, "default", message)
            return False, None
        if not answer.response.bucket_id:
            self.record.sidecar_log.append(f"driverCreateBucket returned an empty bucketID for Bucket {self.bucket}")
            return False, None
        return True, str(answer.response.bucket_id)

    async def _provision_bucket(self) -> None:
        self.bucket_id = await self._retry(
            "Bucket", "DriverCreateBucket", self._create_call, self._judge_create, self._create_stuck("Create")
        )
        for _ in range(self.options.duplicate_creates):
            first = self.bucket_id
            again = await self._retry(
                "Bucket",
                "DriverCreateBucket",
                self._create_call,
                self._judge_create,
                self._create_stuck("a duplicated Create (re-run because the sidecar's status write conflicted)"),
                note="duplicate: the sidecar's status write conflicted",
            )
            if again != first:
                self._problem(
                    "leaked",
                    f"a duplicated Create returned bucket_id {again!r}, the first {first!r}: Bucket.status.bucketID "
                    "is overwritten and the first bucket is never deleted",
                )
            self.bucket_id = again

    def _create_stuck(self, which: str) -> Callable[[int], Problem]:
        def problem(attempts: int) -> Problem:
            if self._last_create_code is grpc.StatusCode.ALREADY_EXISTS:
                return Problem(
                    "wedged",
                    (
                        f"{which} answered ALREADY_EXISTS {attempts} times; the v0.2.2 sidecar treats it as a nil "
                        "response and retries forever with no Event: the Bucket never becomes ready and the "
                        "BucketClaim stays pending"
                    ),
                )
            return _stuck("DriverCreateBucket", "the BucketClaim stays pending")(attempts)

        return problem

    def _grant_call(self) -> Awaitable[Any]:
        request = pb.DriverGrantBucketAccessRequest(
            bucket_id=self.bucket_id,
            name=self.account_name,
            authentication_type=_AUTH.get(self.options.authentication_type, pb.UnknownAuthenticationType),
            parameters=dict(self.options.access_params),
        )
        return self._provisioner.DriverGrantBucketAccess(request, timeout=self.options.call_timeout)  # type: ignore[no-any-return]

    def _judge_grant(self, answer: _Answer) -> tuple[bool, Any]:
        access, namespace = self.options.access, self.options.namespace
        if answer.code is grpc.StatusCode.ALREADY_EXISTS:
            self._problem(
                "crashed",
                "DriverGrantBucketAccess answered ALREADY_EXISTS: the v0.2.2 sidecar reads the nil response and "
                "panics (invalid memory address or nil pointer dereference). It restarts, retries the same Grant "
                "and crashes again (CrashLoopBackOff): no claim or access of this driver makes progress",
            )
            raise _Stop
        if answer.code is not grpc.StatusCode.OK:
            message = f"failed to grant bucket access: {go_status_error(answer.code, answer.message)}"
            self.record.event("FailedGrantAccess", "BucketAccess", access, namespace, message)
            return False, None
        if not answer.response.account_id:
            message = f"BucketAccess {access}: AccountId not defined in DriverGrantBucketAccess"
            self.record.event("FailedGrantAccess", "BucketAccess", access, namespace, message)
            return False, None
        if len(answer.response.credentials) != 1:
            message = (
                f"BucketAccess {access}: Credentials returned in DriverGrantBucketAccessResponse should be of length 1"
            )
            self.record.event("FailedGrantAccess", "BucketAccess", access, namespace, message)
            return False, None
        return True, answer.response

    async def _grant_access(self) -> None:
        stuck = _stuck("DriverGrantBucketAccess", "the BucketAccess never gets its Secret")
        self.grant = await self._retry(
            "BucketAccess", "DriverGrantBucketAccess", self._grant_call, self._judge_grant, stuck
        )
        self._write_secret(self.grant)
        for _ in range(self.options.duplicate_grants):
            again = await self._retry(
                "BucketAccess",
                "DriverGrantBucketAccess",
                self._grant_call,
                self._judge_grant,
                stuck,
                note="duplicate: the sidecar's status write failed",
            )
            if again.account_id != self.grant.account_id:
                self._problem(
                    "leaked",
                    f"a duplicated Grant returned account_id {again.account_id!r}, the first "
                    f"{self.grant.account_id!r}: Revoke gets only the last one, the other account is never removed",
                )
            if _credentials(again) != _credentials(self.grant):
                self._problem(
                    "stale-secret",
                    "a duplicated Grant returned other credentials; the Secret keeps the first ones (it is never "
                    "rewritten), so workloads use credentials the driver may have replaced",
                )
            self.grant = again

    def _write_secret(self, response: Any) -> None:
        if self.record.secret is not None:
            return  # an existing Secret is never overwritten
        credentials = _credentials(response)
        self.record.secret = bucket_info_json(
            access_uid=self.access_uid,
            bucket_name=self.bucket,
            authentication_type=self.options.authentication_type,
            protocol=self.options.protocol,
            credentials=credentials,
        )
        if not ({"s3", "azure"} & set(credentials)):
            self._problem(
                "stale-secret",
                f"the one credentials entry is keyed {sorted(credentials)}, neither 's3' nor 'azure': the sidecar "
                "writes a Secret with no credentials in it, and reports nothing",
            )

    def _snapshot_provisioned(self) -> None:
        self.record.provisioned = {
            "BucketClaim.status": {"bucketReady": True, "bucketName": self.bucket},
            "Bucket.status": {"bucketReady": True, "bucketID": self.bucket_id},
            "BucketAccess.status": {"accessGranted": True, "accountID": str(self.grant.account_id)},
        }

    # -- deletion ------------------------------------------------------------------------------

    def _delete_call(self) -> Awaitable[Any]:
        request = pb.DriverDeleteBucketRequest(
            bucket_id=self.bucket_id, delete_context=dict(self.options.bucket_params)
        )
        return self._provisioner.DriverDeleteBucket(request, timeout=self.options.call_timeout)  # type: ignore[no-any-return]

    def _judge_delete(self, answer: _Answer) -> tuple[bool, Any]:
        if answer.code in (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND):
            return True, True
        message = f"failed to delete bucket: {go_status_error(answer.code, answer.message)}"
        self.record.event("FailedDeleteBucket", "Bucket", self.bucket, "default", message)
        return False, None

    def _revoke_call(self) -> Awaitable[Any]:
        request = pb.DriverRevokeBucketAccessRequest(bucket_id=self.bucket_id, account_id=self.grant.account_id)
        return self._provisioner.DriverRevokeBucketAccess(request, timeout=self.options.call_timeout)  # type: ignore[no-any-return]

    def _judge_revoke(self, answer: _Answer) -> tuple[bool, Any]:
        if answer.code is grpc.StatusCode.OK:
            return True, True
        message = f"failed to revoke access: {go_status_error(answer.code, answer.message)}"
        self.record.event("FailedRevokeAccess", "BucketAccess", self.options.access, self.options.namespace, message)
        return False, None

    async def _revoke(self) -> None:
        stuck = _stuck("DriverRevokeBucketAccess", "the BucketAccess (and its claim) never go away")
        await self._retry("BucketAccess", "DriverRevokeBucketAccess", self._revoke_call, self._judge_revoke, stuck)
        self.record.after_delete["BucketAccess"] = "deleted (Revoke answered OK)"
        self.record.after_delete["Secret"] = "deleted"  # noqa: S105 - a Kubernetes kind

    async def _delete(self) -> None:
        retain = self.options.deletion_policy.lower() == "retain"
        deleted = False
        if self.options.delete_order == "claim-first" and not retain:
            first = await self._retry(
                "Bucket", "DriverDeleteBucket", self._delete_call, self._judge_delete, None, note="claim deleted first"
            )
            deleted = bool(first)
        await self._revoke()
        if not retain and not deleted:
            stuck = _stuck("DriverDeleteBucket", "the BucketClaim stays Terminating")
            await self._retry("Bucket", "DriverDeleteBucket", self._delete_call, self._judge_delete, stuck)
        self.record.after_delete["Bucket"] = (
            "deleted; DeleteBucket never called (deletionPolicy Retain): the backend bucket stays in storage"
            if retain
            else "deleted (DeleteBucket answered OK or NOT_FOUND)"
        )
        self.record.after_delete["BucketClaim"] = "deleted"


def _stuck(rpc: str, consequence: str) -> Callable[[int], Problem]:
    def problem(attempts: int) -> Problem:
        return Problem(
            "stuck", f"{rpc} failed {attempts} times in a row; the sidecar would retry it forever: {consequence}"
        )

    return problem


def _credentials(response: Any) -> dict[str, dict[str, str]]:
    return {key: dict(details.secrets) for key, details in response.credentials.items()}


def _summary(rpc: str, response: Any) -> str:
    if rpc == "DriverGetInfo":
        return f"name {response.name!r}"
    if rpc == "DriverCreateBucket":
        return f"bucket_id {response.bucket_id!r}"
    if rpc == "DriverGrantBucketAccess":
        return f"account_id {response.account_id!r}, credentials {sorted(response.credentials)}"
    return ""


async def emulate(options: EmulatorOptions) -> Record:
    return await SidecarEmulator(options).run()
