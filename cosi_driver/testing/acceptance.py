"""The acceptance suite every backend runs, with one fixture.

Like Thanos' objstore acceptance test, one suite holds every backend to the same COSI behaviour.
The rules a caller can see are written once, as the ``cosi-driver conformance`` checks: the suite
runs all of them, v1alpha1 and v1alpha2, over its harness's socket, with the data path where the
backend serves one. Its own tests add only what needs the storage's side of the story (a probe:
buckets and accounts really made and removed, deletion per policy, revoke that keeps data,
foreign and existing buckets) or the backend's own declarations (parameter schemas, protocols,
capabilities), plus restart persistence and health. Calls go through the real server on a real
UNIX socket, as the sidecar's would.

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
from cosi_driver.config.settings import API_VERSIONS, load_settings
from cosi_driver.core import ids, registry
from cosi_driver.core.backend import NamesAccounts
from cosi_driver.core.driver import Driver
from cosi_driver.core.errors import CosiError
from cosi_driver.core.existing import ExistingBuckets
from cosi_driver.core.options import SecretRef, parse_options
from cosi_driver.core.params import BACKEND_PARAMETER, BucketParams, Quota, Versioning, specs
from cosi_driver.core.secret import Secret
from cosi_driver.core.types import AccessMode, AuthenticationType, ObjectProtocol
from cosi_driver.core.validation import V1ALPHA2
from cosi_driver.core.values import ValueProblem
from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.testing import conformance
from cosi_driver.testing.client import CosiClient, credential_secrets, expect_error, s3_secrets
from cosi_driver.testing.conformance import CheckResult, Options, Outcome
from cosi_driver.testing.probes import S3Session, StorageProbe
from cosi_driver.testing.sidecar_formats import parse_go_time

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
        self.client = CosiClient(self.endpoint)
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
    def endpoint(self) -> str:
        """The socket's gRPC address (``unix://...``), for clients beyond :attr:`cosi`."""
        assert self.app is not None and self.app.server is not None, "the harness is not started"
        return self.app.server.spec.address

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


# The v1alpha2 checks that only an S3 backend can pass (their data path is S3's); the grant and
# revoke checks pick the driver's own protocol and run everywhere.
_V1ALPHA2_S3_ONLY = ("v2.s3",)


def conformance_options(harness: Harness, api: str) -> Options:
    """A conformance run over the harness's socket, told everything its checks can use.

    The second BucketClass differs in ``deletionPolicy``; read-only and write-only classes use
    ``accessMode``; the data-path checks run where the backend serves that protocol.
    """
    params = dict(harness.target.bucket_params)
    other_policy = "delete" if params.get("deletionPolicy") == "retain" else "retain"
    return Options(
        endpoint=harness.endpoint,
        bucket_params=params,
        alt_bucket_params={**params, "deletionPolicy": other_policy},
        read_access_params={"accessMode": "read"},
        write_access_params={"accessMode": "write"},
        s3_check=harness.backend_type.s3_compatible,
        azure_check=ObjectProtocol.AZURE in harness.backend_type.protocols,
        propagation_seconds=harness.target.propagation_seconds,
        timeout=harness.target.operation_timeout,
        apis=(api,),
        skip=() if ObjectProtocol.S3 in harness.backend_type.protocols else _V1ALPHA2_S3_ONLY,
    )


def _not_applicable(harness: Harness, result: CheckResult) -> bool:
    """A skip the backend explains: a data path it does not serve, grants it declares single-bucket."""
    if result.outcome is not Outcome.SKIP:
        return False
    reason = result.reason
    single_bucket = not harness.backend_type.multi_bucket_grants and "OUT_OF_RANGE" in reason
    return reason.startswith("data-path check") or reason.endswith("which was skipped") or single_bucket


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

    # -- the COSI rules: every conformance check, over this harness's socket ---------------------

    @pytest.mark.parametrize("api", API_VERSIONS)
    async def test_every_applicable_conformance_check_passes(self, harness: Harness, api: str) -> None:
        """The rules the wire shows are written once, in ``cosi_driver.testing.conformance``.

        The tests below add only what needs the backend's own knowledge: storage probes, its
        declared capabilities and schemas, a restart.
        """
        report = await conformance.run(conformance_options(harness, api))
        problems = {
            result.name: f"{result.outcome.value}: {result.reason}"
            for result in report.results
            if result.outcome is not Outcome.PASS and not _not_applicable(harness, result)
        }
        assert problems == {}, "\n".join(f"{name}: {reason}" for name, reason in problems.items())
        assert report.count(Outcome.PASS) > 0 and report.cleanup.left_behind == []

    # -- create -------------------------------------------------------------------------------

    async def test_concurrent_identical_creates_make_the_bucket_in_storage(self, harness: Harness) -> None:
        name = harness.new_name()
        await asyncio.gather(*(harness.create(name) for _ in range(10)))
        assert await harness.target.probe.bucket_exists(name)

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

    async def test_delete_of_an_empty_bucket_removes_it_from_storage(self, harness: Harness) -> None:
        name = harness.new_name()
        bucket_id = (await harness.create(name)).bucket_id
        await harness.cosi.delete(bucket_id)
        assert not await harness.target.probe.bucket_exists(name)

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

    async def test_grant_makes_the_account_in_storage(self, harness: Harness) -> None:
        bucket_id = (await harness.create()).bucket_id
        granted = await harness.cosi.grant(bucket_id, harness.new_name("ba"))
        assert await harness.target.probe.account_exists(_account_name(granted.account_id))

    async def test_a_backend_that_names_accounts_names_the_one_it_grants(self, harness: Harness) -> None:
        """The core locks Grant and Revoke of one access under the account name the backend
        announces before any storage call; it must be the account the Grant then makes."""
        backend = harness.driver.routes[BACKEND_NAME].backend
        if not isinstance(backend, NamesAccounts):
            pytest.skip("the backend does not name its accounts before the storage call")
        name, access = harness.new_name(), harness.new_name("ba")
        granted = await harness.cosi.grant((await harness.create(name)).bucket_id, access)
        assert backend.account_name(name, access) == _account_name(granted.account_id)

    async def test_iam_authentication_is_refused_unless_supported(self, harness: Harness) -> None:
        if harness.backend_type.supports_iam:
            pytest.skip("the backend supports IAM authentication")
        bucket_id = (await harness.create()).bucket_id
        message = await expect_error(harness.cosi.grant(bucket_id, "ba-1", pb.IAM), grpc.StatusCode.INVALID_ARGUMENT)
        assert "IAM" in message

    async def test_revoke_removes_the_account_and_keeps_the_data(self, harness: Harness) -> None:
        name = harness.new_name()
        bucket_id = (await harness.create(name)).bucket_id
        await harness.target.probe.put_object(name, "kept.txt", b"data")
        account_id = (await harness.cosi.grant(bucket_id, harness.new_name("ba"))).account_id
        await harness.cosi.revoke(bucket_id, account_id)
        assert not await harness.target.probe.account_exists(_account_name(account_id))
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

    async def test_s3_retried_grant_returns_a_key_that_still_works(self, harness: Harness) -> None:
        self._require_s3(harness)
        name, access = harness.new_name(), harness.new_name("ba")
        bucket_id = (await harness.create(name)).bucket_id
        first = s3_secrets(await harness.cosi.grant(bucket_id, access))
        assert await S3Session(first, harness.target.propagation_seconds).eventually_allowed("put", name, "1.txt")
        second = s3_secrets(await harness.cosi.grant(bucket_id, access))
        assert second == first
        assert await S3Session(first, harness.target.propagation_seconds).allowed("put", name, "2.txt")

    # -- Azure Blob backends -------------------------------------------------------------------

    async def test_azure_sas_carries_an_expiry_in_the_future(self, harness: Harness) -> None:
        if ObjectProtocol.AZURE not in harness.backend_type.protocols:
            pytest.skip(f"backend type {harness.target.backend_type!r} serves no Azure Blob data path")
        bucket_id = (await harness.create()).bucket_id
        granted = await harness.cosi.grant(bucket_id, harness.new_name("ba"))
        expiry = parse_go_time(dict(granted.credentials["azure"].secrets)["expiryTs"])
        assert expiry is not None and expiry > datetime.now(UTC)

    # -- v1alpha2 operations (through the core until the suite has a v1alpha2 client) ----------

    async def _v2_grant(self, harness: Harness, name: str, buckets: list[tuple[str, AccessMode]], **params: str) -> Any:
        return await harness.driver.grant_access(name, buckets, AuthenticationType.KEY, params, rules=V1ALPHA2)

    async def test_a_multi_bucket_grant_makes_one_account_and_its_revoke_keeps_every_bucket(
        self, harness: Harness
    ) -> None:
        names = [harness.new_name() for _ in range(3)]
        bucket_ids = [(await harness.create(name)).bucket_id for name in names]
        modes = [AccessMode.READ_WRITE, AccessMode.READ_ONLY, AccessMode.WRITE_ONLY]
        request = list(zip(bucket_ids, modes, strict=True))
        if not harness.backend_type.multi_bucket_grants:
            # Conformance accepts either answer; a backend that declares no multi-bucket grants must refuse.
            message = await _refused(self._v2_grant(harness, harness.new_name("ba"), request), "OUT_OF_RANGE")
            assert "several buckets" in message
            single = await self._v2_grant(harness, harness.new_name("ba"), request[:1])
            assert [granted.bucket_id for granted in single.buckets] == bucket_ids[:1]
            return
        access = await self._v2_grant(harness, harness.new_name("ba"), request)
        assert await harness.target.probe.account_exists(_account_name(access.account_id))
        probe = harness.target.probe
        for name in names:
            await probe.put_object(name, "there.txt", b"data")
        writeonly = names[2]
        if harness.backend_type.s3_compatible:  # v2.s3.modes checks each mode; this is what storage adds
            s3 = S3Session(_secrets(access), harness.target.propagation_seconds)
            assert await s3.eventually_allowed("put", writeonly, "up.txt")
            # Not even what it wrote itself (Ceph RGW lets an uploader read its objects unless denied).
            assert not await s3.allowed("get", writeonly, "up.txt")
        await harness.driver.revoke_access(access.account_id, bucket_ids, rules=V1ALPHA2)
        assert not await probe.account_exists(_account_name(access.account_id))
        for name in names:
            assert await probe.object_exists(name, "there.txt"), f"{name} lost its data in the revoke"

    async def test_concurrent_and_repeated_v2_grants_return_one_account_and_key(self, harness: Harness) -> None:
        # v2.grant.idempotent repeats one grant in turn; no conformance check sends v1alpha2 grants at once.
        count = 2 if harness.backend_type.multi_bucket_grants else 1
        request = [((await harness.create()).bucket_id, AccessMode.READ_ONLY) for _ in range(count)]
        name = harness.new_name("ba")
        answers = await asyncio.gather(*(self._v2_grant(harness, name, request) for _ in range(5)))
        answers.append(await self._v2_grant(harness, name, request))
        assert len({answer.account_id for answer in answers}) == 1
        assert len({answer.credentials for answer in answers}) == 1

    async def test_a_v2_revoke_frees_the_name_for_other_terms(self, harness: Harness) -> None:
        bucket_id = (await harness.create()).bucket_id
        name = harness.new_name("ba")
        account_id = (await self._v2_grant(harness, name, [(bucket_id, AccessMode.READ_WRITE)])).account_id
        # v2.grant.conflict needs a multi-bucket backend; one bucket with another mode is a conflict everywhere.
        await _refused(self._v2_grant(harness, name, [(bucket_id, AccessMode.READ_ONLY)]), "ALREADY_EXISTS")
        await harness.driver.revoke_access(account_id, [bucket_id], rules=V1ALPHA2)
        assert not await harness.target.probe.account_exists(_account_name(account_id))
        await self._v2_grant(harness, name, [(bucket_id, AccessMode.READ_ONLY)])

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

    async def test_the_driver_declares_exactly_the_backend_protocols(self, harness: Harness) -> None:
        served = harness.backend_type.protocols  # v2.create.protocols checks what the wire does with them
        assert served and set(harness.driver.supported_protocols()) == set(served)

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


__all__ = [
    "BACKEND_NAME",
    "DRIVER_NAME",
    "EXISTING_PREFIX",
    "AcceptanceTarget",
    "BackendAcceptanceSuite",
    "Harness",
    "S3Session",
    "conformance_options",
    "running",
]
