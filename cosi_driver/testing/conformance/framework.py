"""The machinery of the conformance suite: checks, their results, and the session they share.

A check is a coroutine registered with :func:`check`. It talks to the driver only through the
:class:`Session` (which names, tracks and later removes what it creates), raises
:class:`CheckFailed` with a sentence a driver author can act on, or :class:`CheckSkipped` when
the run was not given what it needs. It may return a short detail for a passing line.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc

from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc
from cosi_driver.spec.v1alpha2 import cosi_pb2 as pb2
from cosi_driver.spec.v1alpha2 import cosi_pb2_grpc as pb2_grpc
from cosi_driver.testing import client as v2

DEFAULT_PREFIX = "cosi-conformance"


class Outcome(enum.Enum):
    PASS = "PASS"  # noqa: S105 - an outcome, not a password
    FAIL = "FAIL"
    SKIP = "SKIP"


class CheckFailed(Exception):
    """The driver broke a rule; the message says which, and what the sidecar would do."""


class CheckSkipped(Exception):
    """The run lacks what the check needs (a flag, an earlier check's result)."""


@dataclass(frozen=True)
class Options:
    """What a conformance run is told about the driver under test."""

    endpoint: str
    bucket_params: Mapping[str, str] = field(default_factory=dict)  # the BucketClass under test
    alt_bucket_params: Mapping[str, str] | None = None  # a second, different valid BucketClass
    access_params: Mapping[str, str] = field(default_factory=dict)  # a BucketAccessClass (read+write)
    read_access_params: Mapping[str, str] | None = None  # a read-only BucketAccessClass
    write_access_params: Mapping[str, str] | None = None  # a write-only BucketAccessClass
    # v1alpha2's BucketAccessClass: modes travel per bucket in the request, so it is its own class.
    v1alpha2_access_params: Mapping[str, str] = field(default_factory=dict)
    s3_check: bool = False
    azure_check: bool = False
    propagation_seconds: float = 15.0
    timeout: float = 30.0  # per call; the sidecar sets none, so a hung call is a finding
    concurrency: int = 8
    prefix: str = DEFAULT_PREFIX
    focus: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    apis: tuple[str, ...] = ("v1alpha1",)  # which rule sets run: v1alpha1, v1alpha2 or both


@dataclass(frozen=True)
class Answer:
    """One RPC's outcome, successful or not, for checks that judge status codes."""

    code: grpc.StatusCode
    response: Any = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code is grpc.StatusCode.OK

    def describe(self) -> str:
        if self.ok:
            return "OK"
        message = self.message if len(self.message) <= 200 else self.message[:200] + "..."
        return f"{self.code.name}: {message}"


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: Outcome
    reason: str
    seconds: float
    summary: str


@dataclass(frozen=True)
class Check:
    name: str
    summary: str
    run: Callable[[Session], Awaitable[str | None]]
    requires: tuple[str, ...] = ()
    needs_s3: bool = False
    needs_azure: bool = False
    api: str = "v1alpha1"


CHECKS: list[Check] = []


def check(
    name: str,
    summary: str,
    *,
    requires: tuple[str, ...] = ("identity.get-info",),
    needs_s3: bool = False,
    needs_azure: bool = False,
    api: str = "v1alpha1",
) -> Callable[[Callable[[Session], Awaitable[str | None]]], Callable[[Session], Awaitable[str | None]]]:
    """Register a check. Checks run in registration order; ``requires`` names earlier checks."""

    def register(fn: Callable[[Session], Awaitable[str | None]]) -> Callable[[Session], Awaitable[str | None]]:
        if any(existing.name == name for existing in CHECKS):
            raise ValueError(f"conformance check {name!r} is registered twice")
        CHECKS.append(Check(name, summary, fn, tuple(r for r in requires if r != name), needs_s3, needs_azure, api))
        return fn

    return register


def params_text(params: Mapping[str, str] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((params or {}).items())) or "no parameters"


class Session:
    """The driver connection and everything the checks create, so it can be removed afterwards.

    Names carry the run's prefix and id (``cosi-conformance-1a2b3c4d-007``): valid S3 bucket names,
    recognisable in storage if cleanup cannot finish.
    """

    def __init__(self, options: Options) -> None:
        self.options = options
        self.run_id = uuid.uuid4().hex[:8]
        self.channel = grpc.aio.insecure_channel(options.endpoint)
        self.identity = pb_grpc.IdentityStub(self.channel)
        self.provisioner = pb_grpc.ProvisionerStub(self.channel)
        self.identity2 = pb2_grpc.IdentityStub(self.channel)  # v1alpha2, same connection
        self.provisioner2 = pb2_grpc.ProvisionerStub(self.channel)
        self.driver_name: str | None = None
        self.buckets: dict[str, dict[str, str]] = {}  # bucket_id -> delete_context (its create parameters)
        self.accounts: dict[tuple[str, str], None] = {}  # (bucket_id, account_id), in grant order
        self.buckets2: dict[str, dict[str, str]] = {}  # v1alpha2 bucket_id -> its Create parameters
        self.accounts2: dict[str, tuple[str, ...]] = {}  # v1alpha2 account_id -> the bucket_ids it covers
        self.shared: dict[str, Any] = {}  # results one check leaves for later ones
        self._before_cleanup: list[Callable[[], Awaitable[None]]] = []
        self._counter = 0

    async def close(self) -> None:
        await self.channel.close()

    def never_issued_id(self) -> str:
        """An id nothing was created under: the run's prefix and a marker (``...-never-issued``)."""
        return f"{self.options.prefix}-{self.run_id}-never-issued"

    def new_name(self, kind: str = "") -> str:
        self._counter += 1
        middle = f"-{kind}" if kind else ""
        return f"{self.options.prefix}-{self.run_id}{middle}-{self._counter:03d}"

    # -- calls ---------------------------------------------------------------------------------

    async def answer(self, call: Awaitable[Any]) -> Answer:
        """Await an RPC and return its outcome instead of raising."""
        try:
            response = await call
        except grpc.aio.AioRpcError as error:
            return Answer(error.code(), None, error.details() or "")
        return Answer(grpc.StatusCode.OK, response)

    def _call(self, method: Any, request: Any) -> Awaitable[Any]:
        awaitable: Awaitable[Any] = method(request, timeout=self.options.timeout)
        return awaitable

    def get_info(self) -> Awaitable[Any]:
        return self._call(self.identity.DriverGetInfo, pb.DriverGetInfoRequest())

    def create_request(self, name: str, params: Mapping[str, str] | None = None) -> Awaitable[Any]:
        chosen = dict(self.options.bucket_params if params is None else params)
        request = pb.DriverCreateBucketRequest(name=name, parameters=chosen)
        return self._call(self.provisioner.DriverCreateBucket, request)

    def grant_request(
        self, bucket_id: str, name: str, params: Mapping[str, str] | None = None, auth: Any = pb.Key
    ) -> Awaitable[Any]:
        chosen = dict(self.options.access_params if params is None else params)
        request = pb.DriverGrantBucketAccessRequest(
            bucket_id=bucket_id, name=name, authentication_type=auth, parameters=chosen
        )
        return self._call(self.provisioner.DriverGrantBucketAccess, request)

    def delete_request(self, bucket_id: str, context: Mapping[str, str] | None = None) -> Awaitable[Any]:
        chosen = dict(self.buckets.get(bucket_id, self.options.bucket_params) if context is None else context)
        request = pb.DriverDeleteBucketRequest(bucket_id=bucket_id, delete_context=chosen)
        return self._call(self.provisioner.DriverDeleteBucket, request)

    def revoke_request(self, bucket_id: str, account_id: str) -> Awaitable[Any]:
        request = pb.DriverRevokeBucketAccessRequest(bucket_id=bucket_id, account_id=account_id)
        return self._call(self.provisioner.DriverRevokeBucketAccess, request)

    def v2_protocol(self) -> str:
        """The protocol v1alpha2 grants ask for: S3 when the driver lists it, else its first one."""
        listed = self.shared.get("v2_protocols") or ["S3"]
        return "S3" if "S3" in listed else str(listed[0])

    def create2_request(
        self, name: str, params: Mapping[str, str] | None = None, protocols: tuple[str, ...] = ()
    ) -> Awaitable[Any]:
        chosen = dict(self.options.bucket_params if params is None else params)
        request = pb2.DriverCreateBucketRequest(name=name, protocols=v2.protocol_list(protocols), parameters=chosen)
        return self._call(self.provisioner2.DriverCreateBucket, request)

    def grant2_request(
        self,
        name: str,
        buckets: list[tuple[str, str]],
        params: Mapping[str, str] | None = None,
        *,
        protocol: str | None = None,
        authentication: str = "KEY",
        service_account: str = "",
    ) -> Awaitable[Any]:
        chosen = dict(self.options.v1alpha2_access_params if params is None else params)
        protocol = protocol or self.v2_protocol()
        request = v2.grant_request(
            name, buckets, protocol, authentication, service_account=service_account, params=chosen
        )
        return self._call(self.provisioner2.DriverGrantBucketAccess, request)

    def revoke2_request(self, account_id: str, bucket_ids: tuple[str, ...] | list[str]) -> Awaitable[Any]:
        request = v2.revoke_request(
            account_id, list(bucket_ids), self.v2_protocol(), params=dict(self.options.v1alpha2_access_params)
        )
        return self._call(self.provisioner2.DriverRevokeBucketAccess, request)

    def delete2_request(self, bucket_id: str, params: Mapping[str, str] | None = None) -> Awaitable[Any]:
        chosen = dict(self.buckets2.get(bucket_id, self.options.bucket_params) if params is None else params)
        request = pb2.DriverDeleteBucketRequest(bucket_id=bucket_id, parameters=chosen)
        return self._call(self.provisioner2.DriverDeleteBucket, request)

    def track_bucket2(self, answer: Answer, params: Mapping[str, str]) -> None:
        if answer.ok and answer.response.bucket_id:
            self.buckets2.setdefault(str(answer.response.bucket_id), dict(params))

    def track_account2(self, answer: Answer, bucket_ids: list[str]) -> None:
        if answer.ok and answer.response.account_id:
            self.accounts2[str(answer.response.account_id)] = tuple(bucket_ids)

    # -- tracked operations (fail the check on an error) ---------------------------------------

    async def create(self, name: str | None = None, params: Mapping[str, str] | None = None) -> tuple[str, str]:
        """Create a bucket as the sidecar would; returns (name, bucket_id) and tracks it."""
        name = name or self.new_name()
        chosen = dict(self.options.bucket_params if params is None else params)
        answer = await self.answer(self.create_request(name, chosen))
        self.track_bucket(answer, chosen)
        if not answer.ok:
            raise CheckFailed(f"DriverCreateBucket {name!r} ({params_text(chosen)}) failed: {answer.describe()}")
        if not answer.response.bucket_id:
            raise CheckFailed(f"DriverCreateBucket {name!r} returned an empty bucket_id (the sidecar retries it)")
        return name, str(answer.response.bucket_id)

    def track_bucket(self, answer: Answer, params: Mapping[str, str]) -> None:
        if answer.ok and answer.response.bucket_id:
            self.buckets.setdefault(str(answer.response.bucket_id), dict(params))

    async def grant(
        self, bucket_id: str, name: str | None = None, params: Mapping[str, str] | None = None
    ) -> tuple[str, Any]:
        """Grant Key access as the sidecar would; returns (name, response) and tracks the account."""
        name = name or self.new_name("ba")
        chosen = dict(self.options.access_params if params is None else params)
        answer = await self.answer(self.grant_request(bucket_id, name, chosen))
        self.track_account(bucket_id, answer)
        if not answer.ok:
            raise CheckFailed(f"DriverGrantBucketAccess {name!r} ({params_text(chosen)}) failed: {answer.describe()}")
        if not answer.response.account_id:
            raise CheckFailed(f"DriverGrantBucketAccess {name!r} returned an empty account_id (the sidecar retries it)")
        return name, answer.response

    def track_account(self, bucket_id: str, answer: Answer) -> None:
        if answer.ok and answer.response.account_id:
            self.accounts[(bucket_id, str(answer.response.account_id))] = None

    async def revoke(self, bucket_id: str, account_id: str) -> None:
        answer = await self.answer(self.revoke_request(bucket_id, account_id))
        if not answer.ok:
            raise CheckFailed(f"DriverRevokeBucketAccess of {account_id!r} failed: {answer.describe()}")
        self.accounts.pop((bucket_id, account_id), None)

    async def delete(self, bucket_id: str) -> None:
        answer = await self.answer(self.delete_request(bucket_id))
        if not answer.ok and answer.code is not grpc.StatusCode.NOT_FOUND:
            raise CheckFailed(f"DriverDeleteBucket of {bucket_id!r} failed: {answer.describe()}")
        self.buckets.pop(bucket_id, None)

    async def gather(self, calls: list[Awaitable[Any]]) -> list[Answer]:
        return list(await asyncio.gather(*(self.answer(call) for call in calls)))

    # -- cleanup -------------------------------------------------------------------------------

    def on_cleanup(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run ``step`` before the accesses are revoked (e.g. remove objects while keys still work)."""
        self._before_cleanup.append(step)

    async def cleanup(self) -> Cleanup:
        """Revoke every access and delete every bucket the run made (best effort), like the sidecar would."""
        result = Cleanup()
        for step in self._before_cleanup:
            try:
                await step()
            except Exception as error:  # best effort: report, carry on
                result.left_behind.append(f"a cleanup step failed: {type(error).__name__}: {error}")
        for bucket_id, account_id in list(self.accounts):
            answer = await self.answer(self.revoke_request(bucket_id, account_id))
            if answer.ok:
                result.revoked += 1
            else:
                result.left_behind.append(f"access {account_id} on {bucket_id} ({answer.describe()})")
        for account_id, bucket_ids in list(self.accounts2.items()):
            answer = await self.answer(self.revoke2_request(account_id, bucket_ids))
            if answer.ok:
                result.revoked += 1
            else:
                result.left_behind.append(f"v1alpha2 access {account_id} ({answer.describe()})")
        deletions = [(self.delete_request, self.buckets), (self.delete2_request, self.buckets2)]
        for delete, buckets in deletions:
            for bucket_id, context in list(buckets.items()):
                answer = await self.answer(delete(bucket_id, context))
                if answer.ok or answer.code is grpc.StatusCode.NOT_FOUND:
                    result.deleted += 1
                else:
                    result.left_behind.append(f"bucket {bucket_id} ({answer.describe()})")
        self.accounts.clear()
        self.buckets.clear()
        self.accounts2.clear()
        self.buckets2.clear()
        return result


@dataclass
class Cleanup:
    deleted: int = 0
    revoked: int = 0
    left_behind: list[str] = field(default_factory=list)
