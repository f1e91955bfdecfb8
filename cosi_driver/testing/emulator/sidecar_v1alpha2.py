"""Replay upstream's v1alpha2 sidecar (main, unreleased) for BucketClaims and one BucketAccess.

What that sidecar does, as ../shared/cosi/SIDECAR.md (v1alpha2 section) records it:

* DriverGetInfo once at start; it exits when the call fails, the name breaks the v1alpha2 rule, or
  ``supported_protocols`` is empty, holds UNKNOWN or a repeat.
* DriverCreateBucket ``bc-<claim uid>`` per claim, with the claim's protocol and the class
  parameters; DriverGrantBucketAccess ``ba-<access uid>`` once for all claims, each with its mode.
  Each reconciler handles one object at a time, so the Creates go one after another.
* INVALID_ARGUMENT, ALREADY_EXISTS and UNIMPLEMENTED end an object's reconciling for good, and so
  does OUT_OF_RANGE from a grant (the driver cannot share one credential across buckets);
  everything else is retried with the work queue's per-object backoff.
* A grant answer is refused (and retried) unless it fills what the sidecar checks: for S3 the
  bucket id, endpoint, region and addressing style of every bucket and both keys; for Azure the
  storage account and the token (:mod:`cosi_driver.testing.sidecar_formats_v1alpha2`).
* One Secret per claim of the BucketAccess, with the flat ``COSI_*`` keys of its protocol.

The calls go through the same :class:`SidecarSession` as the v0.2.2 emulation (one connection, the
worker pool, the reconnect backoff) and wait the same backoff between attempts. The sidecar at
that commit never calls DriverDeleteBucket; the emulation removes what it made afterwards (Revoke,
then Delete), marked as its own cleanup, so runs leave nothing.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from cosi_driver.testing import client
from cosi_driver.testing.conformance.identity import v1alpha2_name_problem
from cosi_driver.testing.emulator.options import V1Alpha2Options, backoff
from cosi_driver.testing.emulator.record import Problem, Record
from cosi_driver.testing.emulator.session import Answer, Observer, SidecarSession
from cosi_driver.testing.sidecar_formats_v1alpha2 import (
    TERMINAL,
    flat_secret,
    grant_problems,
    protocol_names,
    supported_protocols_problem,
)

_CLEANUP = "emulator cleanup, not a sidecar call"

__all__ = ["V1Alpha2Emulator", "V1Alpha2Options", "emulate_v1alpha2"]


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
        self.protocol = ""  # the wire enum name the claims ask for, chosen at start-up
        self.bucket_ids: list[str] = []
        self.grant: Any = None
        self._failures: dict[str, int] = {}  # per object, never reset (the work queue's rule)
        self._session: SidecarSession | None = None

    @property
    def session(self) -> SidecarSession:
        assert self._session is not None, "the emulator runs inside a SidecarSession"
        return self._session

    async def run(self, observer: Observer | None = None) -> Record:
        async with SidecarSession(self.options, observer, api="v1alpha2") as session:
            self._session = session
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
        return self.record

    async def _call(
        self, rpc: str, subject: str, attempt: int, make: Callable[[], Awaitable[Any]], note: str = ""
    ) -> Answer:
        answer, call = await self.session.call(rpc, subject, attempt, make, note)
        self.record.calls.append(call)
        return answer

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
            answer = await self._call(rpc, subject, attempt, make)
            if answer.code is grpc.StatusCode.OK:
                problem = validate(answer.response)
                if problem is None:
                    return answer.response
                self.record.sidecar_log.append(f"{subject}: {rpc} answer refused: {problem}")
            elif answer.code in terminal:
                self.record.event("Failed" + rpc.removeprefix("Driver"), "", subject, "", answer.message)
                self.record.problems.append(
                    Problem(
                        "stuck",
                        f"{rpc} for {subject} answered {answer.code.name}, which ends its reconciling: "
                        f"{answer.message}",
                    )
                )
                raise _Stop
            else:
                message = f"{answer.code.name}: {answer.message}"
                self.record.event("Failed" + rpc.removeprefix("Driver"), "", subject, "", message)
            self._failures[subject] = self._failures.get(subject, 0) + 1
            await asyncio.sleep(backoff(self._failures[subject], self.options.max_backoff))
        self.record.problems.append(
            Problem("wedged", f"{rpc} for {subject} failed {self.options.max_attempts} times; retried forever")
        )
        raise _Stop

    async def _start(self) -> None:
        call, problem = await self.session.start()
        self.record.calls.append(call)
        self.record.driver_name = self.session.driver_name
        if problem is not None:
            self.record.problems.append(problem)
            raise _Stop
        info = self.session.info
        protocols = protocol_names(info.supported_protocols)
        problem_text = v1alpha2_name_problem(info.name) or supported_protocols_problem(protocols)
        wanted = self.options.protocol.upper() or ("S3" if "S3" in protocols else protocols[0] if protocols else "")
        if problem_text is None and wanted not in protocols:
            problem_text = f"the driver does not list {wanted}; claims for it are refused"
        if problem_text:
            self.record.problems.append(Problem("crashed", f"the sidecar exits: {problem_text}"))
            raise _Stop
        self.protocol = wanted

    async def _create(self, name: str) -> str:
        request = self.session.pb.DriverCreateBucketRequest(
            name=name, protocols=client.protocol_list((self.protocol,)), parameters=dict(self.options.bucket_params)
        )

        def make() -> Awaitable[Any]:
            return self.session.provisioner.DriverCreateBucket(request, timeout=self.options.call_timeout)  # type: ignore[no-any-return]

        def validate(response: Any) -> str | None:
            return None if response.bucket_id else "empty bucket_id"

        first = await self._reconcile("DriverCreateBucket", name, make, validate, TERMINAL)
        for _ in range(self.options.duplicate_creates):
            again = await self._call("DriverCreateBucket", name, 1, make, "duplicate (requeued)")
            if again.code is not grpc.StatusCode.OK or again.response.bucket_id != first.bucket_id:
                self.record.problems.append(
                    Problem("stuck", f"a repeated Create of {name} answered {again.code.name} {again.message}".strip())
                )
                raise _Stop
        return str(first.bucket_id)

    async def _grant(self) -> Any:
        buckets = list(zip(self.bucket_ids, self.options.modes, strict=True))
        request = client.grant_request(
            self.account_name,
            buckets,
            self.protocol,
            self.options.authentication_type,
            params=dict(self.options.access_params),
        )

        def make() -> Awaitable[Any]:
            return self.session.provisioner.DriverGrantBucketAccess(request, timeout=self.options.call_timeout)  # type: ignore[no-any-return]

        def validate(response: Any) -> str | None:
            return "; ".join(grant_problems(response, self.bucket_ids, self.protocol)) or None

        terminal = TERMINAL | {grpc.StatusCode.OUT_OF_RANGE}
        first = await self._reconcile("DriverGrantBucketAccess", self.account_name, make, validate, terminal)
        for _ in range(self.options.duplicate_grants):
            again = await self._call("DriverGrantBucketAccess", self.account_name, 1, make, "duplicate")
            if again.code is not grpc.StatusCode.OK or again.response.account_id != first.account_id:
                self.record.problems.append(
                    Problem("stale-secret", f"a repeated grant answered {again.code.name} or another account")
                )
            elif again.response.credentials != first.credentials:
                self.record.problems.append(Problem("stale-secret", "a repeated grant answered other keys"))
        return first

    def _write_secrets(self) -> None:
        response = self.grant
        infos = {item.bucket_id: item.bucket_info for item in response.buckets}
        for index, (bucket_id, mode) in enumerate(zip(self.bucket_ids, self.options.modes, strict=True)):
            data = flat_secret(self.protocol, infos[bucket_id], response.credentials)
            if data is not None:
                self.record.flat_secrets[f"{self.options.namespace}/emulated-creds-{index}"] = data
            self.record.provisioned[f"BucketAccess claim {index} ({mode})"] = {"bucketID": bucket_id}
        self.record.provisioned["BucketAccess.status.accountID"] = response.account_id

    async def _clean_up(self) -> None:
        if self._session is None or self.session.info is None:
            return
        if self.grant is not None:
            request = client.revoke_request(self.grant.account_id, self.bucket_ids, self.protocol)
            answer = await self._call(
                "DriverRevokeBucketAccess",
                self.account_name,
                1,
                lambda: self.session.provisioner.DriverRevokeBucketAccess(request, timeout=self.options.call_timeout),
                _CLEANUP,
            )
            self.record.after_delete["revoke"] = _outcome(answer)
            if answer.code is not grpc.StatusCode.OK:
                self.record.problems.append(Problem("leaked", f"Revoke answered {answer.code.name}: {answer.message}"))
        for name, bucket_id in zip(self.claims, self.bucket_ids, strict=False):
            delete = self.session.pb.DriverDeleteBucketRequest(
                bucket_id=bucket_id, parameters=dict(self.options.bucket_params)
            )
            answer = await self._call(
                "DriverDeleteBucket",
                name,
                1,
                functools.partial(
                    self.session.provisioner.DriverDeleteBucket, delete, timeout=self.options.call_timeout
                ),
                _CLEANUP,
            )
            self.record.after_delete[f"delete {name}"] = _outcome(answer)


def _outcome(answer: Answer) -> str:
    return str(answer.code.name) + (f": {answer.message}" if answer.message else "")


async def emulate_v1alpha2(options: V1Alpha2Options, observer: Observer | None = None) -> Record:
    return await V1Alpha2Emulator(options).run(observer)
