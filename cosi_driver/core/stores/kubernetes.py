"""A state store that keeps each document in a Kubernetes Secret in the driver's own namespace.

In a cluster the driver's filesystem is an emptyDir that dies with the pod; ownership records and
stored IAM secrets must outlive it. One Secret per key (named from a digest of the key, which is
kept in an annotation) keeps writes atomic without read-modify-write of a shared object. The
``kubernetes`` client is synchronous; calls run in a worker thread. The driver needs no other
Kubernetes API access, and this module is imported only when ``state.type`` is ``kubernetes``.

RBAC: get, list, create, update, delete on ``secrets`` in the driver's namespace.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosi_driver.core.errors import Unavailable
from cosi_driver.core.options import PATH, STRING, ConfigProblem, option

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
MANAGED_BY = "cosi-driver"
LABEL_SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY},app.kubernetes.io/component=state"
KEY_ANNOTATION = "cosi-driver.objectstorage.k8s.io/key"


@dataclass(frozen=True)
class KubernetesStoreConfig:
    namespace: str = option(
        STRING, default="", doc="Namespace of the Secrets; default: the driver's own (service account) namespace."
    )
    name_prefix: str = option(STRING, default="cosi-driver-state-", doc="Prefix of the Secrets' names.")
    kubeconfig: Path | None = option(
        PATH, default=None, doc="kubeconfig file for runs outside a cluster; default: in-cluster credentials."
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


class KubernetesSecretStore:
    def __init__(self, api: Any, namespace: str, name_prefix: str) -> None:
        self._api = api  # kubernetes.client.CoreV1Api
        self.namespace = namespace
        self.name_prefix = name_prefix

    @classmethod
    def from_config(cls, config: KubernetesStoreConfig) -> KubernetesSecretStore:
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
        return cls(client.CoreV1Api(api_client), _namespace(config.namespace), config.name_prefix)

    def _name(self, key: str) -> str:
        return self.name_prefix + hashlib.sha256(key.encode()).hexdigest()[:40]

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return await asyncio.to_thread(getattr(self._api, method), *args, **kwargs)
        except ApiException as error:
            if error.status == 404:
                return None
            if error.status == 409:
                raise
            raise Unavailable(
                f"the driver's state store (Secrets in namespace {self.namespace!r}) answered "
                f"{error.status} {error.reason}"
            ) from None
        except OSError as error:  # urllib3 connection errors derive from OSError
            raise Unavailable(
                f"the Kubernetes API is unreachable for the state store ({type(error).__name__})"
            ) from None

    async def get(self, key: str) -> dict[str, Any] | None:
        secret = await self._call("read_namespaced_secret", self._name(key), self.namespace)
        if secret is None or not secret.data or "document" not in secret.data:
            return None
        document = json.loads(base64.b64decode(secret.data["document"]))
        return document if isinstance(document, dict) else None

    async def put(self, key: str, document: dict[str, Any]) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        body = client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=self._name(key),
                labels={"app.kubernetes.io/managed-by": MANAGED_BY, "app.kubernetes.io/component": "state"},
                annotations={KEY_ANNOTATION: key},
            ),
            type="Opaque",
            data={"document": base64.b64encode(json.dumps(document, sort_keys=True).encode()).decode()},
        )
        try:
            await self._call("create_namespaced_secret", self.namespace, body)
        except ApiException:  # 409: it exists; replace it (last write wins, as with a file)
            await self._call("replace_namespaced_secret", self._name(key), self.namespace, body)

    async def delete(self, key: str) -> None:
        await self._call("delete_namespaced_secret", self._name(key), self.namespace)

    async def keys(self, prefix: str = "") -> list[str]:
        listing = await self._call("list_namespaced_secret", self.namespace, label_selector=LABEL_SELECTOR)
        items = [item for item in (listing.items if listing else []) if item.metadata.name.startswith(self.name_prefix)]
        keys = [(item.metadata.annotations or {}).get(KEY_ANNOTATION, "") for item in items]
        return sorted(key for key in keys if key and key.startswith(prefix))
