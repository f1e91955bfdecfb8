"""The `s3` backend on a real SeaweedFS: driver overhead against plain aioboto3, and 64 at once.

One full lifecycle is Create + Grant + Revoke + Delete. Through the driver it is four COSI calls to
`cosi-driver serve` over its UNIX socket; directly it is what a hand-written aioboto3 script would
do for the same result (CreateBucket; CreateUser, PutUserPolicy, CreateAccessKey; DeleteAccessKey,
DeleteUserPolicy, DeleteUser; DeleteBucket) with long-lived clients. The driver does more on
purpose (ownership lookups and marks, emptiness checks that include versions and uploads, stored
secrets): the ratio is the price of that safety. SeaweedFS is started exactly as the tests start
it (../shared/seaweedfs/start-seaweedfs.sh with its own directory and ports).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from benchmarks.harness import child, driver_args, scratch
from benchmarks.report import Report
from cosi_driver.backends.s3kit.clients import Connection
from cosi_driver.backends.s3kit.policy import policy_document
from cosi_driver.core.types import AccessMode
from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc

SEQUENTIAL = 20  # lifecycles per round
ROUNDS = 3
CONCURRENT = 64
# SeaweedFS serialises IAM and slows down as users pile up (README, Limitations): 64 lifecycles at
# once need minutes, so the concurrent runs get time limits that let them finish and be timed.
PATIENT = 600.0


def _driver_env(work: Path, server: Any) -> dict[str, str]:
    return {
        "COSI_DRIVER_OPERATION_TIMEOUT": str(PATIENT),
        "COSI_DRIVER_BACKEND_READ_TIMEOUT": str(PATIENT),
        "COSI_ENDPOINT": f"unix://{work}/cosi.sock",
        "COSI_DRIVER_STATE_DIR": str(work / "state"),
        "COSI_DRIVER_BACKEND": "s3",
        "COSI_DRIVER_BACKEND_ENDPOINT": server.endpoint,
        "COSI_DRIVER_BACKEND_ACCESS_KEY_ID": server.access_key,
        "COSI_DRIVER_BACKEND_SECRET_ACCESS_KEY": server.secret_key,
        "COSI_DRIVER_LOG_LEVEL": "warning",
        "COSI_DRIVER_LOG_FORMAT": "json",
    }


def through_driver(stub: Any) -> Callable[[str], Awaitable[None]]:
    async def lifecycle(name: str) -> None:
        created = await stub.DriverCreateBucket(pb.DriverCreateBucketRequest(name=name))
        granted = await stub.DriverGrantBucketAccess(
            pb.DriverGrantBucketAccessRequest(
                bucket_id=created.bucket_id, name=f"ba-{name}", authentication_type=pb.Key, parameters={}
            )
        )
        await stub.DriverRevokeBucketAccess(
            pb.DriverRevokeBucketAccessRequest(bucket_id=created.bucket_id, account_id=granted.account_id)
        )
        await stub.DriverDeleteBucket(pb.DriverDeleteBucketRequest(bucket_id=created.bucket_id))

    return lifecycle


def direct(s3: Any, iam: Any) -> Callable[[str], Awaitable[None]]:
    async def lifecycle(name: str) -> None:
        user = f"direct-{name}"[:64]
        await s3.create_bucket(Bucket=name)
        await iam.create_user(UserName=user)
        await iam.put_user_policy(
            UserName=user, PolicyName="access", PolicyDocument=policy_document(name, AccessMode.READWRITE)
        )
        key = (await iam.create_access_key(UserName=user))["AccessKey"]["AccessKeyId"]
        await iam.delete_access_key(UserName=user, AccessKeyId=key)
        await iam.delete_user_policy(UserName=user, PolicyName="access")
        await iam.delete_user(UserName=user)
        await s3.delete_bucket(Bucket=name)

    return lifecycle


def direct_same_calls(s3: Any, iam: Any) -> Callable[[str], Awaitable[None]]:
    """Every storage call the driver makes for one lifecycle, made directly in the same order: the
    ownership lookups (bucket tags), the mark, the policy and key checks, the emptiness checks.
    Against this, the ratio is what the driver itself costs: gRPC, the core, the state store."""

    async def lookup(call: Awaitable[Any]) -> None:
        with contextlib.suppress(Exception):
            await call

    async def lifecycle(name: str) -> None:
        user = f"same-{name}"[:64]
        tags = {"TagSet": [{"Key": "owner", "Value": "bench"}]}
        await lookup(s3.get_bucket_tagging(Bucket=name))
        await s3.create_bucket(Bucket=name)
        await s3.put_bucket_tagging(Bucket=name, Tagging=tags)
        await lookup(s3.get_bucket_tagging(Bucket=name))
        await iam.create_user(UserName=user)
        await iam.put_user_policy(
            UserName=user, PolicyName="access", PolicyDocument=policy_document(name, AccessMode.READWRITE)
        )
        await iam.list_user_policies(UserName=user)
        key = (await iam.create_access_key(UserName=user))["AccessKey"]["AccessKeyId"]
        await iam.get_user(UserName=user)
        await iam.list_user_policies(UserName=user)
        await iam.delete_user_policy(UserName=user, PolicyName="access")
        await iam.list_access_keys(UserName=user)
        await iam.delete_access_key(UserName=user, AccessKeyId=key)
        await iam.delete_user(UserName=user)
        await lookup(s3.get_bucket_tagging(Bucket=name))
        await s3.list_object_versions(Bucket=name, MaxKeys=1)
        await s3.list_multipart_uploads(Bucket=name, MaxUploads=1)
        await s3.delete_bucket(Bucket=name)

    return lifecycle


async def _sequential_ms(lifecycle: Callable[[str], Awaitable[None]], prefix: str) -> float:
    started = time.perf_counter()
    for n in range(SEQUENTIAL):
        await lifecycle(f"{prefix}-{n}")
    return (time.perf_counter() - started) * 1000 / SEQUENTIAL


async def _concurrent(lifecycle: Callable[[str], Awaitable[None]], prefix: str) -> tuple[float, list[str]]:
    started = time.perf_counter()
    results = await asyncio.gather(*(lifecycle(f"{prefix}-{n}") for n in range(CONCURRENT)), return_exceptions=True)
    elapsed = time.perf_counter() - started
    errors = [
        (error.code().name if isinstance(error, grpc.aio.AioRpcError) else type(error).__name__)
        for error in results
        if isinstance(error, BaseException)
    ]
    return elapsed, errors


async def run(report: Report) -> None:
    try:
        from tests.fixtures.seaweedfs import start_seaweedfs, stop_seaweedfs
    except ImportError as error:  # pragma: no cover - run from the project root with the dev extra
        report.skip("s3 backend on SeaweedFS", f"cannot import the SeaweedFS fixture: {error}")
        return
    import aioboto3

    with scratch() as work:
        try:
            server, env = start_seaweedfs(work / "seaweedfs")
        except RuntimeError as error:
            report.skip("s3 backend on SeaweedFS", str(error).splitlines()[0])
            return
        try:
            session = aioboto3.Session(
                aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key, region_name="us-east-1"
            )
            # The same client settings (timeouts, retries, pool) the backend is given.
            config = Connection(endpoint=server.endpoint, read_timeout=PATIENT).botocore_config()
            async with (
                child(driver_args(), _driver_env(work, server), work / "cosi.sock"),
                grpc.aio.insecure_channel(f"unix://{work}/cosi.sock") as channel,
                session.client("s3", endpoint_url=server.endpoint, config=config) as s3,
                session.client("iam", endpoint_url=server.endpoint, config=config) as iam,
            ):
                ours, bare = through_driver(pb_grpc.ProvisionerStub(channel)), direct(s3, iam)
                same = direct_same_calls(s3, iam)
                await ours("warm-driver")
                await bare("warm-direct")
                await same("warm-same")
                driver_ms, direct_ms, same_ms = [], [], []
                for round_ in range(ROUNDS):  # alternate, so drift on the machine hits all alike
                    driver_ms.append(await _sequential_ms(ours, f"drv{round_}"))
                    direct_ms.append(await _sequential_ms(bare, f"dir{round_}"))
                    same_ms.append(await _sequential_ms(same, f"sam{round_}"))
                d, b, c = statistics.median(driver_ms), statistics.median(direct_ms), statistics.median(same_ms)
                report.figure("s3 lifecycle (Create+Grant+Revoke+Delete), driver", f"{d:.1f} ms", "SeaweedFS, median")
                report.figure("s3 lifecycle, direct aioboto3, same operations", f"{b:.1f} ms", "8 calls, same run")
                report.figure("ratio driver / direct", f"{d / b:.2f}x", "target <= 1.10x")
                report.figure("s3 lifecycle, direct, the driver's 18 calls", f"{c:.1f} ms", "lookups and checks too")
                report.figure("ratio driver / direct with the same calls", f"{d / c:.2f}x", "gRPC, core, state store")
                elapsed, errors = await _concurrent(ours, "par")
                report.figure(
                    f"{CONCURRENT} concurrent lifecycles through the driver",
                    f"{elapsed:.2f} s",
                    f"{len(errors)} errors" + (f": {sorted(set(errors))}" if errors else ""),
                )
                elapsed, errors = await _concurrent(bare, "dpar")
                report.figure(
                    f"{CONCURRENT} concurrent lifecycles, direct aioboto3",
                    f"{elapsed:.2f} s",
                    f"{len(errors)} errors" + (f": {sorted(set(errors))}" if errors else ""),
                )
        finally:
            stop_seaweedfs(env)
