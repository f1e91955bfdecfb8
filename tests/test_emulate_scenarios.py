"""The end-to-end fault scenarios (``tests/e2e/test_faults.py``), proven where no control plane runs.

CI has no kube-apiserver, so the upstream sidecar cannot call the driver there; the emulated v0.2.2
sidecar (``cosi_driver.testing.emulator``) does instead, with the sidecar's measured behaviour
(backoff, 40 workers, duplicates, which codes are retried). Each scenario runs ``cosi-driver serve``
as a child process on a real UNIX socket, on every backend: the filesystem, the session's SeaweedFS
(``s3``) and the session's Ceph RGW (``ceph-rgw``). Storage is looked into only through the
backend profiles the e2e suite uses (``tests/backend_profiles.py``).

Points of action are chosen by progress seen in the calls (after k answered Creates), never by
sleeping. The time each scenario took is listed at the end of the pytest run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cosi_driver.core import ids
from cosi_driver.testing.emulator import Call, EmulatorOptions, Record, SidecarBurst, emulate
from tests.backend_profiles import (
    BackendProfile,
    CephRGWProfile,
    Credentials,
    FilesystemProfile,
    Grant,
    SeaweedFSProfile,
)
from tests.support import DriverProcess, start_driver

BURST = 20
MODE = "readwrite"
#: An outage is told as gone storage (UNAVAILABLE) or storage that did not answer in the driver's
#: time limit (DEADLINE_EXCEEDED); which one depends on how far a call got, on any backend.
OUTAGE_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED")
OUTAGE_STATUSES = ("code = Unavailable", "code = DeadlineExceeded")
BACKENDS = [
    pytest.param("filesystem"),
    pytest.param("seaweedfs", marks=pytest.mark.seaweedfs),
    pytest.param("ceph-rgw", marks=pytest.mark.ceph),
]
#: Secret-bearing settings of ``cosi-driver serve``, by the name of the variable.
SECRET_SETTINGS = ("SECRET", "ACCESS_KEY", "MASTER_KEY")

pytestmark = pytest.mark.usefixtures("scenario_clock")  # per-scenario times in the terminal summary


@dataclass
class Served:
    """``cosi-driver serve`` for one profile, which can be SIGKILLed and restarted on its socket and state."""

    profile: BackendProfile
    workdir: Path
    env: dict[str, str]
    driver: DriverProcess = field(init=False)

    def __post_init__(self) -> None:
        self.driver = start_driver(self.env, self.workdir)

    def kill(self) -> None:
        self.driver.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.driver = start_driver(self.env, self.workdir)

    def stop(self) -> None:
        """Stop the driver running now (the last one started)."""
        self.driver.stop()

    def secrets(self) -> set[str]:
        return {value for key, value in self.env.items() if any(word in key for word in SECRET_SETTINGS)}


@contextlib.contextmanager
def served(
    backend: str, request: pytest.FixtureRequest, workdir: Path, private_storage: bool = False, **env: str
) -> Iterator[Served]:
    """The driver over ``backend``; ``private_storage`` gives SeaweedFS a server of the test's own
    (its outage stops the process, which the session's other tests must not see). The session's
    Ceph gateway is frozen in place instead: ``CephRgw.paused()`` is the fixture's own, and the
    gateway thaws with its data and its users' connections."""
    with contextlib.ExitStack() as stack:
        profile: BackendProfile
        if backend == "filesystem":
            profile = FilesystemProfile(workdir / "filesystem")
        elif backend == "seaweedfs" and private_storage:
            from tests.fixtures.seaweedfs import running_seaweedfs

            profile = SeaweedFSProfile(stack.enter_context(running_seaweedfs(workdir / "seaweedfs-server")))
        elif backend == "seaweedfs":
            profile = SeaweedFSProfile(request.getfixturevalue("seaweedfs"))
        else:
            profile = CephRGWProfile(request.getfixturevalue("ceph_rgw"))
        stack.callback(profile.close)
        server = Served(profile, workdir, {**profile.driver_env(), **env})
        stack.callback(server.stop)
        yield server


def options(server: Served, **overrides: Any) -> EmulatorOptions:
    """Fast retries for tests (the sidecar's 30 s cap lowered), and patience for the faults."""
    base = EmulatorOptions(
        endpoint=server.driver.endpoint,
        bucket_params=server.profile.bucket_class_parameters(),
        access_params={"accessMode": MODE},
        max_backoff=0.25,
        max_attempts=400,
        reconnect_backoff=0.1,
        call_timeout=60.0,
    )
    return dataclasses.replace(base, **overrides)


def ok_answers(record: Record, rpc: str) -> set[str]:
    return {call.message for call in record.calls if call.rpc == rpc and call.code == "OK"}


def grants(records: list[Record]) -> list[Grant]:
    """What each access was granted: one bucket_id and one account_id each, and its Secret."""
    result = []
    for record in records:
        assert record.secret is not None, f"{record.names['BucketAccess']} has no Secret"
        bucket_id = record.provisioned["Bucket.status"]["bucketID"]
        account_id = record.provisioned["BucketAccess.status"]["accountID"]
        result.append(
            Grant(
                bucket=ids.parse_bucket_id(bucket_id).bucket,
                account=ids.parse_account_id(account_id).account,
                mode=MODE,
                credentials=Credentials.from_bucket_info(record.secret),
            )
        )
    return result


def check_storage_matches(profile: BackendProfile, before: set[str], records: list[Record]) -> list[Grant]:
    """Each claim completed once, storage holds exactly its buckets and accounts, the Secrets work."""
    for record in records:
        assert record.ok, (record.names, record.problems)
        # Every Create that succeeded (retries after a kill, the duplicate) named the same bucket_id,
        # every Grant the same account: the Secret, written once from the first, stays right.
        assert len(ok_answers(record, "DriverCreateBucket")) == 1, record.calls
        assert len(ok_answers(record, "DriverGrantBucketAccess")) == 1, record.calls
    granted = grants(records)
    in_storage = {grant.bucket for grant in granted}
    assert len(in_storage) == len(records), "two claims got the same bucket"
    assert profile.buckets() - before == in_storage, "storage holds a bucket no claim owns"
    assert profile.accounts(in_storage) == {grant.account for grant in granted}, "an account no access owns"
    for grant in granted:
        profile.check_granted(grant)
    return granted


async def delete_and_check_clean(
    burst: SidecarBurst, profile: BackendProfile, before: set[str], buckets: set[str]
) -> None:
    await burst.delete()
    for record in burst.record.objects:
        assert record.ok and record.after_delete["BucketClaim"] == "deleted", (record.names, record.problems)
    assert await asyncio.to_thread(profile.buckets) - before == set(), "a deleted claim's bucket is still in storage"
    assert await asyncio.to_thread(profile.accounts, buckets) == set(), "a deleted access's account is still in storage"


# -- a. the driver SIGKILLed twice during a burst ------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_driver_killed_twice_mid_burst_completes_every_claim_once(
    backend: str, request: pytest.FixtureRequest, workdir: Path
) -> None:
    with served(backend, request, workdir) as server:
        asyncio.run(_killed_mid_burst(server))


async def _killed_mid_burst(server: Served) -> None:
    profile = server.profile
    before = await asyncio.to_thread(profile.buckets)
    answered = {"DriverCreateBucket": set[str](), "DriverGrantBucketAccess": set[str]()}
    kills: list[tuple[str, int]] = []
    killed = asyncio.Event()

    def watch(call: Call) -> None:
        """Kill at a point of progress: after the 3rd bucket made, then after the 3rd access granted."""
        if call.code != "OK" or call.rpc not in answered:
            return
        answered[call.rpc].add(call.subject)
        if len(kills) == 0 and len(answered["DriverCreateBucket"]) == 3:
            kill("DriverCreateBucket")
        elif len(kills) == 1 and len(answered["DriverGrantBucketAccess"]) == 3:
            kill("DriverGrantBucketAccess")

    def kill(rpc: str) -> None:
        server.kill()  # at once, in the middle of the calls other workers have in flight
        kills.append((rpc, len(answered[rpc])))
        killed.set()

    async def restarter() -> None:
        for _ in range(2):
            await killed.wait()
            killed.clear()
            await asyncio.to_thread(server.restart)

    async with SidecarBurst(options(server, claims=BURST), observer=watch) as burst:
        assert burst.record.ok, burst.record.problems
        restarts = asyncio.create_task(restarter())
        clock = time.monotonic()
        await burst.provision()
        await asyncio.wait_for(restarts, 60)
        print(f"provisioned in {time.monotonic() - clock:.1f} s")
        assert [rpc for rpc, _ in kills] == ["DriverCreateBucket", "DriverGrantBucketAccess"]
        assert all(count < BURST for _, count in kills), f"the burst was over before a kill: {kills}"
        records = burst.record.objects
        refused = {event.message for record in records for event in record.events}
        failed = sum(1 for record in records for call in record.calls if call.code != "OK")
        print(f"driver SIGKILLed after {kills[0][1]} of {BURST} buckets made, again after {kills[1][1]} of {BURST}")
        print(f"accesses granted; {failed} calls refused; {len(refused)} distinct Event messages:")
        for message in sorted(refused):
            print(f"  {message[:200]}")
        assert any("code = Unavailable" in message for message in refused), "no call ever met the killed driver"
        clock = time.monotonic()
        granted = await asyncio.to_thread(check_storage_matches, profile, before, records)
        print(f"storage checked in {time.monotonic() - clock:.1f} s")
        clock = time.monotonic()
        await delete_and_check_clean(burst, profile, before, {grant.bucket for grant in granted})
        print(f"deleted and checked in {time.monotonic() - clock:.1f} s")


# -- b. the storage goes away while claims are applied ------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_storage_outage_while_claims_are_applied_recovers_without_a_restart(
    backend: str, request: pytest.FixtureRequest, workdir: Path
) -> None:
    # A frozen gateway must fail calls soon: the driver's own time limit, not the sidecar's (none).
    with served(backend, request, workdir, private_storage=True, COSI_DRIVER_OPERATION_TIMEOUT="2") as server:
        asyncio.run(_outage(server))


async def _outage(server: Served) -> None:
    profile, claims = server.profile, 5
    before = await asyncio.to_thread(profile.buckets)
    driver_pid = server.driver.process.pid
    refused_by_outage: set[str] = set()
    all_refused = asyncio.Event()

    def watch(call: Call) -> None:
        if call.rpc == "DriverCreateBucket" and call.code in OUTAGE_CODES:
            refused_by_outage.add(call.subject)
            if len(refused_by_outage) == claims:
                all_refused.set()

    async with SidecarBurst(options(server, claims=claims), observer=watch) as burst:
        outage = profile.outage()
        await asyncio.to_thread(outage.__enter__)
        try:
            provisioning = asyncio.create_task(burst.provision())
            await asyncio.wait_for(all_refused.wait(), 60)  # every claim's Create refused as an outage
        finally:
            await asyncio.to_thread(outage.__exit__, None, None, None)
        await asyncio.wait_for(provisioning, 120)

        assert server.driver.process.pid == driver_pid and server.driver.process.poll() is None
        records = burst.record.objects
        for record in records:
            messages = [event.message for event in record.events if event.reason == "FailedCreateBucket"]
            assert messages, f"{record.names['Bucket']} saw no outage"
            for message in messages:
                assert any(code in message for code in OUTAGE_STATUSES), message
                assert "Traceback" not in message
        granted = await asyncio.to_thread(check_storage_matches, profile, before, records)
        secrets = server.secrets() | {
            value
            for grant in granted
            for value in (grant.credentials.access_key_id, grant.credentials.secret_access_key)
        }
        said = [event.message for record in records for event in record.events]
        said += [call.message for record in records for call in record.calls]
        said += [line for record in records for line in record.sidecar_log]
        leaked = [text for text in said for secret in secrets if secret and secret in text]
        assert leaked == [], "a secret in a status message or Event"
        await delete_and_check_clean(burst, profile, before, {grant.bucket for grant in granted})


# -- c. a BucketClass parameter the driver refuses ----------------------------------------------------

BAD_PARAMETERS = {
    "bad-value": ("deletionPolicy", "sometimes"),
    "unknown": ("deletionPolicyy", "retain"),
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bad_parameter_is_refused_naming_it_retried_and_leaves_nothing(
    backend: str, request: pytest.FixtureRequest, workdir: Path
) -> None:
    with served(backend, request, workdir) as server:
        before = server.profile.buckets()
        for parameter, value in BAD_PARAMETERS.values():
            params = {**server.profile.bucket_class_parameters(), parameter: value}
            record = asyncio.run(emulate(options(server, bucket_params=params, max_attempts=3, max_backoff=0.05)))
            _check_refused(server, before, record, parameter)


def _check_refused(server: Served, before: set[str], record: Record, parameter: str) -> None:
    # v1alpha1's sidecar retries every code: three Creates, all refused, then reported as stuck.
    creates = [call for call in record.calls if call.rpc == "DriverCreateBucket"]
    assert [call.code for call in creates] == ["INVALID_ARGUMENT"] * 3
    assert [problem.kind for problem in record.problems] == ["stuck"]
    assert "DriverGrantBucketAccess" not in {call.rpc for call in record.calls}
    [event] = record.events
    assert (event.reason, event.kind, event.count) == ("FailedCreateBucket", "Bucket", 3)
    assert "code = InvalidArgument" in event.message and f"'{parameter}'" in event.message, event.message
    assert "Traceback" not in event.message and "correlation id" not in event.message
    bucket = record.names["Bucket"]
    assert server.profile.buckets() - before == set(), "a refused Create left a bucket in storage"
    state = server.workdir / "state"
    assert not [p for p in state.rglob("*") if p.is_file() and bucket in p.read_text(errors="replace")]
