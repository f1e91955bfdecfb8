"""The example manifests of ``deploy/examples/``, as each scenario applies them.

The tests apply the files a user applies. Only what must differ between scenarios is rewritten:
object names (cluster-scoped classes get the scenario's prefix), the namespace, ``driverName``
(each backend profile runs the driver under its own name), the backend profile's BucketClass
parameters, and the one field a scenario varies (deletionPolicy, accessMode, a bad parameter).
Every rewritten field must already be in the example, so an example that drifts from what the
tests expect fails the tests instead of being silently patched over.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from tests.support import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "deploy" / "examples"
#: The driver name the examples carry: ``cosi-driver serve``'s default COSI_DRIVER_NAME.
EXAMPLE_DRIVER_NAME = "cosi-driver.objectstorage.local"

Document = dict[str, Any]


def load(file_name: str) -> list[Document]:
    with (EXAMPLES / file_name).open() as stream:
        return [document for document in yaml.safe_load_all(stream) if document]


def example(file_name: str, name: str | None = None) -> Document:
    """One document of an example file (by ``metadata.name`` where the file has several)."""
    documents = load(file_name)
    if name is None:
        (document,) = documents
    else:
        (document,) = [d for d in documents if d["metadata"]["name"] == name]
    return copy.deepcopy(document)


def _set(document: Document, path: str, value: Any) -> None:
    """Rewrite a field the example already has (KeyError when it does not)."""
    *parents, leaf = path.split(".")
    target = document
    for key in parents:
        target = target[key]
    if leaf not in target:
        raise KeyError(f"the example {document['kind']} has no field {path}; update tests/e2e/manifests.py")
    target[leaf] = value


@dataclass(frozen=True)
class Walkthrough:
    """The examples for one scenario: its namespace, its prefix for cluster-scoped names, its driver."""

    prefix: str
    namespace: str
    driver_name: str
    #: The backend profile's BucketClass parameters, merged over the example's.
    parameters: Mapping[str, str] = field(default_factory=dict)

    def cluster_name(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def bucket_class(
        self, variant: str = "", *, deletion_policy: str | None = None, parameters: Mapping[str, str] | None = None
    ) -> Document:
        """``bucketclass.yaml``; a ``variant`` names a second class of the scenario (``standard-retain``)."""
        document = example("bucketclass.yaml")
        name = document["metadata"]["name"] + (f"-{variant}" if variant else "")
        _set(document, "metadata.name", self.cluster_name(name))
        _set(document, "driverName", self.driver_name)
        if deletion_policy is not None:
            _set(document, "deletionPolicy", deletion_policy)
        _set(document, "parameters", {**(document["parameters"] or {}), **self.parameters, **(parameters or {})})
        return document

    def access_class(self, name: str = "readwrite") -> Document:
        """One of ``bucketaccessclass.yaml``'s classes: ``readwrite`` or ``readonly``."""
        document = example("bucketaccessclass.yaml", name)
        _set(document, "metadata.name", self.cluster_name(name))
        _set(document, "driverName", self.driver_name)
        return document

    def claim(self, name: str | None = None, bucket_class: Document | None = None) -> Document:
        document = example("bucketclaim.yaml")
        if name:
            _set(document, "metadata.name", name)
        document["metadata"]["namespace"] = self.namespace
        example_class = document["spec"]["bucketClassName"]
        class_name = bucket_class["metadata"]["name"] if bucket_class else self.cluster_name(example_class)
        _set(document, "spec.bucketClassName", class_name)
        return document

    def access(
        self,
        name: str | None = None,
        *,
        claim: Document | None = None,
        access_class: Document | None = None,
        secret: str | None = None,
    ) -> Document:
        document = example("bucketaccess.yaml")
        if name:
            _set(document, "metadata.name", name)
        document["metadata"]["namespace"] = self.namespace
        if claim is not None:
            _set(document, "spec.bucketClaimName", claim["metadata"]["name"])
        example_class = document["spec"]["bucketAccessClassName"]
        class_name = access_class["metadata"]["name"] if access_class else self.cluster_name(example_class)
        _set(document, "spec.bucketAccessClassName", class_name)
        if secret:
            _set(document, "spec.credentialsSecretName", secret)
        return document

    def pod(self) -> Document:
        document = example("pod.yaml")
        document["metadata"]["namespace"] = self.namespace
        return document


def secret_volume(pod: Document) -> str:
    """The Secret a consumer Pod mounts."""
    (volume,) = [v for v in pod["spec"]["volumes"] if "secret" in v]
    return str(volume["secret"]["secretName"])
