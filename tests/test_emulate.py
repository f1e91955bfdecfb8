"""``cosi-driver emulate``: the v0.2.2 sidecar's call pattern against our driver and scripted ones."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

from tests.scripted_driver import (  # noqa: F401 - pytest-grpc fixtures
    Scripted,
    grpc_add_to_server_fixture,
    grpc_addr_fixture,
    grpc_servicer_fixture,
    scripted_fixture,
)
from tests.support import run_cli, start_driver

grpc_max_workers = 4

FAST = ("--max-backoff", "0.02", "--max-attempts", "4")


def emulate(endpoint: str, *flags: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("emulate", "--endpoint", endpoint, "--json", *flags, timeout=120)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def rpcs(report: dict[str, Any]) -> list[str]:
    return [call["rpc"] for call in report["calls"]]


def test_our_driver_goes_through_a_clean_lifecycle(workdir: Path) -> None:
    driver = start_driver({"COSI_DRIVER_BACKEND_ROOT": str(workdir / "data")}, workdir)
    try:
        code, report = emulate(driver.endpoint, "--access-param", "accessMode=read", *FAST)
    finally:
        assert driver.stop() == 0
    assert (code, report["ok"], report["problems"], report["events"]) == (0, True, [], [])
    assert rpcs(report) == [
        "DriverGetInfo",
        "DriverCreateBucket",
        "DriverCreateBucket",  # the duplicate
        "DriverGrantBucketAccess",
        "DriverGrantBucketAccess",
        "DriverDeleteBucket",  # the claim goes first: DeleteBucket before Revoke
        "DriverRevokeBucketAccess",
    ]
    bucket = report["names"]["Bucket"]
    assert bucket.startswith("bucket-")
    assert report["provisioned"]["Bucket.status"]["bucketID"] == f"v2.filesystem.b.{bucket}"
    info = report["secret_bucket_info"]
    assert info["metadata"]["name"].startswith("bc-")
    assert info["spec"]["bucketName"] == bucket
    assert info["spec"]["authenticationType"] == "Key" and info["spec"]["protocols"] == ["S3"]
    assert info["spec"]["secretAzure"] is None
    assert set(info["spec"]["secretS3"]) == {"endpoint", "region", "accessKeyID", "accessSecretKey"}
    assert info["spec"]["secretS3"]["accessSecretKey"] == "***"
    assert list((workdir / "data" / "buckets").iterdir()) == []


def test_the_text_report_reads_like_kubectl(workdir: Path) -> None:
    driver = start_driver({"COSI_DRIVER_BACKEND_ROOT": str(workdir / "data")}, workdir)
    try:
        result = run_cli("emulate", "--endpoint", driver.endpoint, "--show-secrets", *FAST)
    finally:
        driver.stop()
    assert result.returncode == 0
    assert "Events (kubectl get events):\n  (none)" in result.stdout
    secret_line = next(line for line in result.stdout.splitlines() if "Secret key BucketInfo:" in line)
    secret = json.loads(secret_line.split("BucketInfo: ", 1)[1])
    assert secret["spec"]["secretS3"]["accessSecretKey"] not in ("", "***")
    assert result.stdout.rstrip().endswith("Verdict: OK - a clean BucketClaim/BucketAccess lifecycle")


def test_retain_never_calls_delete_bucket(workdir: Path) -> None:
    driver = start_driver({"COSI_DRIVER_BACKEND_ROOT": str(workdir / "data")}, workdir)
    try:
        code, report = emulate(driver.endpoint, "--deletion-policy", "Retain", "--bucket-param",
                               "deletionPolicy=retain", *FAST)  # fmt: skip
    finally:
        driver.stop()
    assert code == 0
    assert "DriverDeleteBucket" not in rpcs(report)
    assert "Retain" in report["after_delete"]["Bucket"]
    assert len(list((workdir / "data" / "buckets").iterdir())) == 1


def test_already_exists_from_grant_is_reported_as_a_sidecar_crash(scripted: Scripted) -> None:
    scripted.driver.reset("grant-already-exists")
    code, report = emulate(scripted.address, *FAST)
    assert code == 1
    assert report["crashed"] is True
    assert [problem["kind"] for problem in report["problems"]] == ["crashed"]
    assert "nil pointer dereference" in report["problems"][0]["text"]
    assert rpcs(report)[-1] == "DriverGrantBucketAccess" and report["calls"][-1]["code"] == "ALREADY_EXISTS"
    assert report["secret_bucket_info"] is not None, "the first Grant succeeded and its Secret was written"


def test_already_exists_from_a_duplicated_create_wedges_the_bucket(scripted: Scripted) -> None:
    scripted.driver.reset("create-already-exists")
    code, report = emulate(scripted.address, *FAST)
    assert code == 1
    assert report["wedged"] is True and report["crashed"] is False
    assert report["events"] == [], "the sidecar posts no Event for it: nothing tells the user why"
    assert rpcs(report).count("DriverCreateBucket") == 1 + 4
    assert "DriverGrantBucketAccess" not in rpcs(report)


def test_transient_errors_become_events_and_are_retried_with_the_sidecars_backoff(scripted: Scripted) -> None:
    scripted.driver.reset("flaky")
    code, report = emulate(scripted.address, "--duplicate-creates", "0", "--duplicate-grants", "0")
    assert code == 0 and report["ok"] is True
    events = {(event["reason"], event["kind"], event["count"]) for event in report["events"]}
    assert events == {
        ("FailedCreateBucket", "Bucket", 2),
        ("FailedGrantAccess", "BucketAccess", 2),
        ("FailedDeleteBucket", "Bucket", 2),
        ("FailedRevokeAccess", "BucketAccess", 2),
    }
    create_event = next(event for event in report["events"] if event["reason"] == "FailedCreateBucket")
    assert (
        create_event["message"] == "failed to create bucket: rpc error: code = Unavailable desc = storage is restarting"
    )
    assert create_event["namespace"] == "default"
    # Per object, 100 ms doubling: the Creates wait 100 ms, then 200 ms.
    creates = [call["at"] for call in report["calls"] if call["rpc"] == "DriverCreateBucket"]
    assert [
        later - earlier >= floor for (earlier, later), floor in zip(pairwise(creates), (0.1, 0.2), strict=True)
    ] == [
        True,
        True,
    ]
    # The failure count is never reset: the Bucket's fourth failure (its second on delete) waits 800 ms.
    deletes = [call["at"] for call in report["calls"] if call["rpc"] == "DriverDeleteBucket"]
    assert len(deletes) == 3 and deletes[2] - deletes[1] >= 0.8


def test_delete_refused_while_granted_is_retried_after_the_revoke(scripted: Scripted) -> None:
    scripted.driver.reset("delete-refused-while-granted")
    code, report = emulate(scripted.address, *FAST)
    assert code == 0
    tail = [(call["rpc"], call["code"]) for call in report["calls"][-3:]]
    assert tail == [
        ("DriverDeleteBucket", "FAILED_PRECONDITION"),
        ("DriverRevokeBucketAccess", "OK"),
        ("DriverDeleteBucket", "OK"),
    ]
    assert [event["reason"] for event in report["events"]] == ["FailedDeleteBucket"]


def test_a_driver_name_the_classes_do_not_use_is_ignored(scripted: Scripted) -> None:
    code, report = emulate(scripted.address, "--driver-name", "other.example.com", *FAST)
    assert code == 1
    assert [problem["kind"] for problem in report["problems"]] == ["ignored"]
    assert rpcs(report) == ["DriverGetInfo"]


def test_a_burst_reports_every_claim_and_access_on_its_own(workdir: Path) -> None:
    driver = start_driver({"COSI_DRIVER_BACKEND_ROOT": str(workdir / "data")}, workdir)
    try:
        code, report = emulate(driver.endpoint, "--claims", "5", "--workers", "2", *FAST)
    finally:
        assert driver.stop() == 0
    assert (code, report["ok"], report["problems"]) == (0, True, [])
    assert [call["rpc"] for call in report["start"]] == ["DriverGetInfo"], "one DriverGetInfo for the whole burst"
    objects = report["objects"]
    assert [obj["names"]["BucketClaim"].split(" ")[0] for obj in objects] == [
        f"cosi-emulated/emulated-claim-{i:02d}" for i in range(5)
    ]
    assert len({obj["names"]["Bucket"] for obj in objects}) == 5
    for obj in objects:
        assert rpcs(obj).count("DriverCreateBucket") == 2 and rpcs(obj).count("DriverGrantBucketAccess") == 2
        assert obj["after_delete"]["BucketClaim"] == "deleted" and obj["secret_bucket_info"] is not None
    assert list((workdir / "data" / "buckets").iterdir()) == []
