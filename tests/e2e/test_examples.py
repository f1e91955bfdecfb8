"""The examples in deploy/examples/ fit together, fit the driver, and are the ones docs/deploy.md shows.

These need no cluster; the scenarios apply the same files to a real one.
"""

from __future__ import annotations

import pytest

from cosi_driver.config.settings import DEFAULT_DRIVER_NAME
from cosi_driver.core.params import AccessParams, BucketParams, parse_params
from tests.e2e.manifests import EXAMPLE_DRIVER_NAME, EXAMPLES, example, load, secret_volume
from tests.support import PROJECT_ROOT

pytestmark = pytest.mark.e2e

FILES = {
    "bucketclass.yaml": ["BucketClass"],
    "bucketclaim.yaml": ["BucketClaim"],
    "bucketaccessclass.yaml": ["BucketAccessClass", "BucketAccessClass"],
    "bucketaccess.yaml": ["BucketAccess"],
    "pod.yaml": ["Pod"],
}


def test_each_example_holds_what_its_name_says() -> None:
    assert sorted(path.name for path in EXAMPLES.glob("*.yaml")) == sorted(FILES)
    for name, kinds in FILES.items():
        assert [document["kind"] for document in load(name)] == kinds, name


def test_the_examples_refer_to_each_other_and_to_the_default_driver() -> None:
    bucket_class, claim, access, pod = (
        example("bucketclass.yaml"),
        example("bucketclaim.yaml"),
        example("bucketaccess.yaml"),
        example("pod.yaml"),
    )
    access_classes = {document["metadata"]["name"]: document for document in load("bucketaccessclass.yaml")}
    assert EXAMPLE_DRIVER_NAME == DEFAULT_DRIVER_NAME
    assert bucket_class["driverName"] == DEFAULT_DRIVER_NAME
    assert {document["driverName"] for document in access_classes.values()} == {DEFAULT_DRIVER_NAME}
    assert claim["spec"]["bucketClassName"] == bucket_class["metadata"]["name"]
    assert access["spec"]["bucketClaimName"] == claim["metadata"]["name"]
    assert access["spec"]["bucketAccessClassName"] in access_classes
    assert secret_volume(pod) == access["spec"]["credentialsSecretName"]
    for document in (claim, access, pod):
        assert "namespace" not in document["metadata"], "examples go to the user's current namespace"


def test_the_examples_parameters_are_accepted_by_the_driver() -> None:
    parse_params(BucketParams, example("bucketclass.yaml")["parameters"], field_name="parameters", backend="any")
    modes = set()
    for document in load("bucketaccessclass.yaml"):
        parsed = parse_params(AccessParams, document["parameters"], field_name="parameters", backend="any")
        modes.add(parsed.access_mode.value)
    assert modes == {"read", "readwrite"}


def test_the_deploy_walkthrough_applies_every_example() -> None:
    page = (PROJECT_ROOT / "docs" / "deploy.md").read_text()
    section = page.split("## Try it on a real control plane", 1)[1].split("\n## ", 1)[0]
    for name in FILES:
        assert f"deploy/examples/{name}" in section, name
