"""The acceptance suite every backend runs, with one fixture.

Like Thanos' objstore acceptance test, one suite holds every backend to the same COSI behaviour:
idempotent create and grant, concurrent identical calls, parameter validation generated from the
backend's own schemas, deletion per policy, revoke that keeps data, restart persistence, health,
and, for S3-speaking backends, a real data path with the returned credentials. Calls go through
the real server on a real UNIX socket, as the sidecar's would.

Use it from a backend's tests (pytest with pytest-asyncio)::

    from cosi_driver.testing.acceptance import AcceptanceTarget, BackendAcceptanceSuite
    from cosi_driver.testing.probes import FilesystemProbe

    class TestMyBackend(BackendAcceptanceSuite):
        @pytest.fixture
        def target(self, tmp_path):
            return AcceptanceTarget(
                backend_type="my-backend",
                config={"endpoint": "...", "secret_key": {"env": "MY_SECRET"}},
                probe=MyProbe(...),
            )
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from cosi_driver.app import App
from cosi_driver.config.backends import BackendEntry, DriverConfig, StateConfig
from cosi_driver.config.settings import load_settings
from cosi_driver.core import ids, registry
from cosi_driver.core.driver import Driver
from cosi_driver.core.errors import CosiError
from cosi_driver.core.existing import ExistingBuckets
from cosi_driver.core.options import SecretRef, parse_options
from cosi_driver.core.params import BACKEND_PARAMETER, BucketParams, Quota, Versioning, specs
from cosi_driver.core.secret import Secret
from cosi_driver.core.types import AccessMode, AuthenticationType, ObjectProtocol, S3BucketInfo
from cosi_driver.core.validation import V1ALPHA2
from cosi_driver.core.values import ValueProblem
from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.testing.client import CosiClient, credential_secrets, expect_error, s3_secrets
from cosi_driver.testing.probes import S3Session, StorageProbe
from cosi_driver.testing.sidecar_formats import AZURE_SECRETS, S3_SECRETS, parse_go_time

DRIVER_NAME = "acceptance.cosi-driver.example.com"
BACKEND_NAME = "under-test"
#: The harness allows existing buckets whose names start so (``Harness.new_name(EXISTING_PREFIX)``).
EXISTING_PREFIX = "acc-existing"
_CANDIDATE_BAD_VALUES = ("not-a-valid-value", "-3", "12 parsecs")


@dataclass
class AcceptanceTarget:
    """Everything the suite needs to know about the backend under test."""

    backend_type: str  # its entry-point name
    config: Mapping[str, Any]  # its `config:` block, as in the YAML file
    probe: StorageProbe
    master_key: str | None = None  # required by backends that derive credentials
    bucket_params: Mapping[str, str] = field(default_factory=dict)  # sent with every create
    propagation_seconds: float = 15.0  # how long the storage may take to apply a key or policy change
    operation_timeout: float = 30.0


class Harness:
    """Our real server on a UNIX socket in a private directory, over the backend under test."""

    def __init__(self, target: AcceptanceTarget, workdir: Path, state: Path | None = None) -> None:
        """``state``: the state directory, when it is shared with another harness (two driver pods
        over one store); by default a private one in ``workdir``."""
        self.target = target
        self.workdir = workdir
        self.state = state or workdir / "state"
        self.backend_type = registry.load(target.backend_type)
        self.app: App | None = None
        self.client: CosiClient | None = None
        self.buckets: set[str] = set()

    def _config(self) -> DriverConfig:
        parsed = parse_options(self.backend_type.config, self.target.config, f"{self.target.backend_type}.config")
        master_key = SecretRef(inline=Secret(self.target.master_key)) if self.target.master_key else None
        return DriverConfig(
            backends={
                BACKEND_NAME: BackendEntry(
                    BACKEND_NAME,
                    self.backend_type,
                    parsed,
                    ExistingBuckets((f"{EXISTING_PREFIX}-*",)),
                )
            },
            default=BACKEND_NAME,
            master_key=master_key,
            master_key_version=1,
            state=StateConfig("file", {"directory": str(self.state)}),
            source="acceptance suite",
        )

    async def start(self) -> CosiClient:
        """Build the process as ``serve`` does, with the settings an operator would give it."""
        settings = load_settings(
            {},
            {
                "COSI_ENDPOINT": f"unix://{self.workdir / 'cosi.sock'}",
                "COSI_DRIVER_NAME": DRIVER_NAME,
                "COSI_DRIVER_OPERATION_TIMEOUT": f"{self.target.operation_timeout:g}",
            },
        )
        self.app = App(settings, self._config())
        await self.app.start()
        assert self.app.server is not None
        self.client = CosiClient(self.app.server.spec.address)
        return self.client

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self.app is not None:
            await self.app.close()
            self.app = None

    async def restart(self) -> CosiClient:
        await self.stop()
        return await self.start()

    @property
    def cosi(self) -> CosiClient:
        assert self.client is not None, "the harness is not started"
        return self.client

    @property
    def driver(self) -> Driver:
        """The running driver core, for checks the wire cannot make."""
        assert self.app is not None and self.app.driver is not None, "the harness is not started"
        return self.app.driver

    def new_name(self, prefix: str = "acc") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:16]}"

    async def create(self, name: str | None = None, **params: str) -> Any:
        response = await self.cosi.create(name or self.new_name(), **{**self.target.bucket_params, **params})
        self.buckets.add(response.bucket_id)
        return response

    async def cleanup(self) -> None:
        """Delete, with their data, the buckets the test created (best effort)."""
        if self.client is None:
            return
        for bucket_id in self.buckets:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.cosi.delete(bucket_id, **{**self.target.bucket_params, "deletionPolicy": "purge"})


@contextlib.asynccontextmanager
async def running(target: AcceptanceTarget) -> AsyncIterator[Harness]:
    """A started harness in a private directory; afterwards its buckets are purged and it stops.

    For a backend's own tests beyond the suite (a second configuration, a stand-in server).
    """
    workdir = Path(tempfile.mkdtemp(prefix="cosi-acc-", dir="/tmp"))
    harness = Harness(target, workdir)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.cleanup()
        await harness.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _bad_value(kind: Any) -> str | None:
    for candidate in _CANDIDATE_BAD_VALUES:
        try:
            kind.parse(candidate)
        except ValueProblem:
            return candidate
    return None


def _bucket_name(bucket_id: str) -> str:
    return ids.parse_bucket_id(bucket_id).bucket


def _account_name(account_id: str) -> str:
    return ids.parse_account_id(account_id).account


class BackendAcceptanceSuite:
    """Subclass as ``Test<Backend>`` and override the ``target`` fixture."""

    pytestmark = [pytest.mark.asyncio(loop_scope="function")]

    @pytest.fixture
    def target(self) -> AcceptanceTarget:
        raise NotImplementedError("override the `target` fixture to describe the backend under test")

    @pytest_asyncio.fixture
    async def harness(self, target: AcceptanceTarget) -> AsyncIterator[Harness]:
        async with running(target) as harness:
            yield harness

    # -- create -------------------------------------------------------------------------------

    async def test_create_makes_the_bucket_and_a_retry_returns_the_same_id(self, harness: Harness) -> None:
        name = harness.new_name()
        first = await harness.create(name)
        assert await harness.target.probe.bucket_exists(name)
        assert (await harness.create(name)).bucket_id == first.bucket_id
        assert first.bucket_info.WhichOneof("type") is not None

    async def test_create_with_other_parameters_is_already_exists(self, harness: Harness) -> None:
        name = harness.new_name()
        await harness.create(name, deletionPolicy="purge")
        await expect_error(harness.create(name, deletionPolicy="retain"), grpc.StatusCode.ALREADY_EXISTS)

    async def test_create_never_adopts_a_foreign_bucket(self, harness: Harness) -> None:
        name = harness.new_name("foreign")
        probe = harness.target.probe
        await probe.create_foreign_bucket(name)
        try:
            await probe.put_object(name, "theirs.txt", b"not yours")
            await expect_error(harness.create(name), grpc.StatusCode.ALREADY_EXISTS)
            await expect_error(harness.cosi.delete(f"v1/{BACKEND_NAME}/{name}", deletionPolicy="purge"),
                               grpc.StatusCode.FAILED_PRECONDITION)  # fmt: skip
            assert await probe.object_exists(name, "theirs.txt")
        finally:
            await probe.remove_foreign_bucket(name)

    async def test_concurrent_identical_creates_make_one_bucket(self, harness: Harness) -> None:
        name = harness.new_name()
        responses = await asyncio.gather(*(harness.create(name) for _ in range(10)))
        assert len({response.bucket_id for response in responses}) == 1
        assert await harness.target.probe.bucket_exists(name)

    # -- parameters ---------------------------------------------------------------------------

    async def test_unknown_parameter_is_invalid_argument_listing_the_accepted(self, harness: Harness) -> None:
        message = await expect_error(harness.create(colour="blue"), grpc.StatusCode.INVALID_ARGUMENT)
        assert "colour" in message
        assert "deletionPolicy" in message

    async def test_every_ill_typed_parameter_is_named(self, harness: Harness) -> None:
        for params_class in (harness.backend_type.bucket_params, harness.backend_type.access_params):
            for spec in specs(params_class):
                bad = _bad_value(spec.kind)
                if bad is None:
                    continue
                if issubclass(params_class, BucketParams):
                    call = harness.create(**{spec.wire: bad})
                else:
                    bucket_id = (await harness.create()).bucket_id
                    call = harness.cosi.grant(bucket_id, harness.new_name("ba"), **{spec.wire: bad})
                message = await expect_error(call, grpc.StatusCode.INVALID_ARGUMENT)
                assert spec.wire in message, message

    async def test_portable_parameters_the_storage_cannot_honour_are_refused(self, harness: Harness) -> None:
        supported = {spec.wire for spec in specs(harness.backend_type.bucket_params)}
        examples = {"versioning": "true", "maxSizePerBucket": "1Gi", "maxObjectsPerBucket": "100"}
        for spec in (*specs(Versioning), *specs(Quota)):
            if spec.wire not in supported:
                message = await expect_error(
                    harness.create(**{spec.wire: examples[spec.wire]}), grpc.StatusCode.INVALID_ARGUMENT
                )
                assert spec.wire in message and "not supported" in message

    async def test_an_unknown_backend_name_is_invalid_argument(self, harness: Harness) -> None:
        message = await expect_error(harness.create(**{BACKEND_PARAMETER: "nowhere"}), grpc.StatusCode.INVALID_ARGUMENT)
        assert "nowhere" in message

    # -- delete -------------------------------------------------------------------------------

    async def test_delete_of_an_empty_bucket_removes_it_and_repeats_are_ok(self, harness: Harness) -> None:
        name = harness.new_name()
        bucket_id = (await harness.create(name)).bucket_id
        await harness.cosi.delete(bucket_id)
        assert not await harness.target.probe.bucket_exists(name)
        await harness.cosi.delete(bucket_id)

    async def test_delete_of_a_bucket_with_data_is_refused_and_keeps_it(self, harness: Harness) -> None:
        name = harness.new_name()
        bucket_id = (await harness.create(name)).bucket_id
        await harness.target.probe.put_object(name, "keep.txt", b"data")
        await expect_error(harness.cosi.delete(bucket_id), grpc.StatusCode.FAILED_PRECONDITION)
        assert await harness.target.probe.object_exists(name, "keep.txt")

    async def test_purge_deletes_a_bucket_with_data(self, harness: Harness) -> None:
        name = harness.new_name()
        bucket_id = (await harness.create(name, deletionPolicy="purge")).bucket_id
        await harness.target.probe.put_object(name, "a/b/c.txt", b"data")
        await harness.cosi.delete(bucket_id, deletionPolicy="purge")
        assert not await harness.target.probe.bucket_exists(name)

    async def test_retain_keeps_the_bucket(self, harness: Harness) -> None:
        name = harness.new_name()
        bucket_id = (await harness.create(name, deletionPolicy="retain")).bucket_id
        await harness.cosi.delete(bucket_id, deletionPolicy="retain")
        assert await harness.target.probe.bucket_exists(name)

    # -- grant and revoke ---------------------------------------------------------------------

    async def test_grant_again_returns_the_same_account_and_credentials(self, harness: Harness) -> None:
        bucket_id = (await harness.create()).bucket_id
        name = harness.new_name("ba")
        first = await harness.cosi.grant(bucket_id, name, accessMode="readwrite")
        second = await harness.cosi.grant(bucket_id, name, accessMode="readwrite")
        assert second.account_id == first.account_id
        assert credential_secrets(second) == credential_secrets(first)
        assert set(credential_secrets(first)) in (set(S3_SECRETS), set(AZURE_SECRETS))
        assert await harness.target.probe.account_exists(_account_name(first.account_id))

    async def test_concurrent_identical_grants_share_one_account(self, harness: Harness) -> None:
        bucket_id = (await harness.create()).bucket_id
        name = harness.new_name("ba")
        responses = await asyncio.gather(*(harness.cosi.grant(bucket_id, name) for _ in range(10)))
        assert len({r.account_id for r in responses}) == 1
        assert len({tuple(sorted(credential_secrets(r).items())) for r in responses}) == 1

    async def test_grant_on_a_missing_bucket_is_not_found(self, harness: Harness) -> None:
        await expect_error(
            harness.cosi.grant(f"v1/{BACKEND_NAME}/{harness.new_name('missing')}", "ba-1"), grpc.StatusCode.NOT_FOUND
        )

    async def test_iam_authentication_is_refused_unless_supported(self, harness: Harness) -> None:
        if harness.backend_type.supports_iam:
            pytest.skip("the backend supports IAM authentication")
        bucket_id = (await harness.create()).bucket_id
        message = await expect_error(harness.cosi.grant(bucket_id, "ba-1", pb.IAM), grpc.StatusCode.INVALID_ARGUMENT)
        assert "IAM" in message

    async def test_revoke_removes_the_account_keeps_the_data_and_repeats_are_ok(self, harness: Harness) -> None:
        name = harness.new_name()
        bucket_id = (await harness.create(name)).bucket_id
        await harness.target.probe.put_object(name, "kept.txt", b"data")
        account_id = (await harness.cosi.grant(bucket_id, harness.new_name("ba"))).account_id
        await harness.cosi.revoke(bucket_id, account_id)
        assert not await harness.target.probe.account_exists(_account_name(account_id))
        await harness.cosi.revoke(bucket_id, account_id)
        assert await harness.target.probe.object_exists(name, "kept.txt")

    async def test_revoke_after_the_bucket_was_deleted_is_ok(self, harness: Harness) -> None:
        bucket_id = (await harness.create()).bucket_id
        account_id = (await harness.cosi.grant(bucket_id, harness.new_name("ba"))).account_id
        await harness.cosi.delete(bucket_id)
        await harness.cosi.revoke(bucket_id, account_id)
        assert not await harness.target.probe.account_exists(_account_name(account_id))

    # -- restart and health -------------------------------------------------------------------

    async def test_a_restart_keeps_ids_and_credentials(self, harness: Harness) -> None:
        name, access = harness.new_name(), harness.new_name("ba")
        bucket_id = (await harness.create(name)).bucket_id
        granted = await harness.cosi.grant(bucket_id, access)
        await harness.restart()
        assert (await harness.create(name)).bucket_id == bucket_id
        again = await harness.cosi.grant(bucket_id, access)
        assert again.account_id == granted.account_id
        assert credential_secrets(again) == credential_secrets(granted)

    async def test_health_check_passes(self, harness: Harness) -> None:
        reports = await harness.driver.check_health()
        assert [(report.backend, report.ok) for report in reports] == [(BACKEND_NAME, True)], reports

    # -- data path (S3-speaking backends) -----------------------------------------------------

    def _require_s3(self, harness: Harness) -> None:
        if not harness.backend_type.s3_compatible:
            pytest.skip(f"backend type {harness.target.backend_type!r} serves no S3 data path")

    async def _grant_s3(self, harness: Harness, bucket_id: str, mode: str) -> dict[str, str]:
        return s3_secrets(await harness.cosi.grant(bucket_id, harness.new_name("ba"), accessMode=mode))

    async def test_s3_readwrite_credentials_work_on_the_returned_endpoint(self, harness: Harness) -> None:
        self._require_s3(harness)
        name = harness.new_name()
        bucket_id = (await harness.create(name)).bucket_id
        keys = await self._grant_s3(harness, bucket_id, "readwrite")
        s3 = S3Session(keys, harness.target.propagation_seconds)
        assert await s3.eventually_allowed("put", name, "hello.txt")
        assert await s3.allowed("get", name, "hello.txt")
        assert await s3.allowed("list", name)
        assert await s3.allowed("delete", name, "hello.txt")

    async def test_s3_read_mode_reads_but_cannot_write(self, harness: Harness) -> None:
        self._require_s3(harness)
        name = harness.new_name()
        bucket_id = (await harness.create(name)).bucket_id
        await harness.target.probe.put_object(name, "existing.txt", b"data")
        s3 = S3Session(await self._grant_s3(harness, bucket_id, "read"), harness.target.propagation_seconds)
        assert await s3.eventually_allowed("get", name, "existing.txt")
        assert await s3.allowed("list", name)
        assert not await s3.allowed("put", name, "new.txt")
        assert not await s3.allowed("delete", name, "existing.txt")
        assert await harness.target.probe.object_exists(name, "existing.txt")

    async def test_s3_write_mode_writes_but_cannot_read(self, harness: Harness) -> None:
        self._require_s3(harness)
        name = harness.new_name()
        bucket_id = (await harness.create(name)).bucket_id
        s3 = S3Session(await self._grant_s3(harness, bucket_id, "write"), harness.target.propagation_seconds)
        assert await s3.eventually_allowed("put", name, "upload.txt")
        assert not await s3.allowed("get", name, "upload.txt")
        assert not await s3.allowed("list", name)

    async def test_s3_credentials_do_not_reach_other_buckets(self, harness: Harness) -> None:
        self._require_s3(harness)
        mine, other = harness.new_name(), harness.new_name()
        bucket_id = (await harness.create(mine)).bucket_id
        await harness.create(other)
        await harness.target.probe.put_object(other, "secret.txt", b"data")
        s3 = S3Session(await self._grant_s3(harness, bucket_id, "readwrite"), harness.target.propagation_seconds)
        assert await s3.eventually_allowed("put", mine, "ok.txt")
        for operation, key in (("get", "secret.txt"), ("put", "x.txt"), ("list", None), ("delete", "secret.txt")):
            assert not await s3.allowed(operation, other, key), operation

    async def test_s3_revoked_keys_stop_working_and_the_data_stays(self, harness: Harness) -> None:
        self._require_s3(harness)
        name = harness.new_name()
        bucket_id = (await harness.create(name)).bucket_id
        granted = await harness.cosi.grant(bucket_id, harness.new_name("ba"), accessMode="readwrite")
        s3 = S3Session(s3_secrets(granted), harness.target.propagation_seconds)
        assert await s3.eventually_allowed("put", name, "uploaded.txt")
        await harness.cosi.revoke(bucket_id, granted.account_id)
        assert await s3.eventually_denied("get", name, "uploaded.txt")
        assert await harness.target.probe.object_exists(name, "uploaded.txt")

    async def test_s3_retried_grant_returns_a_key_that_still_works(self, harness: Harness) -> None:
        self._require_s3(harness)
        name, access = harness.new_name(), harness.new_name("ba")
        bucket_id = (await harness.create(name)).bucket_id
        first = s3_secrets(await harness.cosi.grant(bucket_id, access))
        assert await S3Session(first, harness.target.propagation_seconds).eventually_allowed("put", name, "1.txt")
        second = s3_secrets(await harness.cosi.grant(bucket_id, access))
        assert second == first
        assert await S3Session(first, harness.target.propagation_seconds).allowed("put", name, "2.txt")

    # -- data path (Azure Blob backends) ------------------------------------------------------

    async def _azure_session(self, harness: Harness, bucket_id: str, mode: str) -> Any:
        if ObjectProtocol.AZURE not in harness.backend_type.protocols:
            pytest.skip(f"backend type {harness.target.backend_type!r} serves no Azure Blob data path")
        from cosi_driver.testing.azure import AzureSession

        granted = await harness.cosi.grant(bucket_id, harness.new_name("ba"), accessMode=mode)
        assert list(granted.credentials) == ["azure"], list(granted.credentials)
        secrets = dict(granted.credentials["azure"].secrets)
        expiry = parse_go_time(secrets["expiryTs"])
        assert expiry is not None and expiry > datetime.now(UTC), secrets["expiryTs"]
        return AzureSession(secrets["accessToken"], harness.target.propagation_seconds), granted.account_id

    async def test_azure_each_mode_does_exactly_its_operations(self, harness: Harness) -> None:
        expected = {
            "read": {"get": True, "list": True, "create": False, "put": False, "delete": False},
            "readwrite": {"create": True, "put": True, "get": True, "list": True, "delete": True},
            "write": {"create": True, "put": True, "get": False, "list": False, "delete": False},
        }
        for mode, operations in expected.items():
            name = harness.new_name()
            bucket_id = (await harness.create(name)).bucket_id
            await harness.target.probe.put_object(name, "there.txt", b"data")
            session, _ = await self._azure_session(harness, bucket_id, mode)
            first = next(op for op, allowed in operations.items() if allowed)
            assert await session.eventually_allowed(first, "there.txt" if first != "create" else "new-0.txt"), mode
            for number, (operation, allowed) in enumerate(operations.items()):
                key = f"new-{number + 1}.txt" if operation == "create" else "there.txt"
                assert await session.allowed(operation, key) is allowed, (mode, operation)

    async def test_azure_sas_does_not_reach_another_container(self, harness: Harness) -> None:
        mine, other = harness.new_name(), harness.new_name()
        bucket_id = (await harness.create(mine)).bucket_id
        await harness.create(other)
        await harness.target.probe.put_object(other, "secret.txt", b"data")
        session, _ = await self._azure_session(harness, bucket_id, "readwrite")
        assert await session.eventually_allowed("put", "ok.txt")
        for operation, key in (("get", "secret.txt"), ("put", "x.txt"), ("list", None), ("delete", "secret.txt")):
            assert not await session.allowed(operation, key, container=other), operation
        assert await harness.target.probe.object_exists(other, "secret.txt")

    async def test_azure_revoked_sas_is_refused_and_the_data_stays(self, harness: Harness) -> None:
        name = harness.new_name()
        bucket_id = (await harness.create(name)).bucket_id
        session, account_id = await self._azure_session(harness, bucket_id, "readwrite")
        assert await session.eventually_allowed("put", "uploaded.txt")
        await harness.cosi.revoke(bucket_id, account_id)
        for operation in ("get", "put", "list"):
            assert await session.eventually_denied(operation, "uploaded.txt"), operation
        assert await harness.target.probe.object_exists(name, "uploaded.txt")

    # -- v1alpha2 operations (through the core until the suite has a v1alpha2 client) ----------

    async def _v2_grant(self, harness: Harness, name: str, buckets: list[tuple[str, AccessMode]], **params: str) -> Any:
        return await harness.driver.grant_access(name, buckets, AuthenticationType.KEY, params, rules=V1ALPHA2)

    async def test_a_multi_bucket_grant_gives_each_bucket_its_own_mode(self, harness: Harness) -> None:
        names = [harness.new_name() for _ in range(3)]
        bucket_ids = [(await harness.create(name)).bucket_id for name in names]
        modes = [AccessMode.READ_WRITE, AccessMode.READ_ONLY, AccessMode.WRITE_ONLY]
        request = list(zip(bucket_ids, modes, strict=True))
        if not harness.backend_type.multi_bucket_grants:
            message = await _refused(self._v2_grant(harness, harness.new_name("ba"), request), "OUT_OF_RANGE")
            assert "several buckets" in message
            single = await self._v2_grant(harness, harness.new_name("ba"), request[:1])
            assert [granted.bucket_id for granted in single.buckets] == bucket_ids[:1]
            return
        access = await self._v2_grant(harness, harness.new_name("ba"), request)
        assert [(granted.bucket_id, granted.mode) for granted in access.buckets] == request
        for granted, name in zip(access.buckets, names, strict=True):
            info = granted.info
            assert isinstance(info, S3BucketInfo)
            assert (info.bucket_name, bool(info.endpoint), bool(info.region)) == (name, True, True)
        assert await harness.target.probe.account_exists(_account_name(access.account_id))
        if harness.backend_type.s3_compatible:
            await self._check_modes_on_the_data_path(harness, access, names)

    async def _check_modes_on_the_data_path(self, harness: Harness, access: Any, names: list[str]) -> None:
        """Each bucket in exactly its mode, a bucket not granted unreachable; revoke ends all, data stays."""
        readwrite, readonly, writeonly = names
        probe = harness.target.probe
        stranger = (await harness.create()).bucket_id
        for name in names:
            await probe.put_object(name, "there.txt", b"data")
        await probe.put_object(_bucket_name(stranger), "secret.txt", b"data")
        s3 = S3Session(_secrets(access), harness.target.propagation_seconds)
        assert await s3.eventually_allowed("put", readwrite, "a.txt")
        assert await s3.allowed("get", readwrite, "a.txt")
        assert await s3.allowed("list", readwrite)
        assert await s3.eventually_allowed("get", readonly, "there.txt")
        assert await s3.allowed("list", readonly)
        assert not await s3.allowed("put", readonly, "new.txt")
        assert not await s3.allowed("delete", readonly, "there.txt")
        assert await s3.eventually_allowed("put", writeonly, "up.txt")
        # Not even what it wrote itself (Ceph RGW lets an uploader read its objects unless denied).
        assert not await s3.allowed("get", writeonly, "up.txt")
        assert not await s3.allowed("get", writeonly, "there.txt")
        assert not await s3.allowed("list", writeonly)
        for operation, key in (("get", "secret.txt"), ("put", "x.txt"), ("list", None)):
            assert not await s3.allowed(operation, _bucket_name(stranger), key), operation
        await harness.driver.revoke_access(access.account_id, [b.bucket_id for b in access.buckets], rules=V1ALPHA2)
        assert await s3.eventually_denied("get", readwrite, "a.txt")
        assert await s3.eventually_denied("get", readonly, "there.txt")
        assert await s3.eventually_denied("put", writeonly, "after.txt")
        for name, key in (
            (readwrite, "a.txt"),
            (readonly, "there.txt"),
            (writeonly, "up.txt"),
            (writeonly, "there.txt"),
        ):
            assert await probe.object_exists(name, key), f"{name}/{key} did not survive the revoke"

    async def test_a_repeated_v2_grant_returns_the_same_account_and_keys(self, harness: Harness) -> None:
        count = 2 if harness.backend_type.multi_bucket_grants else 1
        request = [((await harness.create()).bucket_id, AccessMode.READ_ONLY) for _ in range(count)]
        name = harness.new_name("ba")
        answers = await asyncio.gather(*(self._v2_grant(harness, name, request) for _ in range(5)))
        answers.append(await self._v2_grant(harness, name, request))
        assert len({answer.account_id for answer in answers}) == 1
        assert len({answer.credentials for answer in answers}) == 1

    async def test_the_same_name_with_other_terms_is_already_exists_naming_the_difference(
        self, harness: Harness
    ) -> None:
        first = (await harness.create()).bucket_id
        name = harness.new_name("ba")
        await self._v2_grant(harness, name, [(first, AccessMode.READ_WRITE)])
        message = await _refused(self._v2_grant(harness, name, [(first, AccessMode.READ_ONLY)]), "ALREADY_EXISTS")
        assert _bucket_name(first) in message and "READ_WRITE" in message and "READ_ONLY" in message
        if harness.backend_type.multi_bucket_grants:
            second = (await harness.create()).bucket_id
            call = self._v2_grant(harness, name, [(first, AccessMode.READ_WRITE), (second, AccessMode.READ_ONLY)])
            message = await _refused(call, "ALREADY_EXISTS")
            assert _bucket_name(second) in message and "newly requested" in message
        # Revoke forgets the terms: the name may then be granted anew with others.
        account_id = (await self._v2_grant(harness, name, [(first, AccessMode.READ_WRITE)])).account_id
        await harness.driver.revoke_access(account_id, [first], rules=V1ALPHA2)
        assert not await harness.target.probe.account_exists(_account_name(account_id))
        await self._v2_grant(harness, name, [(first, AccessMode.READ_ONLY)])

    async def test_a_v2_grant_naming_a_bucket_twice_or_asking_for_a_service_account_is_refused(
        self, harness: Harness
    ) -> None:
        bucket_id = (await harness.create()).bucket_id
        twice = [(bucket_id, AccessMode.READ_ONLY), (bucket_id, AccessMode.READ_WRITE)]
        message = await _refused(self._v2_grant(harness, harness.new_name("ba"), twice), "INVALID_ARGUMENT")
        assert "buckets[1].bucket_id" in message and "twice" in message
        if not harness.backend_type.supports_service_account:
            call = harness.driver.grant_access(
                harness.new_name("ba"), [(bucket_id, AccessMode.READ_ONLY)], AuthenticationType.SERVICE_ACCOUNT, {},
                rules=V1ALPHA2,
            )  # fmt: skip
            assert "SERVICE_ACCOUNT" in await _refused(call, "INVALID_ARGUMENT")
        call = self._v2_grant(harness, harness.new_name("ba"), [(bucket_id, AccessMode.READ_ONLY)], accessMode="read")
        assert "accessMode" in await _refused(call, "INVALID_ARGUMENT")

    async def test_protocols_are_declared_and_checked(self, harness: Harness) -> None:
        served = harness.backend_type.protocols
        assert served and set(harness.driver.supported_protocols()) == set(served)
        name = harness.new_name()
        bucket = await harness.driver.create_bucket(
            name, dict(harness.target.bucket_params), list(served), rules=V1ALPHA2
        )
        harness.buckets.add(bucket.bucket_id)
        if ObjectProtocol.S3 in served:
            info = bucket.info
            assert isinstance(info, S3BucketInfo)
            assert info.bucket_name == name and info.endpoint and info.region and info.addressing_style
        for protocol in ObjectProtocol:
            if protocol not in served:
                call = harness.driver.create_bucket(harness.new_name(), {}, [protocol], rules=V1ALPHA2)
                assert protocol.value in await _refused(call, "INVALID_ARGUMENT")

    # -- ids ----------------------------------------------------------------------------------

    async def test_ids_carry_dotted_long_and_unicode_names_reversibly(self, harness: Harness) -> None:
        stem = harness.new_name()
        for name in (f"{stem}.with.dots", f"{stem}-" + "x" * (253 - len(stem) - 1), f"{stem}-ünï-名"):
            try:
                bucket = await harness.driver.create_bucket(name, dict(harness.target.bucket_params), rules=V1ALPHA2)
            except CosiError as error:  # the storage's own naming rules may refuse it; precisely, then
                assert error.code == "INVALID_ARGUMENT", error.message
                continue
            harness.buckets.add(bucket.bucket_id)
            assert ids.ID_CHARACTERS.fullmatch(bucket.bucket_id) and len(bucket.bucket_id) <= ids.MAX_ID_CHARS
            assert ids.parse_bucket_id(bucket.bucket_id).bucket == name
            assert await harness.target.probe.bucket_exists(name)
            grant = await self._v2_grant(harness, harness.new_name("ba"), [(bucket.bucket_id, AccessMode.READ_ONLY)])
            assert ids.ID_CHARACTERS.fullmatch(grant.account_id)

    async def test_a_v1alpha1_name_whose_id_would_not_fit_128_bytes_is_refused(self, harness: Harness) -> None:
        name = harness.new_name() + "-" + "n" * 100  # 121 characters: within 128, its id is not
        message = await expect_error(harness.create(name), grpc.StatusCode.INVALID_ARGUMENT)
        assert "name is too long" in message
        assert not await harness.target.probe.bucket_exists(name)

    # -- existing buckets ---------------------------------------------------------------------

    async def test_an_allowed_existing_bucket_is_granted_and_never_deleted(self, harness: Harness) -> None:
        name, probe = harness.new_name(EXISTING_PREFIX), harness.target.probe
        await probe.create_foreign_bucket(name)
        try:
            await probe.put_object(name, "theirs.txt", b"not ours")
            bucket = await harness.driver.get_existing_bucket(name, {}, rules=V1ALPHA2)
            assert bucket.existing and ids.parse_bucket_id(bucket.bucket_id) == ids.BucketRef(BACKEND_NAME, name, True)
            assert (await harness.driver.get_existing_bucket(name, {}, rules=V1ALPHA2)) == bucket
            v2 = await self._v2_grant(harness, harness.new_name("ba"), [(bucket.bucket_id, AccessMode.READ_ONLY)])
            assert await probe.account_exists(_account_name(v2.account_id))
            if harness.backend_type.s3_compatible:
                s3 = S3Session(_secrets(v2), harness.target.propagation_seconds)
                assert await s3.eventually_allowed("get", name, "theirs.txt")
                assert not await s3.allowed("put", name, "ours.txt")
            # A v1alpha1 static Bucket: its existingBucketID arrives verbatim as bucket_id.
            v1 = await harness.cosi.grant(name, harness.new_name("ba"), accessMode="read")
            await harness.cosi.revoke(name, v1.account_id)
            assert not await probe.account_exists(_account_name(v1.account_id))
            await harness.cosi.delete(bucket.bucket_id, deletionPolicy="purge")
            await harness.driver.delete_bucket(bucket.bucket_id, {"deletionPolicy": "purge"}, rules=V1ALPHA2)
            assert await probe.bucket_exists(name) and await probe.object_exists(name, "theirs.txt")
            await harness.driver.revoke_access(v2.account_id, [bucket.bucket_id], rules=V1ALPHA2)
            assert not await probe.account_exists(_account_name(v2.account_id))
            assert await probe.object_exists(name, "theirs.txt")
            if harness.backend_type.s3_compatible:
                assert await s3.eventually_denied("get", name, "theirs.txt")
        finally:
            await probe.remove_foreign_bucket(name)

    async def test_an_existing_bucket_outside_the_allow_list_is_refused(self, harness: Harness) -> None:
        name, probe = harness.new_name("foreign"), harness.target.probe
        await probe.create_foreign_bucket(name)
        try:
            message = await _refused(harness.driver.get_existing_bucket(name, {}, rules=V1ALPHA2), "PERMISSION_DENIED")
            assert "existingBuckets" in message
            message = await expect_error(harness.cosi.grant(name, harness.new_name("ba")), grpc.StatusCode.NOT_FOUND)
            assert "existingBuckets" in message
            absent = harness.new_name(EXISTING_PREFIX)
            await _refused(harness.driver.get_existing_bucket(absent, {}, rules=V1ALPHA2), "NOT_FOUND")
            await expect_error(harness.cosi.grant(absent, harness.new_name("ba")), grpc.StatusCode.NOT_FOUND)
            assert await probe.bucket_exists(name)
        finally:
            await probe.remove_foreign_bucket(name)


def _secrets(access: Any) -> dict[str, str]:
    """The keys of a core Access as the Secret a consumer gets names them (S3 credentials)."""
    credentials = access.credentials
    return {
        "accessKeyID": credentials.access_key_id,
        "accessSecretKey": credentials.secret_access_key.reveal(),
        "endpoint": credentials.endpoint,
        "region": credentials.region,
    }


async def _refused(call: Any, code: str) -> str:
    """The message of the core error ``call`` raises, which must carry gRPC status ``code``."""
    with pytest.raises(CosiError) as raised:
        await call
    assert raised.value.code == code, raised.value.message
    return raised.value.message


__all__ = ["AcceptanceTarget", "BackendAcceptanceSuite", "Harness", "S3Session", "running"]
