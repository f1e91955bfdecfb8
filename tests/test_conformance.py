"""``cosi-driver conformance`` against our real driver, a plug-in backend, and deliberately broken drivers.

Our driver runs as the real ``cosi-driver serve`` process on a UNIX socket. The broken drivers are
one correct scripted driver (tests/scripted_driver.py, hosted by pytest-grpc on 127.0.0.1) with one
fault switched on at a time: the suite must pass the correct one and name the broken rule for each
fault.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.scripted_driver import (  # noqa: F401 - pytest-grpc fixtures
    Scripted,
    grpc_add_to_server_fixture,
    grpc_addr_fixture,
    grpc_servicer_fixture,
    scripted_fixture,
)
from tests.support import run_cli, start_driver

grpc_max_workers = 16  # pytest-grpc: serve the concurrent checks concurrently

MASTER_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978"
MODE_FLAGS = ("--read-access-param", "accessMode=read", "--write-access-param", "accessMode=write")


def conformance(endpoint: str, *flags: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("conformance", "--endpoint", endpoint, "--json", "--timeout", "20", *flags, timeout=120)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["outcome"] for check in report["checks"]}


def failures(report: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["reason"] for check in report["checks"] if check["outcome"] == "FAIL"}


def assert_all_pass_but_s3(code: int, report: dict[str, Any]) -> None:
    assert failures(report) == {}
    skipped = {name for name, outcome in outcomes(report).items() if outcome == "SKIP"}
    assert skipped == {name for name in outcomes(report) if name.startswith(("s3.", "azure."))}
    assert code == 0
    assert report["cleanup"]["left_behind"] == []


# -- our driver ------------------------------------------------------------------------------------


def test_our_filesystem_driver_passes(workdir: Path) -> None:
    driver = start_driver({"COSI_DRIVER_BACKEND_ROOT": str(workdir / "data")}, workdir)
    try:
        code, report = conformance(driver.endpoint, "--alt-bucket-param", "deletionPolicy=retain", *MODE_FLAGS)
    finally:
        assert driver.stop() == 0
    assert_all_pass_but_s3(code, report)
    assert report["driver_name"] == "cosi-driver.objectstorage.local"
    buckets = workdir / "data" / "buckets"
    assert list(buckets.iterdir()) == [], "conformance left buckets behind"
    assert list((workdir / "data" / ".cosi" / "accounts").iterdir()) == []


def test_the_plugin_backend_passes(workdir: Path) -> None:
    pytest.importorskip("cosi_example_backend", reason="make test installs tests/plugins/cosi-example-backend")
    config = workdir / "driver.yaml"
    config.write_text(f"backends:\n  kv:\n    type: example-kv\n    config:\n      path: {workdir / 'kv.json'}\n")
    env = {"COSI_DRIVER_CONFIG": str(config), "COSI_DRIVER_MASTER_KEY": MASTER_KEY, "COSI_DRIVER_NAME": "kv.example"}
    driver = start_driver(env, workdir)
    try:
        code, report = conformance(driver.endpoint, "--bucket-param", "versioning=false",
                                   "--alt-bucket-param", "versioning=true", *MODE_FLAGS)  # fmt: skip
    finally:
        assert driver.stop() == 0
    assert_all_pass_but_s3(code, report)
    state = json.loads((workdir / "kv.json").read_text())
    assert state == {"buckets": {}, "accounts": {}}, "conformance left something behind"


def test_lines_and_summary_for_people(workdir: Path) -> None:
    driver = start_driver({"COSI_DRIVER_BACKEND_ROOT": str(workdir / "data")}, workdir)
    try:
        result = run_cli("conformance", "--endpoint", driver.endpoint, "--focus", "identity", "--focus", "grant.ok")
    finally:
        driver.stop()
    lines = result.stdout.splitlines()
    assert result.returncode == 0
    assert [line.split()[:2] for line in lines[:4]] == [
        ["PASS", "identity.get-info"],
        ["PASS", "identity.name-v1alpha1"],
        ["PASS", "identity.name-v1alpha2"],
        ["PASS", "grant.ok"],
    ]
    assert "conformance: 4 passed, 0 failed, 0 skipped" in result.stdout
    assert "nothing left behind" in result.stdout


def test_an_unreachable_endpoint_fails_and_skips_the_rest(workdir: Path) -> None:
    code, report = conformance(f"unix://{workdir}/absent.sock", "--timeout", "3")
    assert code == 1
    assert failures(report).keys() == {"identity.get-info"}
    assert "UNAVAILABLE" in failures(report)["identity.get-info"]


def test_list_names_every_check() -> None:
    result = run_cli("conformance", "--list")
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names[0] == "identity.get-info" and "robustness.still-serving" in names and "s3.read-mode" in names


def test_s3_check_refuses_a_non_s3_endpoint(workdir: Path) -> None:
    pytest.importorskip("aioboto3", reason="cosi-driver[s3] is not installed")
    driver = start_driver({"COSI_DRIVER_BACKEND_ROOT": str(workdir / "data")}, workdir)
    try:
        code, report = conformance(driver.endpoint, "--s3-check", "--focus", "s3")
    finally:
        driver.stop()
    assert code == 1
    assert "http(s) S3 endpoint" in failures(report)["s3.credentials-work"]


# -- the scripted driver: correct, then with one fault at a time ---------------------------------


def test_the_correct_scripted_driver_passes_over_tcp(scripted: Scripted) -> None:
    code, report = conformance(scripted.address, "--alt-bucket-param", "tier=gold", *MODE_FLAGS)
    assert_all_pass_but_s3(code, report)
    assert scripted.driver.state.buckets == {} and scripted.driver.state.accounts == {}


@pytest.mark.parametrize(
    ("fault", "check", "says"),
    [
        ("create-already-exists", "create.idempotent", "retries forever"),
        ("create-new-id", "create.idempotent", "returned bucket_id"),
        ("grant-new-keys", "grant.stable-credentials", "accessSecretKey changed"),
        ("grant-already-exists", "grant.idempotent", "crashes the v0.2.2 sidecar"),
        ("unknown-on-bad-input", "robustness.create", "UNKNOWN"),
        ("unknown-on-bad-input", "robustness.grant", "UNKNOWN"),
        ("foreign-id-invalid", "delete.unknown-id", "retries anything but OK and NOT_FOUND"),
        ("foreign-id-invalid", "revoke.unknown-ids", "retries a failed Revoke forever"),
        ("foreign-id-invalid", "grant.unknown-bucket-id", "expected NOT_FOUND"),
    ],
)
def test_a_broken_driver_fails_the_named_check(scripted: Scripted, fault: str, check: str, says: str) -> None:
    scripted.driver.reset(fault)
    code, report = conformance(scripted.address, "--alt-bucket-param", "tier=gold", *MODE_FLAGS)
    assert code == 1
    reasons = failures(report)
    assert check in reasons, reasons
    assert says in reasons[check]
    assert outcomes(report)["identity.get-info"] == "PASS"
    if fault == "unknown-on-bad-input":
        assert outcomes(report)["robustness.still-serving"] == "PASS"


def test_secrets_never_reach_the_report(scripted: Scripted) -> None:
    scripted.driver.reset("grant-new-keys")
    code, report = conformance(scripted.address, "--focus", "grant")
    text = json.dumps(report)
    assert code == 1
    assert len(scripted.driver.issued_secrets) >= 3
    assert not any(secret in text for secret in scripted.driver.issued_secrets)
