"""Shared by the tests/test_deploy_*.py modules (pytest collects no test here).

Renders the deployment files with the real tools (``kubectl kustomize``, the Helm engine of
helm-python-sdk), validates objects against the Kubernetes schemas (kubernetes-validate) and the
COSI CRDs' own schemas, and lays a rendered pod's volumes out on this machine, the way the kubelet
would, so the real driver can be started against exactly the files and variables the pod gives it.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures import unavailable
from tests.support import PROJECT_ROOT, SHARED

CHART = PROJECT_ROOT / "charts" / "cosi-driver"
DEPLOY = PROJECT_ROOT / "deploy"
OVERLAYS = sorted(path.parent for path in (DEPLOY / "overlays").glob("*/kustomization.yaml"))
EXAMPLES = DEPLOY / "examples"
CRDS = SHARED / "cosi" / "crds-v1alpha1"
# The chart's kubeVersion floor, a middle release, and the newest schema kubernetes-validate has.
KUBE_VERSIONS = ("1.27", "1.32", "1.37")
DRIVER = "driver"
SIDECAR = "objectstorage-provisioner-sidecar"
UPSTREAM_SIDECAR_UID = 65532  # USER 65532:65532 in upstream's sidecar/Dockerfile (distroless nonroot)


# ---- rendering --------------------------------------------------------------------------------


def load_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        unavailable("kubectl is not installed (Debian package kubectl; .ci/run installs it)")
        raise AssertionError("unreachable")
    return path


def kustomize(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return load_documents(result.stdout)


@dataclass
class Rendered:
    objects: list[dict[str, Any]]
    notes: str


def helm_render(
    values: Mapping[str, Any] | None = None, *, name: str = "cosi-driver", namespace: str = "cosi-driver"
) -> Rendered:
    """``helm template`` through the real Helm engine, schema validation included."""
    import helm_python as helm

    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(dict(values or {}), name=name, namespace=namespace, is_install=True)
    notes = ""
    objects: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
        else:
            objects.extend(load_documents(text))
    return Rendered(objects, notes)


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in matches]}"
    return matches[0]


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = find(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(pod: Mapping[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in pod["containers"] if c["name"] == name]
    assert len(found) == 1, f"no single container {name!r} in {[c['name'] for c in pod['containers']]}"
    return found[0]


def env_values(c: Mapping[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in c.get("env", []) if "value" in item}


# ---- schemas ----------------------------------------------------------------------------------


def validate_kubernetes(obj: Mapping[str, Any]) -> None:
    """Strict validation (unknown fields refused) against several Kubernetes releases' schemas."""
    import kubernetes_validate

    for version in KUBE_VERSIONS:
        try:
            kubernetes_validate.validate(dict(obj), version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path)
            name = f"{obj['kind']}/{obj['metadata'].get('name')}"
            raise AssertionError(f"{name} is not valid Kubernetes {version}: {where}: {error.message}") from None


def _strict(schema: Any) -> Any:
    """An OpenAPI v3 structural schema as JSON Schema that, like kubectl's strict field
    validation, refuses fields the CRD does not declare."""
    if isinstance(schema, dict):
        out = {key: _strict(value) for key, value in schema.items()}
        if out.pop("nullable", False) and "type" in out:
            out["type"] = [out["type"], "null"]
        if (
            out.get("type") == "object"
            and "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def cosi_crds() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> {schema, scope} from the CRDs the v0.2.2 controller installs."""
    if not CRDS.is_dir():
        unavailable(f"the COSI CRDs are not at {CRDS} (../shared/cosi/crds-v1alpha1)")
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        spec = crd["spec"]
        for version in spec["versions"]:
            found[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = {
                "schema": _strict(version["schema"]["openAPIV3Schema"]),
                "scope": spec["scope"],
            }
    return found


def validate_cosi(obj: Mapping[str, Any]) -> None:
    import jsonschema

    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    crd = cosi_crds().get(key)
    assert crd is not None, f"{key} is not a COSI v1alpha1 kind; known: {sorted(cosi_crds())}"
    name = obj.get("metadata", {}).get("name")
    assert name, f"{key[1]} has no metadata.name"
    if crd["scope"] == "Cluster":
        assert "namespace" not in obj["metadata"], f"{key[1]} {name} is cluster-scoped but names a namespace"
    errors = sorted(jsonschema.Draft7Validator(crd["schema"]).iter_errors(dict(obj)), key=str)
    assert not errors, f"{key[1]} {name} does not match its CRD: " + "; ".join(
        f"{'.'.join(str(p) for p in e.path) or '(root)'}: {e.message}" for e in errors
    )


def validate_any(obj: Mapping[str, Any]) -> None:
    if str(obj.get("apiVersion", "")).startswith("objectstorage.k8s.io/"):
        validate_cosi(obj)
    else:
        validate_kubernetes(obj)


# ---- a rendered pod's files on this machine ------------------------------------------------------


class NotOnAVolume(AssertionError):
    """A path the driver uses lies on the container's read-only root file system."""


@dataclass
class PodFiles:
    """One container's volume mounts, each a directory under ``root``, as the kubelet would lay
    them out. ``host()`` maps a path inside the container to this machine."""

    root: Path
    namespace: str
    mounts: dict[str, tuple[Path, dict[str, Any]]] = field(default_factory=dict)  # mountPath -> (dir, volume)

    def mount_of(self, path: str) -> tuple[str, Path, dict[str, Any]]:
        best = max((m for m in self.mounts if path == m or path.startswith(m.rstrip("/") + "/")), key=len, default=None)
        if best is None:
            raise NotOnAVolume(f"{path} is on no volume of the container (its root file system is read-only)")
        directory, volume = self.mounts[best]
        return best, directory, volume

    def host(self, path: str) -> Path:
        mount, directory, _ = self.mount_of(path)
        rest = path[len(mount) :].lstrip("/")
        return directory / rest if rest else directory

    def writable(self, path: str) -> bool:
        _, _, volume = self.mount_of(path)
        return "emptyDir" in volume or "persistentVolumeClaim" in volume

    def secret_file(self, path: str, content: str) -> Path:
        """Materialise a key of a mounted Secret (the test plays the cluster's part)."""
        _, directory, volume = self.mount_of(path)
        assert "secret" in volume, f"{path} is meant to be a secret but is not on a Secret volume"
        target = self.host(path)
        assert target.parent == directory, f"{path}: Secret keys are files directly in the mount"
        target.write_text(content)
        return target


def lay_out(objects: list[dict[str, Any]], container_name: str, root: Path, namespace: str = "cosi-driver") -> PodFiles:
    pod = pod_spec(objects)
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    files = PodFiles(root, namespace)
    mounts = container(pod, container_name).get("volumeMounts", [])
    for mount in mounts:
        volume = volumes.get(mount["name"])
        assert volume is not None, f"volumeMount {mount['name']} has no volume"
        path = mount["mountPath"]
        assert path not in files.mounts, f"two volumes mounted at {path}"
        directory = root / f"vol-{mount['name']}"
        directory.mkdir(parents=True, exist_ok=True)
        if "configMap" in volume:
            config_map = find(objects, "ConfigMap", volume["configMap"]["name"])
            for key, text in config_map.get("data", {}).items():
                (directory / key).write_text(text)
        else:
            assert {"emptyDir", "persistentVolumeClaim", "secret"} & set(volume), f"unexpected volume {volume}"
        files.mounts[path] = (directory, volume)
    for path in files.mounts:  # the kubelet cannot create a mount point inside a read-only volume
        parents = [m for m in files.mounts if m != path and path.startswith(m.rstrip("/") + "/")]
        for parent in parents:
            assert files.writable(parent), f"{path} is mounted inside the read-only volume at {parent}"
    return files


def _map_value(files: PodFiles, value: str) -> str:
    if value.startswith("unix://"):
        return "unix://" + str(files.host(value[len("unix://") :]))
    if value.startswith("/"):
        return str(files.host(value))
    return value


def container_env(objects: list[dict[str, Any]], container_name: str, files: PodFiles) -> dict[str, str]:
    """The container's environment with every path mapped onto ``files``; downward-API values
    as the kubelet fills them."""
    c = container(pod_spec(objects), container_name)
    env: dict[str, str] = {}
    for item in c.get("env", []):
        if "value" in item:
            env[item["name"]] = _map_value(files, item["value"])
            continue
        field_path = item["valueFrom"]["fieldRef"]["fieldPath"]
        env[item["name"]] = {"metadata.namespace": files.namespace, "metadata.name": "cosi-driver-7d4b9-x2x4p"}[
            field_path
        ]
    return env


def materialise_config(files: PodFiles, env: dict[str, str]) -> dict[str, Any]:
    """Rewrite the mounted config file's paths onto ``files`` and create the Secret keys it and
    the environment refer to. Returns the config as the pod sees it."""
    config_path = Path(env["COSI_DRIVER_CONFIG"])
    original = yaml.safe_load(config_path.read_text())

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"file"}:
                return {"file": str(files.secret_file(node["file"], secrets.token_hex(24)))}
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, str) and node.startswith("/"):
            return str(files.host(node))
        return node

    config_path.write_text(yaml.safe_dump(walk(_with_default_roots(original))))
    return dict(original)


def _with_default_roots(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with each filesystem backend's root spelled out where the values leave it to the
    driver's default (a path in the image), so that it is mapped into the pod's files too."""
    import dataclasses

    from cosi_driver.backends.filesystem import FilesystemConfig

    default = next(f.default for f in dataclasses.fields(FilesystemConfig) if f.name == "root")
    backends = {
        name: {**body, "config": {"root": str(default), **(body.get("config") or {})}}
        if body.get("type") == "filesystem"
        else body
        for name, body in config.get("backends", {}).items()
    }
    return {**config, "backends": backends}


def secret_env_files(objects: list[dict[str, Any]], container_name: str, files: PodFiles) -> None:
    """Create the Secret keys that *_FILE variables (the master key) point at."""
    for name, value in env_values(container(pod_spec(objects), container_name)).items():
        if name.endswith("_FILE"):
            files.secret_file(value, secrets.token_hex(32))


def backend_types(config: Mapping[str, Any]) -> list[str]:
    return sorted({body["type"] for body in config["backends"].values()})


def missing_backend_types(config: Mapping[str, Any]) -> list[str]:
    from cosi_driver.core import registry

    return [t for t in backend_types(config) if t not in registry.available()]


def all_strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from all_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_strings(item)
    elif isinstance(node, str):
        yield node


def heredocs(markdown: str) -> list[str]:
    """Bodies of ``<<'EOF'`` ... ``EOF`` blocks in shell snippets."""
    return [body for _, body in re.findall(r"<<'?(\w+)'?\n(.*?)\n\s*\1\n", markdown, flags=re.S)]


def docs_section(page: str, title: str) -> str:
    """The text under ``## title`` in ``page`` (a path from the project root), up to the next one."""
    text = (PROJECT_ROOT / page).read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, f"{page} has no '## {title}' section"
    return match.group(1)


def fs_identity(c: Mapping[str, Any], pod: Mapping[str, Any]) -> tuple[int, int, list[int]]:
    """(uid, gid, supplementary groups) a container's process gets from the pod spec."""
    sc = {**pod.get("securityContext", {}), **c.get("securityContext", {})}
    uid = sc["runAsUser"]
    gid = sc.get("runAsGroup", 0)
    groups = list(pod.get("securityContext", {}).get("supplementalGroups", []))
    if "fsGroup" in pod.get("securityContext", {}):
        groups.append(pod["securityContext"]["fsGroup"])
    return uid, gid, sorted(set(groups))


def chown_like_kubelet(files: PodFiles, fs_group: int | None) -> None:
    """Ownership and modes as the kubelet leaves them: emptyDir 0777 and, with an fsGroup, group
    fsGroup plus the setgid bit; ConfigMap files 0644; Secret files at their defaultMode."""
    os.chmod(files.root, 0o755)
    for directory, volume in files.mounts.values():
        group = -1 if fs_group is None else fs_group
        if "emptyDir" in volume or "persistentVolumeClaim" in volume:
            os.chown(directory, 0, group)
            os.chmod(directory, 0o2777 if fs_group is not None else 0o777)
            continue
        mode = volume["secret"].get("defaultMode", 0o644) if "secret" in volume else 0o644
        os.chown(directory, 0, group)
        os.chmod(directory, 0o755)
        for item in directory.iterdir():
            os.chown(item, 0, group)
            os.chmod(item, mode)
