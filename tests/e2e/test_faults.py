"""Faults a user's cluster will see: the driver killed mid-burst, storage away, a bad BucketClass."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosi_driver.core import ids
from tests.e2e import waits
from tests.e2e.manifests import Document
from tests.e2e.stack import Scenario
from tests.support import wait_until

pytestmark = pytest.mark.e2e

BURST = 20


def burst(scenario: Scenario, count: int, prefix: str) -> tuple[list[Document], dict[str, Document], Document]:
    """``count`` claims, each with a readwrite BucketAccess, plus their classes (applied first)."""
    bucket_class, access_class = scenario.examples.bucket_class(), scenario.examples.access_class("readwrite")
    scenario.apply(bucket_class, access_class)
    claims = [scenario.examples.claim(f"{prefix}-{i:02d}") for i in range(count)]
    accesses = {
        f"{prefix}-{i:02d}-access": scenario.examples.access(
            f"{prefix}-{i:02d}-access", claim=claim, access_class=access_class, secret=f"{prefix}-{i:02d}-credentials"
        )
        for i, claim in enumerate(claims)
    }
    return claims, accesses, access_class


def names(documents: list[Document]) -> list[str]:
    return [document["metadata"]["name"] for document in documents]


def check_storage_matches(
    scenario: Scenario, before: set[str], buckets: dict[str, str], accesses: dict[str, Document], mode: str
) -> None:
    """Storage holds exactly one bucket per claim and exactly the accounts the BucketAccesses own."""
    cluster, profile = scenario.cluster, scenario.profile
    bound = [
        item
        for item in cluster.items("buckets").values()
        if item["spec"]["bucketClaim"].get("namespace") == scenario.namespace
    ]
    assert sorted(item["metadata"]["name"] for item in bound) == sorted(buckets.values()), "one Bucket per claim"
    in_storage = {ids.parse_bucket_id(item["status"]["bucketID"]).bucket for item in bound}
    assert profile.buckets() - before == in_storage, "storage holds a bucket no claim owns"
    grants = scenario.grants(accesses, buckets, mode)
    assert profile.accounts(in_storage) == {grant.account for grant in grants}, "an account no BucketAccess owns"
    for grant in grants:
        profile.check_granted(grant)


def test_driver_killed_mid_burst_recovers_every_claim_and_access(scenario: Scenario) -> None:
    profile, stack = scenario.profile, scenario.stack
    before = profile.buckets()
    claims, accesses, access_class = burst(scenario, BURST, "burst")
    scenario.apply(*claims, *accesses.values())

    def new_buckets() -> set[str]:
        return profile.buckets() - before

    # Killed twice: while the burst's buckets are being created, and while its accesses are granted.
    wait_until(lambda: len(new_buckets()) >= 3, 60, "the burst's first buckets in storage", 0.01)
    stack.kill_driver()
    made = len(new_buckets())
    stack.restart_driver()
    wait_until(lambda: profile.accounts(new_buckets()), 150, "the burst's first account in storage", 0.01)
    stack.kill_driver()
    granted = len(profile.accounts(new_buckets()))
    stack.restart_driver()
    stack.notes.append(
        f"driver SIGKILLed with {made} of {BURST} burst buckets in storage, again with {granted} of {BURST} accounts"
    )
    assert made < BURST and granted < BURST, "the burst was over before a kill; nothing was tested"

    buckets = scenario.claims_ready(names(claims), timeout=180)
    scenario.accesses_granted(list(accesses), timeout=180)
    check_storage_matches(scenario, before, buckets, accesses, access_class["parameters"]["accessMode"])


def test_storage_outage_while_claims_are_applied(scenario: Scenario) -> None:
    cluster, profile, stack = scenario.cluster, scenario.profile, scenario.stack
    driver_pid, sidecar_pid = stack.driver.process.pid, stack.sidecar_pid
    before = profile.buckets()
    claims, accesses, access_class = burst(scenario, 5, "outage")
    with profile.outage():
        scenario.apply(*claims, *accesses.values())
        bound = waits.bucket_names(cluster, scenario.namespace, names(claims))
        # Every claim's Create has been refused as an outage before the storage comes back.
        waits.until_events(cluster, bound.values(), profile.outage_codes)

    buckets = scenario.claims_ready(names(claims), timeout=120)
    scenario.accesses_granted(list(accesses), timeout=120)
    assert stack.driver.process.pid == driver_pid and stack.driver.process.poll() is None
    assert stack.sidecar_pid == sidecar_pid
    assert "cosi-provisioner-sidecar" in Path(f"/proc/{sidecar_pid}/cmdline").read_text(), "the sidecar restarted"
    for bucket in buckets.values():
        for event in waits.bucket_events(cluster, bucket):
            assert event["type"] == "Warning"
            assert any(code in event["message"] for code in profile.outage_codes), event["message"]
            assert "Traceback" not in event["message"]
    check_storage_matches(scenario, before, buckets, accesses, access_class["parameters"]["accessMode"])


BAD_PARAMETERS = {
    "bad-value": ("deletionPolicy", "sometimes"),
    "unknown": ("deletionPolicyy", "retain"),
}


def test_a_bad_parameter_leaves_the_claim_pending_with_the_reason_in_an_event(scenario: Scenario) -> None:
    cluster, examples = scenario.cluster, scenario.examples
    access_class = examples.access_class("readwrite")
    claims: dict[str, Document] = {}
    documents = [access_class]
    for variant, (parameter, value) in BAD_PARAMETERS.items():
        bucket_class = examples.bucket_class(variant, parameters={parameter: value})
        claims[variant] = examples.claim(f"{variant}-bucket", bucket_class)
        access = examples.access(
            f"{variant}-access", claim=claims[variant], access_class=access_class, secret=f"{variant}-credentials"
        )
        documents += [bucket_class, claims[variant], access]
    scenario.apply(*documents)
    bound = waits.bucket_names(cluster, scenario.namespace, names(list(claims.values())))
    # Refused at least twice: the sidecar retried and the driver refused again.
    seen = waits.until_events(cluster, bound.values(), "code = InvalidArgument", at_least=2)

    for variant, (parameter, _) in BAD_PARAMETERS.items():
        bucket = bound[f"{variant}-bucket"]
        messages = [event["message"] for event in seen[bucket]]
        assert all("code = InvalidArgument" in m for m in messages), messages
        assert all(f"'{parameter}'" in m for m in messages), f"the message must name {parameter}: {messages}"
        assert not any("Traceback" in m or "correlation id" in m for m in messages), messages
        claim = cluster.get("bucketclaim", f"{variant}-bucket", scenario.namespace)
        assert claim["status"]["bucketReady"] is False
        assert ((cluster.get("bucket", bucket) or {}).get("status") or {}).get("bucketReady") is not True
        assert not scenario.profile.bucket_exists(bucket)
        state = scenario.stack.workdir / "state"
        assert not [p for p in state.rglob("*") if p.is_file() and bucket in p.read_text(errors="replace")]
        access = cluster.get("bucketaccess", f"{variant}-access", scenario.namespace)
        assert not (access.get("status") or {}).get("accessGranted")
        assert cluster.get("secret", f"{variant}-credentials", scenario.namespace) is None
