"""Replay upstream's v1alpha2 sidecar (main, unreleased) for BucketClaims and one BucketAccess.

What it does, from ../shared/cosi/SIDECAR.md (v1alpha2 section):

* DriverGetInfo once; it exits when the call fails, the name breaks the v1alpha2 rule, or
  ``supported_protocols`` is empty, holds UNKNOWN or a repeat.
* DriverCreateBucket ``bc-<claim uid>`` per claim, with the claim's protocols and the class
  parameters; DriverGrantBucketAccess ``ba-<access uid>`` once for all claims, each with its mode.
* INVALID_ARGUMENT, ALREADY_EXISTS and UNIMPLEMENTED (and OUT_OF_RANGE from a grant) end the
  object's reconciling for good; everything else is retried with backoff.
* A grant answer is refused (and retried) unless every S3 slot has bucket_id, endpoint and region,
  an addressing style, and both keys.
* One Secret per claim of the BucketAccess, with flat ``COSI_*`` keys.

The sidecar at that commit never calls DriverDeleteBucket; the emulation removes what it made
afterwards (Revoke, then Delete), marked as the emulator's own cleanup, so runs leave nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc

from cosi_driver.spec.v1alpha2 import cosi_pb2 as pb
from cosi_driver.spec.v1alpha2 import cosi_pb2_grpc as pb_grpc
from cosi_driver.testing import client
from cosi_driver.testing.conformance.identity import v1alpha2_name_problem
from cosi_driver.testing.emulator.options import FIRST_BACKOFF, SIDECAR_MAX_BACKOFF
from cosi_driver.testing.emulator.record import Call, Problem, Record
from cosi_driver.testing.sidecar_formats_v1alpha2 import (
    ADDRESSING_STYLES,
    TERMINAL,
    grant_problems,
    protocol_names,
    supported_protocols_problem,
)


@dataclass(frozen=True)
class V1Alpha2Options:
    endpoint: str
    bucket_params: Mapping[str, str] = field(default_factory=dict)  # BucketClass.spec.parameters
    access_params: Mapping[str, str] = field(default_factory=dict)  # BucketAccessClass.spec.parameters
    modes: tuple[str, ...] = ("READ_WRITE",)  # one claim per mode, all in one BucketAccess
    protocol: str = "S3"
    authentication_type: str = "KEY"
    namespace: str = "cosi-emulated"
    duplicate_creates: int = 1
    duplicate_grants: int = 1
    max_backoff: float = SIDECAR_MAX_BACKOFF
    max_attempts: int = 12
    call_timeout: float = 120.0


class _Stop(Exception):
    """The sidecar would go no further; the Problem is recorded."""


class V1Alpha2Emulator:
    def __init__(self, options: V1Alpha2Options) -> None:
        self.options = options
        self.record = Record(endpoint=options.endpoint, sidecar="v1alpha2 (upstream main)")
        self.claims = [f"bc-{uuid.uuid4()}" for _ in options.modes]  # Bucket names: the Create names
        self.account_name = f"ba-{uuid.uuid4()}"
        self.record.names = {f"Bucket ({mode})": name for mode, name in zip(options.modes, self.claims, strict=True)}
        self.record.names["BucketAccess"] = f"{options.namespace}/emulated-access ({self.account_name})"
        self.bucket_ids: list[str] = []
        self.grant: Any = None
        self._started = time.monotonic()

    async def run(self) -> Record:
        channel = grpc.aio.insecure_channel(self.options.endpoint)
        self._identity = pb_grpc.IdentityStub(channel)
        self._provisioner = pb_grpc.ProvisionerStub(channel)
        try:
            await self._start()
            for name in self.claims:
                self.bucket_ids.append(await self._create(name))
            self.grant = await self._grant()
            self._write_secrets()
        except _Stop:
            pass
        finally:
            await self._clean_up()
            await channel.close()
        return self.record

    async def _call(self, rpc: str, subject: str, attempt: int, call: Awaitable[Any], note: str = "") -> Any:
        try:
            response = await asyncio.wait_for(call, self.options.call_timeout)
            code, message = grpc.StatusCode.OK, ""
        except grpc.aio.AioRpcError as error:
            response, code, message = None, error.code(), error.details() or ""
        except TimeoutError:
            response, code, message = None, grpc.StatusCode.DEADLINE_EXCEEDED, "no answer (the sidecar would hang)"
        self.record.calls.append(
            Call(time.monotonic() - self._started, rpc, subject, attempt, code.name, message, note)
        )
        return code, response, message

    async def _reconcile(
        self,
        rpc: str,
        subject: str,
        make: Callable[[], Awaitable[Any]],
        validate: Callable[[Any], str | None],
        terminal: frozenset[grpc.StatusCode],
    ) -> Any:
        """Call until OK and valid; a terminal code or too many failures stops the object."""
        for attempt in range(1, self.options.max_attempts + 1):
            code, response, message = await self._call(rpc, subject, attempt, make())
            if code is grpc.StatusCode.OK:
                problem = validate(response)
                if problem is None:
                    return response
                self.record.sidecar_log.append(f"{subject}: {rpc} answer refused: {problem}")
            elif code in terminal:
                self.record.event("Failed" + rpc.removeprefix("Driver"), "", subject, "", message)
                self.record.problems.append(
                    Problem("stuck", f"{rpc} for {subject} answered {code.name}, which ends its reconciling: {message}")
                )
                raise _Stop
            else:
                self.record.event("Failed" + rpc.removeprefix("Driver"), "", subject, "", f"{code.name}: {message}")
            await asyncio.sleep(min(FIRST_BACKOFF * 2 ** (attempt - 1), self.options.max_backoff))
        self.record.problems.append(
            Problem("wedged", f"{rpc} for {subject} failed {self.options.max_attempts} times; retried forever")
        )
        raise _Stop

    async def _start(self) -> None:
        code, response, message = await self._call(
            "DriverGetInfo", "sidecar start-up", 1, self._identity.DriverGetInfo(pb.DriverGetInfoRequest())
        )
        if code is not grpc.StatusCode.OK:
            self.record.problems.append(
                Problem("crashed", f"DriverGetInfo failed ({code.name}: {message}); the sidecar exits")
            )
            raise _Stop
        self.record.driver_name = response.name
        protocols = protocol_names(response.supported_protocols)
        problem = v1alpha2_name_problem(response.name) or supported_protocols_problem(protocols)
        if problem is None and self.options.protocol not in protocols:
            problem = f"the driver does not list {self.options.protocol}; claims for it are refused"
        if problem:
            self.record.problems.append(Problem("crashed", f"the sidecar exits: {problem}"))
            raise _Stop

    async def _create(self, name: str) -> str:
        def make() -> Any:
            return self._provisioner.DriverCreateBucket(
                pb.DriverCreateBucketRequest(
                    name=name,
                    protocols=client.protocol_list((self.options.protocol,)),
                    parameters=dict(self.options.bucket_params),
                )
            )

        def validate(response: Any) -> str | None:
            return None if response.bucket_id else "empty bucket_id"

        first = await self._reconcile("DriverCreateBucket", name, make, validate, TERMINAL)
        for _ in range(self.options.duplicate_creates):
            code, again, message = await self._call("DriverCreateBucket", name, 1, make(), "duplicate (requeued)")
            if code is not grpc.StatusCode.OK or again.bucket_id != first.bucket_id:
                self.record.problems.append(
                    Problem("stuck", f"a repeated Create of {name} answered {code.name} {message}".strip())
                )
                raise _Stop
        return str(first.bucket_id)

    async def _grant(self) -> Any:
        buckets = list(zip(self.bucket_ids, self.options.modes, strict=True))
        request = client.grant_request(
            self.account_name,
            buckets,
            self.options.protocol,
            self.options.authentication_type,
            params=dict(self.options.access_params),
        )

        def make() -> Any:
            return self._provisioner.DriverGrantBucketAccess(request)

        def validate(response: Any) -> str | None:
            return "; ".join(grant_problems(response, self.bucket_ids)) or None

        terminal = TERMINAL | {grpc.StatusCode.OUT_OF_RANGE}
        first = await self._reconcile("DriverGrantBucketAccess", self.account_name, make, validate, terminal)
        for _ in range(self.options.duplicate_grants):
            code, again, _ = await self._call("DriverGrantBucketAccess", self.account_name, 1, make(), "duplicate")
            if code is not grpc.StatusCode.OK or again.account_id != first.account_id:
                self.record.problems.append(
                    Problem("stale-secret", f"a repeated grant answered {code.name} or another account")
                )
            elif again.credentials != first.credentials:
                self.record.problems.append(Problem("stale-secret", "a repeated grant answered other keys"))
        return first

    def _write_secrets(self) -> None:
        response = self.grant
        infos = {item.bucket_id: item.bucket_info for item in response.buckets}
        for index, (bucket_id, mode) in enumerate(zip(self.bucket_ids, self.options.modes, strict=True)):
            s3 = infos[bucket_id].s3
            self.record.flat_secrets[f"{self.options.namespace}/emulated-creds-{index}"] = {
                "COSI_PROTOCOL": "S3",
                "COSI_S3_BUCKET_ID": s3.bucket_id,
                "COSI_S3_ENDPOINT": s3.endpoint,
                "COSI_S3_REGION": s3.region,
                "COSI_S3_ADDRESSING_STYLE": ADDRESSING_STYLES.get(s3.addressing_style.style, ""),
                "COSI_S3_ACCESS_KEY_ID": response.credentials.s3.access_key_id,
                "COSI_S3_ACCESS_SECRET_KEY": response.credentials.s3.access_secret_key,
            }
            self.record.provisioned[f"BucketAccess claim {index} ({mode})"] = {"bucketID": bucket_id}
        self.record.provisioned["BucketAccess.status.accountID"] = response.account_id

    async def _clean_up(self) -> None:
        note = "emulator cleanup, not a sidecar call"
        if self.grant is not None:
            request = client.revoke_request(self.grant.account_id, self.bucket_ids, self.options.protocol)
            code, _, message = await self._call(
                "DriverRevokeBucketAccess",
                self.account_name,
                1,
                self._provisioner.DriverRevokeBucketAccess(request),
                note,
            )
            self.record.after_delete["revoke"] = code.name + (f": {message}" if message else "")
            if code is not grpc.StatusCode.OK:
                self.record.problems.append(Problem("leaked", f"Revoke answered {code.name}: {message}"))
        for name, bucket_id in zip(self.claims, self.bucket_ids, strict=False):
            delete = pb.DriverDeleteBucketRequest(bucket_id=bucket_id, parameters=dict(self.options.bucket_params))
            code, _, message = await self._call(
                "DriverDeleteBucket", name, 1, self._provisioner.DriverDeleteBucket(delete), note
            )
            self.record.after_delete[f"delete {name}"] = code.name + (f": {message}" if message else "")


async def emulate_v1alpha2(options: V1Alpha2Options) -> Record:
    return await V1Alpha2Emulator(options).run()
