"""State stores: the file store, and the Kubernetes Secret store against a real kube-apiserver
(the session's cluster from tests/fixtures/k8s.py, shared with the end-to-end suite)."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from cosi_driver.config.backends import StateConfig
from cosi_driver.config.build import build_store
from cosi_driver.core.options import ConfigProblem
from cosi_driver.core.stores import FileStateStore, StateStore
from tests.e2e.kube import Cluster
from tests.support import Client, start_driver


async def exercise(store: StateStore) -> None:
    """What the driver relies on: get/put/delete/keys with exact round trips."""
    assert await store.get("bucket/fs/a") is None
    await store.put("bucket/fs/a", {"fingerprint": "f1", "params": {"deletionPolicy": "purge"}})
    await store.put("credentials/fs/acct-1", {"access_key_id": "AK", "secret_access_key": "s3cr3t"})
    assert await store.get("bucket/fs/a") == {"fingerprint": "f1", "params": {"deletionPolicy": "purge"}}
    await store.put("bucket/fs/a", {"fingerprint": "f2", "params": {}})  # overwrite
    assert (await store.get("bucket/fs/a") or {})["fingerprint"] == "f2"
    assert await store.keys("bucket/") == ["bucket/fs/a"]
    assert await store.keys() == ["bucket/fs/a", "credentials/fs/acct-1"]
    await store.delete("bucket/fs/a")
    await store.delete("bucket/fs/a")  # already gone: fine
    assert await store.get("bucket/fs/a") is None


async def test_file_store_round_trips_and_keeps_files_private(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state")
    await exercise(store)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    for path in (tmp_path / "state").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # a second instance (a restarted driver) sees the same documents
    assert await FileStateStore(tmp_path / "state").keys() == ["credentials/fs/acct-1"]


# The keys of the 8 INTERNAL answers of issue 20's fuzz: 128-byte names of multi-byte characters,
# whose percent-encoded file names (and the temporary files beside them) passed 255 bytes.
LONG_KEYS = [
    "bucket/filesystem/" + "\u6876" * 42,  # CJK, 3 bytes each
    "bucket/filesystem/" + "\U0001f4e6" * 32,  # emoji, 4 bytes each
    "credentials/s3/" + "\u00e9" * 64,
    "bucket/filesystem/" + "x" * 2000,  # longer than any name: the store itself sets no limit
]


@pytest.mark.parametrize("key", LONG_KEYS, ids=["cjk", "emoji", "latin-1", "2000-ascii"])
async def test_file_store_keeps_keys_of_any_length_and_script(tmp_path: Path, key: str) -> None:
    store = FileStateStore(tmp_path / "state")
    await store.put(key, {"fingerprint": "f"})
    assert await store.get(key) == {"fingerprint": "f"}
    assert await FileStateStore(tmp_path / "state").keys() == [key]
    assert all(len(path.name.encode()) <= 255 for path in (tmp_path / "state").iterdir())
    await store.delete(key)
    assert await store.get(key) is None
    assert list((tmp_path / "state").iterdir()) == []


def write_old_store(directory: Path, documents: dict[str, dict[str, Any]]) -> None:
    """A state directory as the percent-encoding releases left it: bare documents, encoded names."""
    directory.mkdir(mode=0o700)
    for key, document in documents.items():
        (directory / (quote(key, safe="") + ".json")).write_text(json.dumps(document))


async def test_file_store_reads_a_directory_written_by_the_percent_encoding_releases(tmp_path: Path) -> None:
    old = {
        "bucket/filesystem/bucket-a": {"fingerprint": "fa", "params": {"deletionPolicy": "retain"}},
        "bucket/filesystem/caf\u00e9 %2F": {"fingerprint": "fb", "params": {}},
        "credentials/s3/acct-1": {"access_key_id": "AK", "secret_access_key": "s3cr3t"},
    }
    write_old_store(tmp_path / "state", old)
    store = FileStateStore(tmp_path / "state")
    for key, document in old.items():
        assert await store.get(key) == document
    assert await store.keys() == sorted(old)
    assert await store.keys("bucket/") == sorted(k for k in old if k.startswith("bucket/"))

    # A write moves the key to its new file and removes the old one; keys() lists it once.
    await store.put("bucket/filesystem/bucket-a", {"fingerprint": "fa2", "params": {}})
    assert not (tmp_path / "state" / "bucket%2Ffilesystem%2Fbucket-a.json").exists()
    assert await store.get("bucket/filesystem/bucket-a") == {"fingerprint": "fa2", "params": {}}
    assert await store.keys() == sorted(old)

    # A delete removes an old-style file too, so the old document cannot come back.
    await store.delete("credentials/s3/acct-1")
    assert await store.get("credentials/s3/acct-1") is None
    assert await FileStateStore(tmp_path / "state").keys() == sorted(old)[:2]


async def test_a_driver_keeps_owning_buckets_recorded_by_the_old_store(workdir: Path) -> None:
    """An upgrade must not turn our buckets into foreign ones: the intent record is read back."""
    data = workdir / "data"
    first = start_driver({"COSI_DRIVER_BACKEND_ROOT": str(data)}, workdir)
    try:
        client = Client(first.endpoint)
        bucket_id = (await client.create("bucket-old", deletionPolicy="retain")).bucket_id
        await client.close()
    finally:
        first.stop()
    # Rewrite the state directory the old way and drop the backend's own mark, so only the
    # (old-style) intent record says the bucket is ours.
    state = workdir / "state"
    documents = {}
    for path in state.iterdir():
        wrapped = json.loads(path.read_text())
        documents[wrapped["key"]] = wrapped["document"]
        path.unlink()
    state.rmdir()
    write_old_store(state, documents)
    (data / ".cosi" / "marks" / "bucket-old.json").unlink()
    second = start_driver({"COSI_DRIVER_BACKEND_ROOT": str(data)}, workdir)
    try:
        client = Client(second.endpoint)
        assert (await client.create("bucket-old", deletionPolicy="retain")).bucket_id == bucket_id
        await client.delete(bucket_id)  # the recorded policy (retain) applies: still there
        await client.close()
    finally:
        second.stop()
    assert (data / "buckets" / "bucket-old").is_dir()


def test_state_config_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigProblem, match=r"state.config.directroy"):
        build_store(StateConfig("file", {"directroy": str(tmp_path)}))
    with pytest.raises(ConfigProblem, match=r"state.type"):
        build_store(StateConfig("etcd", {}))


@pytest.fixture
def namespace(k8s_cluster: Cluster) -> str:
    name = f"store-{uuid.uuid4().hex[:8]}"
    k8s_cluster.kubectl("create", "namespace", name)
    return name


def kubernetes_store(k8s_cluster: Cluster, namespace: str, prefix: str = "cosi-driver-state-") -> Any:
    config = {"namespace": namespace, "kubeconfig": str(k8s_cluster.kubeconfig), "name_prefix": prefix}
    return build_store(StateConfig("kubernetes", config))


async def test_kubernetes_store_round_trips(k8s_cluster: Cluster, namespace: str) -> None:
    store = kubernetes_store(k8s_cluster, namespace)
    await exercise(store)
    # A new instance (a restarted pod) reads the same documents back.
    again = kubernetes_store(k8s_cluster, namespace)
    assert await again.get("credentials/fs/acct-1") == {"access_key_id": "AK", "secret_access_key": "s3cr3t"}


async def test_kubernetes_store_keeps_each_document_in_a_labelled_secret(k8s_cluster: Cluster, namespace: str) -> None:
    store = kubernetes_store(k8s_cluster, namespace, prefix="mydriver-")
    await store.put("bucket/fs/b", {"fingerprint": "f"})
    listed = json.loads(k8s_cluster.kubectl("get", "secrets", "-n", namespace, "-o", "json").stdout)["items"]
    ours = [item for item in listed if item["metadata"]["name"].startswith("mydriver-")]
    assert len(ours) == 1
    assert ours[0]["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "cosi-driver"
    assert ours[0]["metadata"]["annotations"]["cosi-driver.objectstorage.k8s.io/key"] == "bucket/fs/b"
    # Another driver's prefix in the same namespace is not mixed in.
    assert await kubernetes_store(k8s_cluster, namespace, prefix="other-").keys() == []


async def test_a_driver_on_the_kubernetes_store_survives_losing_its_disk(
    k8s_cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """In a pod, the filesystem is an emptyDir: ids and secrets must come back from the API."""
    config = tmp_path / "driver.yaml"
    config.write_text(
        f"backends:\n  fs:\n    type: filesystem\n    config: {{root: {tmp_path / 'data'}}}\n"
        f"state:\n  type: kubernetes\n  config: {{namespace: {namespace}, kubeconfig: {k8s_cluster.kubeconfig!s}}}\n"
    )
    from cosi_driver.testing.client import CosiClient

    workdir = tmp_path / "run"
    workdir.mkdir()
    driver = start_driver({"COSI_DRIVER_CONFIG": str(config)}, workdir)
    async with CosiClient(driver.endpoint) as client:
        bucket_id = (await client.create("bucket-k", deletionPolicy="purge")).bucket_id
    assert driver.stop() == 0
    assert not (workdir / "state").exists(), "the file state store must not be used"
    records = json.loads(k8s_cluster.kubectl("get", "secrets", "-n", namespace, "-o", "json").stdout)["items"]
    assert any(
        item["metadata"]["annotations"]["cosi-driver.objectstorage.k8s.io/key"] == "bucket/fs/bucket-k"
        for item in records
    )
    (tmp_path / "data" / "buckets" / "bucket-k" / "object").write_text("data")  # only purge deletes this
    driver = start_driver({"COSI_DRIVER_CONFIG": str(config)}, workdir)
    try:
        async with CosiClient(driver.endpoint) as client:
            await client.delete(bucket_id)  # empty context: the recorded policy (purge) comes from the API
    finally:
        driver.stop()
    assert not (tmp_path / "data" / "buckets" / "bucket-k").exists()
