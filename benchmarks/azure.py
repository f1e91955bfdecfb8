"""Azure Blob on Azurite: a bucket's whole life through the driver vs the same Azure calls made directly.

One cycle is Create + Grant (read-write) + Revoke + Delete. Through the driver it is four gRPC
calls to ``cosi-driver serve`` with the ``azure-blob`` backend; directly it is the calls a careful
script would make with the same aio SDK over one long-lived client: Create Container (with the
mark as metadata), Set Container ACL (the policy), a SAS signed locally, Set Container ACL (policy
removed), Delete Container. The driver adds the lookups that make it idempotent and safe (the
container's mark, the current ACL before each rewrite, the emptiness check before delete), its
intent record and tombstone, and gRPC. Azurite is the kit's, started and stopped here.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from benchmarks.harness import child, driver_args, driver_env, lifecycle, scratch, timed_cycles
from benchmarks.report import Report
from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from tests.fixtures.azurite import Azurite

WARMUP, CYCLES, ROUNDS = 5, 40, 3


async def _timed(cycle: Callable[[int], Awaitable[None]], start: int) -> list[float]:
    return await timed_cycles(cycle, start, WARMUP, CYCLES)


async def run(report: Report) -> None:
    import pytest

    from tests.fixtures.azurite import running_azurite

    parent = Path(tempfile.mkdtemp(prefix="cosi-bench-az-", dir="/tmp"))
    try:
        with running_azurite(parent / "azurite") as server:
            await _compare(report, server)
    except (pytest.skip.Exception, pytest.fail.Exception) as error:
        report.skip("Create+Grant+Revoke+Delete, azure-blob", str(error).splitlines()[0])
    finally:
        shutil.rmtree(parent, ignore_errors=True)


async def _compare(report: Report, server: Azurite) -> None:
    with scratch() as work:
        times: dict[str, list[float]] = {"driver": [], "direct": []}
        async with Direct(server) as direct:
            for round_ in range(ROUNDS):  # alternate, so drift on the machine hits both alike
                times["driver"] += await _through_driver(server, work, round_ * 1000)
                times["direct"] += await _timed(direct.cycle, round_ * 1000)
    ours, theirs = statistics.median(times["driver"]), statistics.median(times["direct"])
    note = f"median of {len(times['direct'])} cycles, Azurite 3.37.0"
    report.figure("Create+Grant+Revoke+Delete via driver, azure-blob", f"{ours * 1000:.1f} ms", note)
    report.figure("same Azure calls made directly", f"{theirs * 1000:.1f} ms", "4 requests, one aio client")
    report.figure("ratio driver / direct", f"{ours / theirs:.2f}x", "driver: 10 requests (lookups), gRPC, state")


async def _through_driver(server: Azurite, work: Path, start: int) -> list[float]:
    env = driver_env(
        work,
        COSI_DRIVER_STATE_DIR=str(work / "state"),
        COSI_DRIVER_BACKEND="azure-blob",
        COSI_DRIVER_BACKEND_ACCOUNT_NAME=server.account_name,
        COSI_DRIVER_BACKEND_ACCOUNT_KEY=server.account_key,
        COSI_DRIVER_BACKEND_ENDPOINT=server.endpoint,
        NO_PROXY="127.0.0.1",
    )
    del env["COSI_DRIVER_BACKEND_ROOT"]
    endpoint = f"unix://{work}/cosi.sock"
    async with child(driver_args(), env, work / "cosi.sock"), grpc.aio.insecure_channel(endpoint) as channel:
        return await _timed(lifecycle(pb_grpc.ProvisionerStub(channel)), start)


class Direct:
    """The same state-changing Azure calls, made straight with the aio SDK."""

    def __init__(self, server: Azurite) -> None:
        self.server = server

    async def __aenter__(self) -> Direct:
        from azure.storage.blob.aio import BlobServiceClient

        credential = {"account_name": self.server.account_name, "account_key": self.server.account_key}
        self.service: Any = BlobServiceClient(self.server.endpoint, credential=credential, api_version="2025-11-05")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.service.close()

    async def cycle(self, n: int) -> None:
        from azure.storage.blob import AccessPolicy, generate_container_sas

        name = f"bench-direct-{n}"
        container = self.service.get_container_client(name)
        await container.create_container(metadata={"owner": "bench"})
        expiry = datetime.now(UTC) + timedelta(days=365)
        await container.set_container_access_policy({"p": AccessPolicy(permission="racwdl", expiry=expiry)})
        generate_container_sas(self.server.account_name, name, account_key=self.server.account_key, policy_id="p")
        await container.set_container_access_policy({})
        await container.delete_container()
