"""A read-only BucketAccessClass yields credentials that can only read."""

from __future__ import annotations

import pytest

from tests.e2e.stack import Scenario

pytestmark = pytest.mark.e2e


def test_a_read_only_class_yields_read_only_credentials(scenario: Scenario) -> None:
    examples = scenario.examples
    readwrite, readonly = examples.access_class("readwrite"), examples.access_class("readonly")
    claim = examples.claim()
    scenario.apply(examples.bucket_class(), readwrite, readonly, claim)
    bucket_name = scenario.claims_ready([claim["metadata"]["name"]])[claim["metadata"]["name"]]

    reader = examples.access("reader", claim=claim, access_class=readonly, secret="reader-credentials")
    writer = examples.access("writer", claim=claim, access_class=readwrite, secret="writer-credentials")
    scenario.apply(reader, writer)
    granted = scenario.accesses_granted(["reader", "writer"])

    read_grant = scenario.grant(reader, bucket_name, readonly["parameters"]["accessMode"], granted["reader"])
    write_grant = scenario.grant(writer, bucket_name, readwrite["parameters"]["accessMode"], granted["writer"])
    assert read_grant.mode == "read"
    scenario.profile.check_granted(read_grant)
    scenario.profile.check_granted(write_grant)
    assert read_grant.account != write_grant.account
    assert read_grant.credentials.access_key_id != write_grant.credentials.access_key_id
