"""A user's whole walkthrough: claim a bucket, get credentials, consume them, revoke, delete."""

from __future__ import annotations

import pytest

from tests.e2e.manifests import secret_volume
from tests.e2e.stack import Scenario

pytestmark = pytest.mark.e2e


def test_claim_access_consume_revoke_delete(scenario: Scenario) -> None:
    cluster, profile, examples, namespace = scenario.cluster, scenario.profile, scenario.examples, scenario.namespace
    bucket_class = examples.bucket_class()
    access_class = examples.access_class("readwrite")
    claim = examples.claim()
    claim_name = claim["metadata"]["name"]
    scenario.apply(bucket_class, access_class, claim)

    bucket_name = scenario.claims_ready([claim_name])[claim_name]
    bucket = scenario.bucket(bucket_name)
    assert bucket["spec"]["bucketClaim"]["name"] == claim_name
    assert bucket["spec"]["bucketClaim"]["namespace"] == namespace
    assert bucket["status"]["bucketReady"] is True
    storage_bucket = scenario.storage_bucket(bucket_name)
    assert profile.bucket_exists(storage_bucket)

    # Applied once the claim is ready, as the kit advises: a BucketAccess that waits for its claim
    # accumulates sidecar backoff.
    access = examples.access(claim=claim, access_class=access_class)
    access_name, secret_name = access["metadata"]["name"], access["spec"]["credentialsSecretName"]
    scenario.apply(access)
    account_id = scenario.accesses_granted([access_name])[access_name]
    grant = scenario.grant(access, bucket_name, access_class["parameters"]["accessMode"], account_id)
    credentials = grant.credentials
    assert credentials.bucket_name == bucket_name
    assert credentials.authentication_type == "Key"
    assert credentials.protocols == ["S3"]
    assert credentials.endpoint and credentials.region
    profile.check_granted(grant)

    # The consumer Pod of the walkthrough is admitted by the real apiserver (no kubelet runs it
    # here) and mounts the very Secret the BucketAccess produced. Nothing here creates the
    # namespace's default ServiceAccount, which Pod admission requires.
    cluster.kubectl("create", "serviceaccount", "default", "-n", namespace)
    pod = examples.pod()
    scenario.apply(pod)
    assert secret_volume(cluster.get("pod", pod["metadata"]["name"], namespace)) == secret_name

    secret_key = credentials.secret_access_key
    assert secret_key not in scenario.stack.driver.log()
    for event in cluster.events(namespace) + cluster.events("default"):
        assert secret_key not in event["message"]

    cluster.delete("bucketaccess", access_name, namespace)
    cluster.wait("delete", f"secret/{secret_name}", namespace)
    profile.check_revoked(grant)

    cluster.delete("bucketclaim", claim_name, namespace)
    cluster.wait("delete", f"bucket/{bucket_name}")
    assert not profile.bucket_exists(storage_bucket)


def test_retain_keeps_the_bucket_in_storage(scenario: Scenario) -> None:
    bucket_class = scenario.examples.bucket_class("retain", deletion_policy="Retain")
    claim = scenario.examples.claim("retained-bucket", bucket_class)
    claim_name = claim["metadata"]["name"]
    scenario.apply(bucket_class, claim)
    bucket_name = scenario.claims_ready([claim_name])[claim_name]
    bucket_id = scenario.bucket(bucket_name)["status"]["bucketID"]
    storage_bucket = scenario.storage_bucket(bucket_name)

    scenario.cluster.delete("bucketclaim", claim_name, scenario.namespace)
    scenario.cluster.wait("delete", f"bucket/{bucket_name}")
    assert scenario.profile.bucket_exists(storage_bucket)
    assert not [r for r in scenario.stack.rpcs("DriverDeleteBucket") if r.get("bucket_id") == bucket_id]
