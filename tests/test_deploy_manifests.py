"""The kustomize overlays and the Helm chart, rendered by the real tools and checked the way a
cluster would check them: Kubernetes schemas, the COSI CRDs' schemas, RBAC against what the
v0.2.2 sidecar does, and the driver's own configuration parser on the files the pod would get.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import DriverProcess, free_port_block, short_tmpdir, wait_until
from tests.test_deploy_support import (
    CHART,
    DRIVER,
    EXAMPLES,
    OVERLAYS,
    SIDECAR,
    UPSTREAM_SIDECAR_UID,
    PodFiles,
    Rendered,
    all_strings,
    container,
    container_env,
    docs_section,
    env_values,
    find,
    fs_identity,
    helm_render,
    heredocs,
    kustomize,
    lay_out,
    load_documents,
    materialise_config,
    missing_backend_types,
    pod_spec,
    secret_env_files,
    validate_any,
    validate_cosi,
    validate_kubernetes,
)

SIDECAR_IMAGE = "registry.k8s.io/sig-storage/objectstorage-sidecar:v0.2.2"
# No release of the v1alpha2 sidecar exists; the kustomize component and these values name the same stand-in tag.
V1ALPHA2_SIDECAR_IMAGE = "registry.k8s.io/sig-storage/objectstorage-sidecar:v1alpha2-unreleased"
DIGEST = "sha256:" + "ab" * 32

# The chart has no backend of its own (an empty `backends` fails); docs/deploy.md's try-out line.
TRY_OUT: dict[str, Any] = {"backends": {"local": {"type": "filesystem"}}}

CHART_VALUES: dict[str, dict[str, Any]] = {
    # Every other value at the chart's default.
    "defaults": TRY_OUT,
    # A throwaway pod on a laptop cluster: everything in the pod's emptyDir.
    "development": {**TRY_OUT, "state": {"type": "file"}},
    "s3-kubernetes-state": {
        "driverName": "s3.objectstorage.example.com",
        "image": {"repository": "registry.example.com/platform/cosi-driver", "tag": "0.2.0"},
        "backends": {
            "aws": {
                "type": "s3",
                "config": {
                    "endpoint": "https://s3.eu-west-1.amazonaws.com",
                    "region": "eu-west-1",
                    "access_key_id": {"secretKeyRef": {"name": "aws-admin", "key": "access-key-id"}},
                    "secret_access_key": {"secretKeyRef": {"name": "aws-admin", "key": "secret-access-key"}},
                    "verify_tls": True,
                },
            }
        },
        "state": {"type": "kubernetes"},
        "replicaCount": 2,
        "tracing": {
            "enabled": True,
            "endpoint": "http://otel-collector.observability:4317",
            "samplerArg": "0.5",
            "sampler": "parentbased_traceidratio",
        },
        "metrics": {"service": {"annotations": {"prometheus.io/scrape": "true"}}},
        "extraEnv": [{"name": "COSI_DRIVER_OPERATION_TIMEOUT", "value": "60"}],
        "sidecar": {"image": {"digest": DIGEST}, "logLevel": 5, "extraArgs": ["--debug"]},
        "resources": {"requests": {"cpu": "200m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
    },
    "ceph-rgw": {
        "backends": {
            "ceph": {
                "type": "ceph-rgw",
                "config": {
                    "endpoint": "http://rook-ceph-rgw-store.rook-ceph.svc:80",
                    "admin_access_key_id": {"secretKeyRef": {"name": "rgw-admin", "key": "access-key"}},
                    "admin_secret_access_key": {"secretKeyRef": {"name": "rgw-admin", "key": "secret-key"}},
                },
            }
        },
        "masterKey": {"secretKeyRef": {"name": "cosi.master-key", "key": "key"}, "version": 2},
        "state": {"type": "kubernetes"},
    },
    "v1alpha2-sidecar": {
        **TRY_OUT,
        "sidecar": {"api": "v1alpha2", "image": {"tag": "v1alpha2-unreleased"}, "logLevel": 0},
        "state": {"type": "file"},
    },
    "azure-blob": {
        "backends": {
            "azure": {
                "type": "azure-blob",
                "config": {
                    "account_name": "mystorageaccount",
                    "account_key": {"secretKeyRef": {"name": "cosi-driver-azure-credentials", "key": "account-key"}},
                    "sas_lifetime": 7776000,
                },
            }
        },
        "state": {"type": "kubernetes"},
    },
    "two-backends-persistent": {
        "backends": {
            "scratch": {"type": "filesystem", "default": True, "config": {"root": "/var/lib/cosi-driver/scratch"}},
            "archive": {"type": "filesystem", "config": {"root": "/var/lib/cosi-driver/archive", "region": "eu"}},
        },
        "state": {"type": "file"},  # one pod with its own PersistentVolume: the file store fits
        "persistence": {"enabled": True, "storageClass": "fast", "size": "5Gi"},
        "podSecurityContext": {"fsGroup": 2000},
        "socket": {"perms": "0660"},
        "serviceAccount": {"name": "custom-sa", "annotations": {"example.com/role": "storage"}},
        "metrics": {"service": {"enabled": False}},
    },
}

SOURCES = [f"kustomize:{path.name}" for path in OVERLAYS] + [f"helm:{name}" for name in CHART_VALUES]


@functools.cache
def render(source: str) -> Rendered:
    kind, name = source.split(":", 1)
    if kind == "kustomize":
        return Rendered(kustomize(Path(__file__).resolve().parent.parent / "deploy" / "overlays" / name), "")
    return helm_render(CHART_VALUES[name])


def test_there_is_an_overlay_per_built_in_backend() -> None:
    assert {path.name for path in OVERLAYS} >= {"filesystem", "s3", "ceph-rgw", "azure-blob"}


# ---- schemas ----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_every_rendered_object_is_valid_kubernetes(source: str) -> None:
    objects = render(source).objects
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "ConfigMap"} <= kinds
    for obj in objects:
        validate_kubernetes(obj)


def test_the_kustomize_base_builds_and_is_valid() -> None:
    for obj in kustomize(Path(__file__).resolve().parent.parent / "deploy" / "base"):
        validate_kubernetes(obj)


def test_the_validators_refuse_what_a_cluster_refuses() -> None:
    deployment = find(render("helm:defaults").objects, "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(AssertionError, match="securityContxt"):
        validate_kubernetes(broken)
    claim = {
        "apiVersion": "objectstorage.k8s.io/v1alpha1",
        "kind": "BucketClaim",
        "metadata": {"name": "c", "namespace": "n"},
        "spec": {"bucketClassNam": "x", "protocols": ["S3"]},
    }
    with pytest.raises(AssertionError, match="bucketClassNam"):
        validate_cosi(claim)
    with pytest.raises(AssertionError, match="protocols"):
        validate_cosi({**claim, "spec": {"bucketClassName": "x"}})
    bucket_class = {
        "apiVersion": "objectstorage.k8s.io/v1alpha1",
        "kind": "BucketClass",
        "metadata": {"name": "b", "namespace": "n"},
        "driverName": "d",
        "deletionPolicy": "Delete",
    }
    with pytest.raises(AssertionError, match="cluster-scoped"):
        validate_cosi(bucket_class)


def _example_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".yaml", ".yml")) if EXAMPLES.is_dir() else []


@pytest.mark.parametrize("path", _example_files(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_examples_validate_against_the_cosi_crds_and_kubernetes(path: Path) -> None:
    documents = load_documents(path.read_text())
    assert documents, f"{path} holds no object"
    for obj in documents:
        validate_any(obj)


# ---- the pod ----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_the_pod_pairs_the_driver_with_the_upstream_sidecar_over_a_shared_socket(source: str) -> None:
    pod = pod_spec(render(source).objects)
    assert [c["name"] for c in pod["containers"]] == [DRIVER, SIDECAR]
    driver, sidecar = container(pod, DRIVER), container(pod, SIDECAR)
    endpoint = env_values(driver)["COSI_ENDPOINT"]
    assert endpoint == "unix:///var/lib/cosi/cosi.sock"
    if "v1alpha2" in source:
        # The v1alpha2 sidecar has no address flag: it reads COSI_ENDPOINT, and nothing else.
        assert sidecar["image"] == V1ALPHA2_SIDECAR_IMAGE
        assert env_values(sidecar) == {"COSI_ENDPOINT": endpoint}
        assert not [arg for arg in sidecar["args"] if "driver-addr" in arg]
        assert [e["name"] for e in sidecar["env"]] == ["COSI_ENDPOINT", "POD_NAMESPACE"]
    else:
        expected_sidecar = (
            f"registry.k8s.io/sig-storage/objectstorage-sidecar@{DIGEST}"
            if "s3-kubernetes" in source
            else SIDECAR_IMAGE
        )
        assert sidecar["image"] == expected_sidecar
        assert f"--driver-addr={endpoint}" in sidecar["args"]
        # The sidecar takes its settings from same-named environment variables too (viper); it gets
        # nothing but where its Lease lives.
        assert [e["name"] for e in sidecar.get("env", [])] == ["POD_NAMESPACE"]
    assert "COSI_DRIVER_APIS" not in env_values(driver), "the driver serves both APIs, whichever sidecar it has"
    socket_dir = os.path.dirname(endpoint.removeprefix("unix://"))
    volumes = {v["name"]: v for v in pod["volumes"]}
    shared = [
        m["name"]
        for m in driver["volumeMounts"]
        if m["mountPath"] == socket_dir
        and any(s["name"] == m["name"] and s["mountPath"] == socket_dir for s in sidecar["volumeMounts"])
    ]
    assert len(shared) == 1, "driver and sidecar must mount one volume at the socket directory"
    assert "emptyDir" in volumes[shared[0]]
    for volume in volumes:  # the API server wants DNS labels; the JSON schemas do not say so
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", volume), volume


@pytest.mark.parametrize("source", SOURCES)
def test_probes_ask_the_drivers_http_server(source: str) -> None:
    driver = container(pod_spec(render(source).objects), DRIVER)
    host, port = env_values(driver)["COSI_DRIVER_HTTP_ADDR"].rsplit(":", 1)
    assert host == "0.0.0.0", "the kubelet probes the pod IP, so the HTTP server must not bind loopback only"
    ports = {p["name"]: p["containerPort"] for p in driver["ports"]}
    assert ports["http"] == int(port)
    assert driver["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert driver["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert driver["startupProbe"]["httpGet"]["path"] == "/livez"


@pytest.mark.parametrize("source", SOURCES)
def test_both_containers_run_locked_down(source: str) -> None:
    pod = pod_spec(render(source).objects)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0, c["name"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc.get("privileged", False) is False, c["name"]
        assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], c["name"]
    assert container(pod, SIDECAR)["securityContext"]["runAsUser"] == UPSTREAM_SIDECAR_UID


@pytest.mark.parametrize("source", SOURCES)
def test_the_socket_admits_the_sidecar_and_nobody_else(source: str) -> None:
    """By the pod spec: mode, group and the containers' identities (tests/test_deploy_image.py
    checks the same with real processes under those identities)."""
    pod = pod_spec(render(source).objects)
    driver, sidecar = container(pod, DRIVER), container(pod, SIDECAR)
    env = env_values(driver)
    mode = int(env.get("X_COSI_ENDPOINT_PERMS", "0660"), 8)
    assert mode & 0o007 == 0, f"socket mode {mode:04o} lets any user connect"
    driver_uid, driver_gid, driver_groups = fs_identity(driver, pod)
    sidecar_uid, sidecar_gid, sidecar_groups = fs_identity(sidecar, pod)
    socket_uid = int(env.get("X_COSI_ENDPOINT_USER", driver_uid))
    socket_gid = int(env["X_COSI_ENDPOINT_GROUP"])
    assert socket_uid == driver_uid, "a non-root driver cannot give its socket away"
    assert socket_gid in driver_groups or socket_gid == driver_gid, "the driver must be in the socket's group to chown"
    if sidecar_uid == socket_uid:
        assert mode & 0o600 == 0o600
    else:
        assert socket_gid in [sidecar_gid, *sidecar_groups], "the sidecar must be in the socket's group"
        assert mode & 0o060 == 0o060, "the group needs read and write to connect"


@pytest.mark.parametrize("source", SOURCES)
def test_secrets_are_referenced_never_inlined(source: str) -> None:
    objects = render(source).objects
    assert not [o for o in objects if o["kind"] == "Secret"], "the deployment must not ship Secret objects"
    pod = pod_spec(objects)
    driver = container(pod, DRIVER)
    for item in driver.get("env", []):
        if re.search(r"KEY|SECRET|PASSWORD|TOKEN", item["name"]) and not item["name"].endswith("_FILE"):
            assert "valueFrom" in item or item["name"].endswith("_VERSION"), f"{item['name']} carries a literal"
    config = yaml.safe_load(find(objects, "ConfigMap")["data"]["config.yaml"])
    secret_mounts = {
        m["mountPath"]: v["secret"]["secretName"]
        for m in driver["volumeMounts"]
        for v in pod["volumes"]
        if v["name"] == m["name"] and "secret" in v
    }
    refs = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            assert "value" not in node or set(node) != {"value"}, f"{where} is an inline secret"
            if set(node) == {"file"}:
                refs.append(node["file"])
            for key, value in node.items():
                walk(value, f"{where}.{key}")

    walk(config, "config")
    for name, value in env_values(driver).items():
        if name.endswith("_FILE"):
            refs.append(value)
    for ref in refs:
        assert os.path.dirname(ref) in secret_mounts, f"{ref} is not a key of a mounted Secret"
    assert {os.path.dirname(r) for r in refs} == set(secret_mounts), "a Secret is mounted that nothing uses"


# ---- RBAC -------------------------------------------------------------------------------------

# (API group, resource, verb) the v0.2.2 sidecar uses, read from its source: informers on
# Buckets and BucketAccesses (list/watch), the listeners' Get/Update/UpdateStatus/Delete calls,
# the credentials Secret, and Events.
SIDECAR_CLUSTER_VERBS = (
    {("objectstorage.k8s.io", "buckets", verb) for verb in ("get", "list", "watch", "update")}
    | {("objectstorage.k8s.io", "bucketaccesses", verb) for verb in ("get", "list", "watch", "update", "delete")}
    | {
        ("objectstorage.k8s.io", "buckets/status", "update"),
        ("objectstorage.k8s.io", "bucketaccesses/status", "update"),
        ("objectstorage.k8s.io", "bucketclaims", "get"),
        ("objectstorage.k8s.io", "bucketclaims", "update"),
        ("objectstorage.k8s.io", "bucketclaims/status", "update"),
        ("objectstorage.k8s.io", "bucketclasses", "get"),
        ("objectstorage.k8s.io", "bucketaccessclasses", "get"),
        ("", "secrets", "get"),
        ("", "secrets", "create"),
        ("", "secrets", "update"),
        ("", "secrets", "delete"),
        ("", "events", "create"),
        ("", "events", "patch"),
    }
)
# The v1alpha2 sidecar's informer cache lists and watches Secrets in every namespace (../shared/k8s/README.md).
V1ALPHA2_SIDECAR_SECRET_VERBS = {("", "secrets", "list"), ("", "secrets", "watch")}
LEASE_VERBS = {("coordination.k8s.io", "leases", verb) for verb in ("get", "create", "update")}
STATE_STORE_VERBS = {("", "secrets", verb) for verb in ("get", "list", "create", "update", "delete")}


def _granted(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _bound(objects: list[dict[str, Any]], binding_kind: str, namespace: str, account: str) -> set[tuple[str, str, str]]:
    role_kind = "ClusterRole" if binding_kind == "ClusterRoleBinding" else "Role"
    granted: set[tuple[str, str, str]] = set()
    for binding in (o for o in objects if o["kind"] == binding_kind):
        if {"kind": "ServiceAccount", "name": account, "namespace": namespace} in binding["subjects"]:
            role = find(objects, role_kind, binding["roleRef"]["name"])
            if role_kind == "Role":
                assert role["metadata"]["namespace"] == namespace
            granted |= _granted(role)
    return granted


@pytest.mark.parametrize("source", SOURCES)
def test_the_service_account_may_do_what_the_sidecar_and_the_state_store_do(source: str) -> None:
    objects = render(source).objects
    deployment = find(objects, "Deployment")
    namespace = deployment["metadata"]["namespace"]
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert find(objects, "ServiceAccount", account)["metadata"]["namespace"] == namespace
    cluster = _bound(objects, "ClusterRoleBinding", namespace, account)
    local = _bound(objects, "RoleBinding", namespace, account)
    assert SIDECAR_CLUSTER_VERBS - cluster == set()
    assert LEASE_VERBS - local == set(), "the sidecar elects its leader with a Lease in its own namespace"
    assert not {g for g in cluster if g[1] == "leases"}, "Leases are needed in the driver's namespace only"
    if "v1alpha2" in source:
        assert V1ALPHA2_SIDECAR_SECRET_VERBS - cluster == set(), "the v1alpha2 sidecar caches every Secret"
    else:
        assert not V1ALPHA2_SIDECAR_SECRET_VERBS & cluster, "the v0.2.2 sidecar needs no Secret listing"
    config = yaml.safe_load(find(objects, "ConfigMap")["data"]["config.yaml"])
    if config.get("state", {}).get("type") == "kubernetes":
        assert STATE_STORE_VERBS - local == set(), "the Kubernetes state store keeps Secrets in its namespace"
    assert not any("*" in entry for entry in cluster | local), "no wildcards"


# ---- the driver reads what the pod gives it ---------------------------------------------------


@contextlib.contextmanager
def pod_files(source: str) -> Iterator[tuple[PodFiles, dict[str, str], dict[str, Any]]]:
    objects = render(source).objects
    namespace = find(objects, "Deployment")["metadata"]["namespace"]
    with short_tmpdir("cosi-pod-") as root:
        files = lay_out(objects, DRIVER, root, namespace)
        env = container_env(objects, DRIVER, files)
        secret_env_files(objects, DRIVER, files)
        config = materialise_config(files, env)
        yield files, env, config


@pytest.mark.parametrize("source", SOURCES)
def test_the_real_driver_accepts_the_rendered_configuration(source: str) -> None:
    from cosi_driver.config.backends import load_driver_config
    from cosi_driver.config.settings import load_settings

    with pod_files(source) as (files, env, config):
        missing = missing_backend_types(config)
        if missing:
            pytest.skip(f"backend type(s) {missing} not installed in this checkout yet")
        loaded = load_driver_config(load_settings(env), env)
        assert set(loaded.backends) == set(config["backends"])
        assert loaded.state.type == config.get("state", {}).get("type", "file")
        if loaded.state.type == "kubernetes":  # its settings are parsed when the store is built
            kubernetes_store = pytest.importorskip("cosi_driver.core.stores.kubernetes")
            from cosi_driver.core.options import parse_options

            parse_options(kubernetes_store.KubernetesStoreConfig, loaded.state.settings, "state.config")
        # What the driver writes must be on a writable volume: the root file system is read-only.
        raw_env = env_values(container(pod_spec(render(source).objects), DRIVER))
        written = [os.path.dirname(raw_env["COSI_ENDPOINT"].removeprefix("unix://"))]
        if loaded.state.type == "file":
            written.append(raw_env["COSI_DRIVER_STATE_DIR"])
        written += [
            body.get("config", {}).get("root", "/var/lib/cosi-driver/filesystem")
            for body in config["backends"].values()
            if body["type"] == "filesystem"
        ]
        for path in written:
            assert files.writable(path), f"{path} is not on a writable volume"


def _filesystem_only(source: str) -> bool:
    config = yaml.safe_load(find(render(source).objects, "ConfigMap")["data"]["config.yaml"])
    return {body["type"] for body in config["backends"].values()} == {"filesystem"} and "state" not in config


@contextlib.contextmanager
def running_pod_driver(source: str) -> Iterator[tuple[DriverProcess, dict[str, str], PodFiles]]:
    with pod_files(source) as (files, pod_env, _):
        http_port = free_port_block(1)
        env = {**pod_env, "COSI_DRIVER_HTTP_ADDR": f"127.0.0.1:{http_port}", "PATH": os.environ.get("PATH", "/usr/bin")}
        socket_path = Path(env["COSI_ENDPOINT"].removeprefix("unix://"))
        log_path = files.root / "driver.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cosi_driver", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        driver = DriverProcess(process, socket_path, log_path)
        try:
            driver.wait_ready()
            yield driver, env, files
        finally:
            driver.stop()


FILESYSTEM_SOURCES = ["kustomize:filesystem", "helm:development", "helm:two-backends-persistent"]


@pytest.mark.parametrize("source", FILESYSTEM_SOURCES)
async def test_a_filesystem_pod_serves_and_keeps_its_data_on_its_volume(source: str) -> None:
    from tests.support import Client

    assert _filesystem_only(source)
    with running_pod_driver(source) as (driver, env, files):
        client = Client(driver.endpoint)
        try:
            assert await client.info() == env["COSI_DRIVER_NAME"]
            created = await client.create("deploy-test-bucket")
        finally:
            await client.close()
        assert created.bucket_id
        data = [p for p in files.root.rglob("deploy-test-bucket") if p.is_dir()]
        assert data, "the bucket must land on the pod's data volume"
        assert all(files.writable(m) for m, (d, _) in files.mounts.items() if data[0].is_relative_to(d))


async def test_the_probes_answer_on_the_rendered_paths() -> None:
    from cosi_driver.config.settings import SETTINGS

    if "COSI_DRIVER_HTTP_ADDR" not in {s.env for s in SETTINGS}:
        pytest.skip("COSI_DRIVER_HTTP_ADDR is not implemented in this checkout yet (observability issue)")
    driver_container = container(pod_spec(render("helm:development").objects), DRIVER)
    with running_pod_driver("helm:development") as (_, env, _files):
        base = "http://" + env["COSI_DRIVER_HTTP_ADDR"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = driver_container[probe]["httpGet"]["path"]

            def answers(url: str = base + path) -> bool:
                try:
                    with urllib.request.urlopen(url, timeout=2) as response:
                        return bool(response.status == 200)
                except OSError:
                    return False

            wait_until(answers, 15, f"{probe} {path} to answer 200")


# ---- chart specifics --------------------------------------------------------------------------


@pytest.mark.parametrize("name", CHART_VALUES)
def test_the_chart_lints_clean(name: str) -> None:
    import helm_python as helm

    report = helm.lint(CHART, CHART_VALUES[name], strict=True, kube_version="v1.32.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], report


def test_non_default_values_reach_the_pod() -> None:
    objects = render("helm:s3-kubernetes-state").objects
    pod = pod_spec(objects)
    driver, sidecar = container(pod, DRIVER), container(pod, SIDECAR)
    env = env_values(driver)
    assert driver["image"] == "registry.example.com/platform/cosi-driver:0.2.0"
    assert env["COSI_DRIVER_NAME"] == "s3.objectstorage.example.com"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4317"
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio" and env["OTEL_TRACES_SAMPLER_ARG"] == "0.5"
    assert env["COSI_DRIVER_OPERATION_TIMEOUT"] == "60"
    assert "--v=5" in sidecar["args"] and "--debug" in sidecar["args"]
    assert driver["resources"]["limits"]["memory"] == "512Mi"
    assert find(objects, "Deployment")["spec"]["replicas"] == 2
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert find(objects, "Service")["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}
    defaults = env_values(container(pod_spec(render("helm:defaults").objects), DRIVER))
    assert not [name for name in defaults if name.startswith("OTEL_")], "tracing is off by default"

    persistent = render("helm:two-backends-persistent").objects
    claim = find(persistent, "PersistentVolumeClaim")
    assert claim["spec"]["storageClassName"] == "fast"
    data = next(v for v in pod_spec(persistent)["volumes"] if v["name"] == "data")
    assert data["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert env_values(container(pod_spec(persistent), DRIVER))["X_COSI_ENDPOINT_GROUP"] == "2000"
    assert not [o for o in persistent if o["kind"] == "Service"]
    assert pod_spec(persistent)["serviceAccountName"] == "custom-sa"


def test_a_config_change_rolls_the_pod() -> None:
    def checksum(values: dict[str, Any]) -> str:
        deployment = find(helm_render(values).objects, "Deployment")
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum(TRY_OUT) != checksum(CHART_VALUES["two-backends-persistent"])


BAD_VALUES = [
    ({"driverName": "Objectstorage.Example.COM"}, "/driverName"),
    ({"driverName": "a" * 64}, "/driverName"),
    (
        {"backends": {"s3": {"type": "s3", "config": {"secret_access_key": {"value": "hunter2"}}}}},
        "/backends/s3/config/secret_access_key",
    ),
    (
        {"backends": {"s3": {"type": "s3", "config": {"secret_access_key": {"secretKeyRef": {"name": "x"}}}}}},
        "/backends/s3/config/secret_access_key",
    ),
    ({"backends": {"Bad_Name": {"type": "filesystem"}}}, "Bad_Name"),
    ({"backends": {"x": {"config": {}}}}, "/backends/x"),
    ({"state": {"type": "etcd"}}, "/state/type"),
    ({"state": {"type": "file"}, "replicaCount": 2}, "/replicaCount"),
    ({"state": {"type": "kubernetes", "config": {"name_prefix": "Cosi_State-"}}}, "/state/config/name_prefix"),
    ({"state": {"config": {"request_timout": 5}}}, "request_timout"),
    ({"podDisruptionBudget": {"maxUnavailable": 0}}, "/podDisruptionBudget/maxUnavailable"),
    ({"topologySpreadConstraints": [{"maxSkew": 1}]}, "/topologySpreadConstraints/0"),
    ({"socket": {"perms": "0666"}}, "/socket/perms"),
    ({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser"),
    ({"securityContext": {"allowPrivilegeEscalation": True}}, "/securityContext/allowPrivilegeEscalation"),
    (
        {"sidecar": {"securityContext": {"capabilities": {"drop": ["NET_RAW"]}}}},
        "/sidecar/securityContext/capabilities",
    ),
    ({"podSecurityContext": {"fsGroup": None}}, "fsGroup"),
    ({"tracing": {"enabled": True}}, "/tracing/endpoint"),
    ({"image": {"digest": "latest"}}, "/image/digest"),
    ({"http": {"port": 70000}}, "/http/port"),
    ({"resources": {"limit": {"memory": "1Gi"}}}, "limit"),
    ({"extraEnv": [{"value": "no name"}]}, "/extraEnv/0"),
    ({"imageTag": "0.2.0"}, "imageTag"),
    ({"sidecar": {"api": "v1beta1"}}, "/sidecar/api"),
    # Template-time checks for what JSON Schema cannot say:
    ({"backends": {"a": {"type": "filesystem"}, "b": {"type": "filesystem"}}}, "mark exactly one"),
    ({"backends": {"ceph": {"type": "ceph-rgw", "config": {"endpoint": "http://rgw"}}}}, "masterKey.secretKeyRef"),
    # Two pods cannot share a filesystem backend's buckets, whatever the state store.
    ({**TRY_OUT, "replicaCount": 2}, "backends.local: type filesystem keeps its buckets in one pod's volume"),
    ({"sidecar": {"api": "v1alpha2"}}, "the v0.2.2 sidecar speaks only COSI v1alpha1"),
]


@pytest.mark.parametrize(("values", "complaint"), BAD_VALUES, ids=[c for _, c in BAD_VALUES])
def test_bad_values_fail_before_anything_reaches_the_cluster(values: dict[str, Any], complaint: str) -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError) as caught:
        helm_render({**TRY_OUT, **values})
    assert complaint in str(caught.value)


def test_without_backends_the_chart_refuses_and_says_how_to_try_it_out() -> None:
    import helm_python as helm

    for values in ({}, {"backends": {}}, {"driverName": "x.example.com", "state": {"type": "file"}}):
        with pytest.raises(helm.HelmError) as caught:
            helm_render(values)
        message = str(caught.value)
        assert "the backends value is empty" in message, message
        assert "--set backends.local.type=filesystem" in message and "docs/deploy.md" in message


def test_notes_tell_the_next_commands() -> None:
    notes = render("helm:s3-kubernetes-state").notes
    assert "kubectl -n cosi-driver rollout status deployment/cosi-driver" in notes
    assert "kubectl -n cosi-driver get secret aws-admin" in notes
    assert "driverName: s3.objectstorage.example.com" in notes
    documents = [doc for body in heredocs(notes) for doc in load_documents(textwrap.dedent(body))]
    assert {d["kind"] for d in documents} == {"BucketClass", "BucketAccessClass", "BucketClaim", "BucketAccess"}
    for document in documents:
        validate_cosi(
            {**document, "metadata": {**document["metadata"], "namespace": "my-app"}}
            if document["kind"] in ("BucketClaim", "BucketAccess")
            else document
        )
    assert "get secret" not in render("helm:defaults").notes, "nothing to create for the filesystem backend"


# ---- kustomize and chart say the same ---------------------------------------------------------


def _essence(objects: list[dict[str, Any]]) -> dict[str, Any]:
    pod = pod_spec(objects)

    def of(c: dict[str, Any]) -> dict[str, Any]:
        return {
            "env": sorted(e["name"] for e in c.get("env", [])),
            "mounts": sorted(m["mountPath"] for m in c.get("volumeMounts", [])),
            "ports": c.get("ports"),
            "probes": {k: c.get(k) for k in ("startupProbe", "livenessProbe", "readinessProbe")},
            "securityContext": c["securityContext"],
            "resources": c["resources"],
            "args": [a for a in c.get("args", [])],
        }

    return {
        "podSecurityContext": pod["securityContext"],
        "containers": {c["name"]: of(c) for c in pod["containers"]},
        "sidecar_image": container(pod, SIDECAR)["image"],
        "env": {k: v for k, v in env_values(container(pod, DRIVER)).items() if k != "COSI_DRIVER_NAME"},
    }


@pytest.mark.parametrize(
    ("overlay", "values"), [("filesystem", "development"), ("filesystem-v1alpha2", "v1alpha2-sidecar")]
)
def test_the_kustomize_overlay_and_the_chart_describe_the_same_pod(overlay: str, values: str) -> None:
    assert _essence(render(f"kustomize:{overlay}").objects) == _essence(render(f"helm:{values}").objects)


# ---- the deploy steps of docs/deploy.md ---------------------------------------------------------


def test_the_documented_deploy_steps_apply_valid_objects() -> None:
    section = docs_section("docs/deploy.md", "Deploy")
    documents = [doc for body in heredocs(section) for doc in load_documents(textwrap.dedent(body))]
    kinds = {d["kind"] for d in documents}
    assert {"BucketClass", "BucketAccessClass", "BucketClaim", "BucketAccess", "Pod"} <= kinds
    driver_name = env_values(container(pod_spec(render("kustomize:filesystem").objects), DRIVER))["COSI_DRIVER_NAME"]
    for document in documents:
        validate_any(document)
        if "driverName" in document:
            assert document["driverName"] == driver_name
    claims = {d["metadata"]["name"] for d in documents if d["kind"] == "BucketClaim"}
    classes = {d["metadata"]["name"] for d in documents if d["kind"] in ("BucketClass", "BucketAccessClass")}
    for access in (d for d in documents if d["kind"] == "BucketAccess"):
        assert access["spec"]["bucketClaimName"] in claims and access["spec"]["bucketAccessClassName"] in classes
        pods = [d for d in documents if d["kind"] == "Pod"]
        secret = access["spec"]["credentialsSecretName"]
        assert any(secret in all_strings(p) for p in pods), "the consumer pod must mount the credentials Secret"


@pytest.mark.parametrize("overlay", [path.name for path in OVERLAYS])
def test_the_deploy_page_says_how_to_create_each_secret_an_overlay_needs(overlay: str) -> None:
    section = docs_section("docs/deploy.md", "Deploy")
    pod = pod_spec(render(f"kustomize:{overlay}").objects)
    for volume in pod["volumes"]:
        if "secret" in volume:
            assert f"create secret generic {volume['secret']['secretName']}" in section
    assert f"deploy/overlays/{overlay}" in section


def test_helm_install_command_in_the_deploy_page_uses_this_chart() -> None:
    section = docs_section("docs/deploy.md", "Deploy")
    assert re.search(r"helm (upgrade --)?install \S+ \./charts/cosi-driver", section)
    assert "kubectl apply -k deploy/overlays/" in section
    assert "socket" in section.lower()


# ---- where the state lives, and two replicas ----------------------------------------------------


def _state_type(objects: list[dict[str, Any]]) -> str:
    config = yaml.safe_load(find(objects, "ConfigMap")["data"]["config.yaml"])
    return str(config.get("state", {}).get("type", "file"))


def test_by_default_the_state_lives_in_secrets_of_the_release_namespace_and_nothing_more() -> None:
    objects = render("helm:defaults").objects
    assert _state_type(objects) == "kubernetes"
    deployment = find(objects, "Deployment")
    namespace = deployment["metadata"]["namespace"]
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    local = _bound(objects, "RoleBinding", namespace, account)
    assert {grant for grant in local if grant[1] == "secrets"} == STATE_STORE_VERBS
    # A rollout may start the new pod first: nothing of the state is in the old pod.
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    # One replica: no budget (it would block every drain) and no spreading.
    assert not [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    assert "affinity" not in pod_spec(objects) and "topologySpreadConstraints" not in pod_spec(objects)


@pytest.mark.parametrize("source", ["helm:development", "helm:two-backends-persistent"])
def test_the_file_store_gets_no_secret_access_and_a_recreating_rollout(source: str) -> None:
    objects = render(source).objects
    assert _state_type(objects) == "file"
    deployment = find(objects, "Deployment")
    local = _bound(objects, "RoleBinding", deployment["metadata"]["namespace"], pod_spec(objects)["serviceAccountName"])
    assert not {grant for grant in local if grant[1] == "secrets"}
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}, "two pods must never share the file store"


@pytest.mark.parametrize("replicas", [2, 3])
def test_replicas_on_the_kubernetes_store_get_a_budget_and_are_spread(replicas: int) -> None:
    values = {**CHART_VALUES["s3-kubernetes-state"], "replicaCount": replicas}
    objects = helm_render(values).objects
    for body in objects:
        validate_kubernetes(body)
    deployment = find(objects, "Deployment")
    assert deployment["spec"]["replicas"] == replicas
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    budget = find(objects, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    spec = pod_spec(objects)
    (preferred,) = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert preferred["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in spec["affinity"]["podAntiAffinity"], (
        "a one-node cluster must still schedule every replica"
    )
    (spread,) = spec["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"]["matchLabels"].items() <= pod_labels.items()


def test_own_affinity_and_spread_replace_the_defaults_and_the_budget_can_be_turned_off() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}
    spread = [{"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule"}]
    values = {
        **CHART_VALUES["s3-kubernetes-state"],
        "affinity": affinity,
        "topologySpreadConstraints": spread,
        "podDisruptionBudget": {"enabled": False},
    }
    objects = helm_render(values).objects
    assert pod_spec(objects)["affinity"] == affinity
    assert pod_spec(objects)["topologySpreadConstraints"] == spread
    assert not [o for o in objects if o["kind"] == "PodDisruptionBudget"]


def test_the_kubernetes_store_settings_reach_the_driver_and_it_accepts_them() -> None:
    from cosi_driver.core.options import parse_options
    from cosi_driver.core.stores.kubernetes import KubernetesStoreConfig, check_name_prefix

    settings = {"name_prefix": "tenant-a.state-", "request_timeout": 4}
    objects = helm_render({**TRY_OUT, "state": {"type": "kubernetes", "config": settings}}).objects
    config = yaml.safe_load(find(objects, "ConfigMap")["data"]["config.yaml"])
    assert config["state"] == {"type": "kubernetes", "config": settings}
    parsed = parse_options(KubernetesStoreConfig, config["state"]["config"], "state.config")
    assert parsed.request_timeout == 4.0
    check_name_prefix(parsed.name_prefix)


@pytest.mark.parametrize("overlay", ["s3", "ceph-rgw"])
def test_the_replicas_component_gives_a_kubernetes_state_overlay_two_spread_pods(overlay: str, tmp_path: Path) -> None:
    """kustomize refuses paths outside an overlay's tree, so a copy of deploy/ holds the user's overlay."""
    tree = tmp_path / "deploy"
    shutil.copytree(Path(__file__).resolve().parent.parent / "deploy", tree)
    mine = tree / "overlays" / "mine"
    mine.mkdir()
    (mine / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [../{overlay}]\ncomponents: [../../components/replicas]\n"
    )
    objects = kustomize(mine)
    for body in objects:
        validate_kubernetes(body)
    assert _state_type(objects) == "kubernetes"
    deployment = find(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    budget = find(objects, "PodDisruptionBudget")
    assert budget["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    spec = pod_spec(objects)
    assert spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert spec["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
    account = spec["serviceAccountName"]
    local = _bound(objects, "RoleBinding", deployment["metadata"]["namespace"], account)
    assert {grant for grant in local if grant[1] == "secrets"} == STATE_STORE_VERBS
