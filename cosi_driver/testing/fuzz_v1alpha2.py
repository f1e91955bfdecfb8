"""The v1alpha2 half of the seeded fuzz (:mod:`.fuzz`): random calls of every v1alpha2 RPC.

Same inputs, same checks and same report as the v1alpha1 calls, on the same connection; the RPCs
are recorded as ``v1alpha2 <RPC>`` so a report tells the APIs apart. What v1alpha2 adds is drawn
here: protocol lists with values outside the enum, DriverGetExistingBucket of pool names and ids,
grants over zero to five buckets (repeats included) with a random access mode each, random
authentication types and service account names, and revokes of bucket lists that match the grant,
part of it, or other buckets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from cosi_driver.spec.v1alpha2 import cosi_pb2 as pb2
from cosi_driver.spec.v1alpha2 import cosi_pb2_grpc as pb2_grpc

if TYPE_CHECKING:
    from cosi_driver.testing.fuzz import Fuzzer

BUCKET_PARAMS = (("deletionPolicy", ("delete", "retain", "purge")),)
# Wire values of the v1alpha2 enums: the defined ones (UNKNOWN included) and numbers outside them.
PROTOCOLS = (pb2.ObjectProtocol.S3, pb2.ObjectProtocol.AZURE, pb2.ObjectProtocol.GCS, 0, 4, 99, 2**31 - 1, -1)
MODES = (pb2.AccessMode.READ_WRITE, pb2.AccessMode.READ_ONLY, pb2.AccessMode.WRITE_ONLY, 0, 4, 77, -1)
AUTH_TYPES = (pb2.AuthenticationType.KEY, pb2.AuthenticationType.SERVICE_ACCOUNT, 0, 3, 99, -1)


class V1Alpha2Calls:
    def __init__(self, fuzzer: Fuzzer, channel: grpc.aio.Channel) -> None:
        self.fuzzer = fuzzer
        self.inputs = fuzzer.inputs
        self.identity = pb2_grpc.IdentityStub(channel)
        self.provisioner = pb2_grpc.ProvisionerStub(channel)

    def weighted(self) -> Sequence[Callable[[], Awaitable[Any]]]:
        """The v1alpha2 RPCs in the proportions a run mixes them (as many calls as v1alpha1's mix)."""
        return (
            [self.get_info]
            + [self.create] * 4
            + [self.get_existing] * 2
            + [self.delete] * 2
            + [self.grant] * 4
            + [self.revoke] * 2
        )

    # -- random draws -------------------------------------------------------------------------

    def _protocol(self) -> int:
        rng = self.inputs.rng
        return pb2.ObjectProtocol.S3 if rng.random() < 0.6 else rng.choice(PROTOCOLS)

    def _protocols(self) -> list[Any]:
        rng = self.inputs.rng
        count = rng.choice((0, 0, 1, 1, 1, 2, 3, 5))
        return [pb2.ObjectProtocol(type=self._protocol()) for _ in range(count)]  # type: ignore[arg-type]

    def _mode(self) -> int:
        rng = self.inputs.rng
        return rng.choice(MODES[:3]) if rng.random() < 0.8 else rng.choice(MODES)

    def _bucket_ids(self) -> list[str]:
        rng = self.inputs.rng
        count = rng.choice((0, 1, 1, 1, 2, 2, 3, 5))
        chosen = [self.inputs.bucket_id() for _ in range(count)]
        if chosen and rng.random() < 0.1:
            chosen.append(rng.choice(chosen))  # a bucket named twice
        return chosen

    # -- one random call per RPC ----------------------------------------------------------------

    def info_call(self) -> Awaitable[Any]:
        return self.identity.DriverGetInfo(pb2.DriverGetInfoRequest())  # type: ignore[no-any-return]

    async def get_info(self) -> None:
        await self.fuzzer.call("v1alpha2 DriverGetInfo", self.info_call, "no fields")

    async def create(self) -> None:
        request = pb2.DriverCreateBucketRequest(
            name=self.inputs.name(), protocols=self._protocols(), parameters=self.inputs.params(BUCKET_PARAMS)
        )
        code, answer = await self.fuzzer.call(
            "v1alpha2 DriverCreateBucket", lambda: self.provisioner.DriverCreateBucket(request), repr(request.name)
        )
        if code is grpc.StatusCode.OK:
            self.inputs.buckets.add(answer.bucket_id)

    async def get_existing(self) -> None:
        rng = self.inputs.rng
        existing = rng.choice(self.inputs.pool) if rng.random() < 0.4 else self.inputs.bucket_id()
        request = pb2.DriverGetExistingBucketRequest(
            existing_bucket_id=existing, protocols=self._protocols(), parameters=self.inputs.params(BUCKET_PARAMS)
        )
        code, answer = await self.fuzzer.call(
            "v1alpha2 DriverGetExistingBucket",
            lambda: self.provisioner.DriverGetExistingBucket(request),
            repr(existing),
        )
        if code is grpc.StatusCode.OK:
            self.inputs.buckets.add(answer.bucket_id)

    async def delete(self) -> None:
        request = pb2.DriverDeleteBucketRequest(
            bucket_id=self.inputs.bucket_id(), parameters=self.inputs.params(BUCKET_PARAMS)
        )
        await self.fuzzer.call(
            "v1alpha2 DriverDeleteBucket", lambda: self.provisioner.DriverDeleteBucket(request), repr(request.bucket_id)
        )

    async def grant(self) -> None:
        rng = self.inputs.rng
        bucket_ids = self._bucket_ids()
        auth = pb2.AuthenticationType.KEY if rng.random() < 0.8 else rng.choice(AUTH_TYPES)
        request = pb2.DriverGrantBucketAccessRequest(
            account_name=self.inputs.name(),
            protocol=pb2.ObjectProtocol(type=self._protocol()),  # type: ignore[arg-type]
            authentication_type=pb2.AuthenticationType(type=auth),  # type: ignore[arg-type]
            service_account_name=self.inputs.name() if rng.random() < 0.2 else "",
            parameters=self.inputs.params(()),
            buckets=[
                pb2.DriverGrantBucketAccessRequest.AccessedBucket(
                    bucket_id=bucket_id,
                    access_mode=pb2.AccessMode(mode=self._mode()),  # type: ignore[arg-type]
                )
                for bucket_id in bucket_ids
            ],
        )
        label = f"{bucket_ids!r}, name {request.account_name!r}"
        code, response = await self.fuzzer.call(
            "v1alpha2 DriverGrantBucketAccess", lambda: self.provisioner.DriverGrantBucketAccess(request), label
        )
        if code is grpc.StatusCode.OK:
            self.inputs.accounts2.append((response.account_id, bucket_ids))

    def revoke_call(self, account_id: str, bucket_ids: list[str], protocol: int = pb2.ObjectProtocol.S3) -> Any:
        request = pb2.DriverRevokeBucketAccessRequest(
            account_id=account_id,
            protocol=pb2.ObjectProtocol(type=protocol),  # type: ignore[arg-type]
            authentication_type=pb2.AuthenticationType(type=pb2.AuthenticationType.KEY),
            buckets=[pb2.DriverRevokeBucketAccessRequest.AccessedBucket(bucket_id=b) for b in bucket_ids],
        )
        return self.provisioner.DriverRevokeBucketAccess(request)

    async def revoke(self) -> None:
        rng = self.inputs.rng
        if self.inputs.accounts2 and rng.random() < 0.5:
            account_id, granted = rng.choice(self.inputs.accounts2)
            bucket_ids = granted if rng.random() < 0.5 else rng.sample(granted, rng.randint(0, len(granted)))
        else:
            account_id, bucket_ids = self.inputs.account_id(), self._bucket_ids()
        label = f"account {account_id!r}, buckets {bucket_ids!r}"
        protocol = self._protocol()
        await self.fuzzer.call(
            "v1alpha2 DriverRevokeBucketAccess", lambda: self.revoke_call(account_id, bucket_ids, protocol), label
        )

    def purge_call(self, bucket_id: str) -> Any:
        request = pb2.DriverDeleteBucketRequest(bucket_id=bucket_id, parameters={"deletionPolicy": "purge"})
        return self.provisioner.DriverDeleteBucket(request)
