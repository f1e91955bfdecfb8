"""A state store that keeps each document in a Kubernetes Secret in the driver's own namespace.

In a cluster the driver's filesystem is an emptyDir that dies with the pod; ownership records and
stored IAM secrets must outlive it. One Secret per key (named from a digest of the key, which is
kept in an annotation) keeps writes atomic without read-modify-write of a shared object. The
``kubernetes`` client is synchronous; calls run in a worker thread. The driver needs no other
Kubernetes API access, and this module is imported only when ``state.type`` is ``kubernetes``.

Two driver pods may share the Secrets, so no write is blind: ``create`` relies on the apiserver's
409 for a taken name (the first writer wins), ``replace`` sends the ``resourceVersion`` it read
(the apiserver answers 409 when someone wrote since), and ``put`` is a bounded loop of the two.
Every call carries a request timeout, and every failure to reach or be served by the apiserver
is UNAVAILABLE naming the namespace and status, never INTERNAL and never a document's content.

RBAC: get, list, create, update, delete on ``secrets`` in the driver's namespace.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosi_driver.core.errors import Unavailable
from cosi_driver.core.options import PATH, STRING, ConfigProblem, option, seconds
from cosi_driver.core.stores.base import ATTEMPTS, Created, Entry, Version, contention, update

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
MANAGED_BY = "cosi-driver"
LABEL_SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY},app.kubernetes.io/component=state"
KEY_ANNOTATION = "cosi-driver.objectstorage.k8s.io/key"
DEFAULT_REQUEST_TIMEOUT = 10.0
_DIGEST_CHARS = 40
# A DNS-1123 subdomain: what the apiserver accepts as a Secret's name.
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_MAX = 253


@dataclass(frozen=True)
class KubernetesStoreConfig:
    namespace: str = option(
        STRING, default="", doc="Namespace of the Secrets; default: the driver's own (service account) namespace."
    )
    name_prefix: str = option(STRING, default="cosi-driver-state-", doc="Prefix of the Secrets' names.")
    kubeconfig: Path | None = option(
        PATH, default=None, doc="kubeconfig file for runs outside a cluster; default: in-cluster credentials."
    )
    request_timeout: float = option(
        seconds(minimum=0.1),
        default=DEFAULT_REQUEST_TIMEOUT,
        doc="Seconds one Kubernetes API call may take before the state store reports UNAVAILABLE.",
    )


def check_name_prefix(prefix: str) -> None:
    """Refuse at start-up a prefix that would make every Secret name one the apiserver rejects."""
    sample = prefix + "0" * _DIGEST_CHARS
    if len(sample) > _NAME_MAX or not _SUBDOMAIN.fullmatch(sample):
        raise ConfigProblem(
            "state.config.name_prefix",
            f"{prefix!r} cannot start a Secret name (lower-case letters, digits, '-' and '.', "
            f"starting with a letter or digit, at most {_NAME_MAX - _DIGEST_CHARS} characters)",
            "use a prefix such as 'cosi-driver-state-'",
        )


def _namespace(configured: str) -> str:
    if configured:
        return configured
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    except OSError:
        raise ConfigProblem(
            "state.config.namespace",
            "is not set and the driver is not running in a pod (no service account namespace)",
            "set state.config.namespace, or POD_NAMESPACE from the downward API",
        ) from None


class _Conflict(Exception):
    """The apiserver answered 409: the name is taken (create) or the resourceVersion is stale (replace)."""


class KubernetesSecretStore:
    def __init__(
        self, api: Any, namespace: str, name_prefix: str, request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        check_name_prefix(name_prefix)
        self._api = api  # kubernetes.client.CoreV1Api
        self.namespace = namespace
        self.name_prefix = name_prefix
        self.request_timeout = request_timeout

    @classmethod
    def from_config(cls, config: KubernetesStoreConfig) -> KubernetesSecretStore:
        check_name_prefix(config.name_prefix)
        from kubernetes import client
        from kubernetes import config as kube_config

        try:
            if config.kubeconfig is not None:
                api_client = kube_config.new_client_from_config(config_file=str(config.kubeconfig))
            else:
                kube_config.load_incluster_config()
                api_client = client.ApiClient()
        except (kube_config.ConfigException, OSError) as error:
            raise ConfigProblem(
                "state.config.kubeconfig",
                f"cannot load Kubernetes credentials ({type(error).__name__})",
                "run in a pod with a service account, or point kubeconfig at a readable file",
            ) from None
        return cls(
            client.CoreV1Api(api_client), _namespace(config.namespace), config.name_prefix, config.request_timeout
        )

    def _name(self, key: str) -> str:
        return self.name_prefix + hashlib.sha256(key.encode()).hexdigest()[:_DIGEST_CHARS]

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One API call in a worker thread: None for 404, :class:`_Conflict` for 409, else UNAVAILABLE."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        call = getattr(self._api, method)
        try:
            return await asyncio.to_thread(call, *args, _request_timeout=self.request_timeout, **kwargs)
        except ApiException as error:
            if error.status == 404:
                return None
            if error.status == 409:
                raise _Conflict from None
            raise Unavailable(
                f"the driver's state store (Secrets in namespace {self.namespace!r}) answered "
                f"{error.status} {error.reason}"
            ) from None
        except (OSError, HTTPError) as error:  # refused, reset, timed out, retries exhausted (MaxRetryError)
            raise Unavailable(
                f"the Kubernetes API is unreachable for the state store (Secrets in namespace "
                f"{self.namespace!r}): {type(error).__name__}; check the apiserver and the pod's network"
            ) from None

    def _body(self, key: str, document: dict[str, Any], version: Version | None = None) -> Any:
        from kubernetes import client

        return client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=self._name(key),
                labels={"app.kubernetes.io/managed-by": MANAGED_BY, "app.kubernetes.io/component": "state"},
                annotations={KEY_ANNOTATION: key},
                resource_version=version,
            ),
            type="Opaque",
            data={"document": base64.b64encode(json.dumps(document, sort_keys=True).encode()).decode()},
        )

    async def _read(self, key: str) -> tuple[dict[str, Any] | None, Version] | None:
        """The Secret's document (None when it holds none) and resourceVersion; None when absent."""
        secret = await self._call("read_namespaced_secret", self._name(key), self.namespace)
        if secret is None:
            return None
        return self._document(secret), _version_of(secret)

    def _document(self, secret: Any) -> dict[str, Any] | None:
        if not secret.data or "document" not in secret.data:
            return None
        try:
            document = json.loads(base64.b64decode(secret.data["document"], validate=True))
        except ValueError:  # also binascii.Error and UnicodeDecodeError
            raise Unavailable(
                f"the driver's state Secret {secret.metadata.name!r} in namespace {self.namespace!r} does not "
                "hold a base64 JSON document; restore it or delete it"
            ) from None
        return document if isinstance(document, dict) else None

    async def get(self, key: str) -> dict[str, Any] | None:
        entry = await self.read(key)
        return None if entry is None else entry.document

    async def read(self, key: str) -> Entry | None:
        found = await self._read(key)
        if found is None or found[0] is None:
            return None
        return Entry(found[0], found[1])

    async def create(self, key: str, document: dict[str, Any]) -> Created:
        for _ in range(ATTEMPTS):
            try:
                made = await self._call("create_namespaced_secret", self.namespace, self._body(key, document))
                return Created(True, Entry(dict(document), _version_of(made)))
            except _Conflict:
                pass
            found = await self._read(key)
            if found is None:
                continue  # deleted between the 409 and the read: create again
            existing, version = found
            if existing is not None:
                return Created(False, Entry(existing, version))
            # A Secret under our name with no document reads as absent; a create takes it over.
            replaced = await self.replace(key, document, version)
            if replaced is not None:
                return Created(True, replaced)
        raise contention(key, ATTEMPTS)

    async def replace(self, key: str, document: dict[str, Any], version: Version) -> Entry | None:
        if not version:
            return None  # an unconditional replace would be a blind write; the caller reads again
        body = self._body(key, document, version)
        try:
            replaced = await self._call("replace_namespaced_secret", self._name(key), self.namespace, body)
        except _Conflict:
            return None  # written since the read
        if replaced is None:
            return None  # deleted since the read
        return Entry(dict(document), _version_of(replaced))

    async def put(self, key: str, document: dict[str, Any]) -> None:
        await update(self, key, lambda _current: document, ATTEMPTS)

    async def delete(self, key: str) -> None:
        await self._call("delete_namespaced_secret", self._name(key), self.namespace)

    async def keys(self, prefix: str = "") -> list[str]:
        listing = await self._call("list_namespaced_secret", self.namespace, label_selector=LABEL_SELECTOR)
        items = [item for item in (listing.items if listing else []) if item.metadata.name.startswith(self.name_prefix)]
        keys = [(item.metadata.annotations or {}).get(KEY_ANNOTATION, "") for item in items]
        return sorted(key for key in keys if key and key.startswith(prefix))


def _version_of(secret: Any) -> Version:
    metadata = getattr(secret, "metadata", None)
    return Version(getattr(metadata, "resource_version", None) or "")
