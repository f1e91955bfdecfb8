"""Replay the v0.2.2 provisioner sidecar's calls for one BucketClaim and its BucketAccess.

What the emulation does is what the sidecar was measured to do (../shared/k8s/README.md, with a
scripted driver) and what its source says (../shared/cosi/SIDECAR.md):

* DriverGetInfo once at start (:class:`SidecarSession`); any error and the sidecar exits.
* DriverCreateBucket ``bucket-<claim uid>`` with the BucketClass parameters. A refusal with any
  code becomes a ``FailedCreateBucket`` Event and a retry. ALREADY_EXISTS is different: the sidecar
  reads it as a nil answer, logs it, posts no Event and retries for ever (the claim is wedged).
  An empty bucket_id is retried too. After success the Create is sent again when the sidecar's
  status write conflicts: the duplicates, which must get the same bucket_id.
* DriverGrantBucketAccess ``ba-<access uid>``, Key, BucketAccessClass parameters. ALREADY_EXISTS
  dereferences the nil answer and crashes the whole sidecar (every other object stops too); any
  other refusal, an empty account_id, or other than exactly one credentials entry is an Event and
  a retry. The Secret is written from the first good answer and never rewritten, so duplicated
  Grants must return the same credentials.
* Deleting the claim first (the default) sends DeleteBucket before Revoke. For Delete, OK and
  NOT_FOUND both mean done and everything else is retried; for Revoke only OK means done, and every
  error, NOT_FOUND included, is retried. Retain never calls DeleteBucket.
* Every retry waits a per-object backoff of 100 ms doubling up to 30 s; the object's failure count
  is never reset, so late failures wait long. ``max_backoff`` lowers the cap for tests.
* Driver calls run on the session's pool of 40 workers shared by every object, one call per object
  at a time; calls carry no deadline in the sidecar (here ``call_timeout`` bounds them).

The real sidecar retries for ever; after ``max_attempts`` failures in a row the emulation stops that
object and reports that the sidecar would still be retrying. Where the real sidecar counts the
BucketAccess's "waiting for its bucket" checks as failures, the emulation simply grants after the
bucket is ready, so its Grant backoff can be shorter than a real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.testing.emulator.bucketinfo import bucket_info_json, v1alpha2_secret_data
from cosi_driver.testing.emulator.options import EmulatorOptions, backoff
from cosi_driver.testing.emulator.record import Problem, Record
from cosi_driver.testing.emulator.session import Answer, Observer, SidecarSession
from cosi_driver.testing.sidecar_formats import go_status_error

_AUTH = {"Key": pb.Key, "IAM": pb.IAM}


class _Stop(Exception):
    """The sidecar would not get further (crash, or retrying forever); the Problem is recorded."""


class SidecarEmulator:
    """One BucketClaim with one BucketAccess, from apply to deletion.

    Alone (:meth:`run`) it opens its own :class:`SidecarSession`; in a burst many of them share
    one, and ``index`` tells their names apart.
    """

    def __init__(
        self, options: EmulatorOptions, session: SidecarSession | None = None, index: int | None = None
    ) -> None:
        self.options = options
        self._session = session
        suffix = "" if index is None else f"-{index:02d}"
        self.claim, self.access = options.claim + suffix, options.access + suffix
        self.secret_name = options.secret_name + suffix
        self.claim_uid = str(uuid.uuid4())
        self.access_uid = str(uuid.uuid4())
        self.bucket = f"bucket-{self.claim_uid}"
        self.account_name = f"ba-{self.access_uid}"
        self.record = Record(endpoint=options.endpoint)
        self.record.names = {
            "BucketClaim": f"{options.namespace}/{self.claim} (uid {self.claim_uid})",
            "Bucket": self.bucket,
            "BucketAccess": f"{options.namespace}/{self.access} (uid {self.access_uid})",
            "Secret": f"{options.namespace}/{self.secret_name}",
        }
        self._failures = {"Bucket": 0, "BucketAccess": 0}  # per object, never reset (as upstream)
        self.bucket_id = ""
        self.storage_account = ""  # from DriverCreateBucket's azureBlob bucket info
        self._last_create_code: grpc.StatusCode | None = None
        self.grant: Any = None

    @property
    def session(self) -> SidecarSession:
        assert self._session is not None, "the emulator runs inside a SidecarSession"
        return self._session

    def _problem(self, kind: str, text: str) -> None:
        self.record.problems.append(Problem(kind, text))

    async def run(self, observer: Observer | None = None) -> Record:
        """The whole lifecycle on a session of its own: start, provision, delete."""
        async with SidecarSession(self.options, observer) as session:
            self._session = session
            call, problem = await session.start()
            self.record.calls.append(call)
            self.record.driver_name = session.driver_name
            if problem is not None:
                self.record.problems.append(problem)
            elif await self.provision():
                await self.delete()
        return self.record

    async def provision(self) -> bool:
        """Create the bucket and grant the access; False when the sidecar would not get that far."""
        try:
            await self._provision_bucket()
            await self._grant_access()
        except _Stop:
            return False
        self._snapshot_provisioned()
        return True

    async def delete(self) -> None:
        """Delete the claim and the access (in ``delete_order``) once both were provisioned."""
        with contextlib.suppress(_Stop):
            await self._delete()

    # -- calls and retries ---------------------------------------------------------------------

    async def _call(
        self, rpc: str, subject: str, attempt: int, make_call: Callable[[], Awaitable[Any]], note: str = ""
    ) -> Answer:
        answer, call = await self.session.call(rpc, subject, attempt, make_call, note)
        self.record.calls.append(call)
        return answer

    async def _backoff(self, kind: str) -> None:
        self._failures[kind] += 1
        await asyncio.sleep(backoff(self._failures[kind], self.options.max_backoff))

    async def _retry(
        self,
        kind: str,
        rpc: str,
        make_call: Callable[[], Awaitable[Any]],
        judge: Callable[[Answer], tuple[bool, Any]],
        stuck: Callable[[int], Problem] | None,
        *,
        note: str = "",
    ) -> Any:
        """Call until ``judge`` accepts, backing off after each refusal.

        With ``stuck`` None the call is tried once and None returned on refusal (the caller goes on, as
        the sidecar's other workers do); otherwise running out of attempts records ``stuck(attempts)``.
        """
        limit = 1 if stuck is None else self.options.max_attempts
        subject = f"{kind}/{self.bucket if kind == 'Bucket' else self.access}"
        for attempt in range(1, limit + 1):
            if self.session.crashed:
                raise _Stop  # another object's answer took the whole sidecar down
            answer = await self._call(rpc, subject, attempt, make_call, note)
            done, value = judge(answer)
            if done:
                return value
            await self._backoff(kind)
        if stuck is None:
            return None
        self.record.problems.append(stuck(limit))
        raise _Stop

    # -- the lifecycle -------------------------------------------------------------------------

    def _create_call(self) -> Awaitable[Any]:
        request = pb.DriverCreateBucketRequest(name=self.bucket, parameters=dict(self.options.bucket_params))
        return self.session.provisioner.DriverCreateBucket(request, timeout=self.options.call_timeout)  # type: ignore[no-any-return]

    def _judge_create(self, answer: Answer) -> tuple[bool, Any]:
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
        info = answer.response.bucket_info
        if info.WhichOneof("type") == "azureBlob":
            self.storage_account = str(info.azureBlob.storage_account)
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
        return self.session.provisioner.DriverGrantBucketAccess(request, timeout=self.options.call_timeout)  # type: ignore[no-any-return]

    def _judge_grant(self, answer: Answer) -> tuple[bool, Any]:
        access, namespace = self.access, self.options.namespace
        if answer.code is grpc.StatusCode.ALREADY_EXISTS:
            self.session.crashed = True
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
        self.record.secret_v1alpha2 = v1alpha2_secret_data(
            bucket_name=self.bucket, storage_account=self.storage_account, credentials=credentials
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
        return self.session.provisioner.DriverDeleteBucket(request, timeout=self.options.call_timeout)  # type: ignore[no-any-return]

    def _judge_delete(self, answer: Answer) -> tuple[bool, Any]:
        if answer.code in (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND):
            return True, True
        message = f"failed to delete bucket: {go_status_error(answer.code, answer.message)}"
        self.record.event("FailedDeleteBucket", "Bucket", self.bucket, "default", message)
        return False, None

    def _revoke_call(self) -> Awaitable[Any]:
        request = pb.DriverRevokeBucketAccessRequest(bucket_id=self.bucket_id, account_id=self.grant.account_id)
        return self.session.provisioner.DriverRevokeBucketAccess(request, timeout=self.options.call_timeout)  # type: ignore[no-any-return]

    def _judge_revoke(self, answer: Answer) -> tuple[bool, Any]:
        if answer.code is grpc.StatusCode.OK:
            return True, True
        message = f"failed to revoke access: {go_status_error(answer.code, answer.message)}"
        self.record.event("FailedRevokeAccess", "BucketAccess", self.access, self.options.namespace, message)
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


async def emulate(options: EmulatorOptions, observer: Observer | None = None) -> Record:
    """One claim and one access through their lifecycle; ``observer`` sees every call as it is answered."""
    return await SidecarEmulator(options).run(observer)
