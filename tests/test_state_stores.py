"""State stores: the file store, and the Kubernetes Secret store against a real kube-apiserver
(the session's cluster from tests/fixtures/k8s.py, shared with the end-to-end suite)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import pytest

from cosi_driver.config.backends import StateConfig
from cosi_driver.config.build import build_store
from cosi_driver.core.credentials import CredentialKit, KeyPair
from cosi_driver.core.errors import Unavailable
from cosi_driver.core.options import ConfigProblem
from cosi_driver.core.ownership import Intent, Ledger
from cosi_driver.core.secret import Secret
from cosi_driver.core.stores import FileStateStore, MemoryStateStore, StateStore
from cosi_driver.core.stores.base import Entry, Version, update
from cosi_driver.core.stores.file import LOCK_PREFIX
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


async def exercise_conditional_writes(first: StateStore, second: StateStore) -> None:
    """What two driver instances on one store rely on; ``first`` and ``second`` share their data."""
    created = await first.create("credentials/s3/u", {"access_key_id": "AK1"})
    assert created.won and created.entry.document == {"access_key_id": "AK1"}
    lost = await second.create("credentials/s3/u", {"access_key_id": "AK2"})
    assert not lost.won and lost.entry.document == {"access_key_id": "AK1"}
    assert await second.read("credentials/s3/u") == created.entry
    # A compare-and-swap succeeds once per version read: the second swap of the same version fails.
    swapped = await second.replace("credentials/s3/u", {"access_key_id": "AK3"}, created.entry.version)
    assert swapped is not None and swapped.version != created.entry.version
    assert await first.replace("credentials/s3/u", {"access_key_id": "AK4"}, created.entry.version) is None
    assert await first.get("credentials/s3/u") == {"access_key_id": "AK3"}
    # A key deleted since the read: the swap fails rather than bringing it back.
    await first.delete("credentials/s3/u")
    assert await second.replace("credentials/s3/u", {"access_key_id": "AK5"}, swapped.version) is None
    assert await second.read("credentials/s3/u") is None
    # Put always lands, over whatever is there.
    await first.put("bucket/fs/b", {"n": 1})
    await second.put("bucket/fs/b", {"n": 2})
    assert await first.get("bucket/fs/b") == {"n": 2}
    await first.delete("bucket/fs/b")


async def increment(store: StateStore, key: str, times: int) -> None:
    """A read-modify-write that loses counts unless every write is a compare-and-swap."""
    for _ in range(times):
        await update(store, key, lambda current: {"count": (current or {"count": 0})["count"] + 1}, attempts=1000)


async def race_creates(pair: tuple[StateStore, StateStore], key: str, writers: int) -> dict[str, Any]:
    """``writers`` creates of one key from both instances at once: one wins, and all get its document."""
    outcomes = await asyncio.gather(*(pair[index % 2].create(key, {"writer": index}) for index in range(writers)))
    winners = [outcome.entry.document for outcome in outcomes if outcome.won]
    assert len(winners) == 1
    assert all(outcome.entry.document == winners[0] for outcome in outcomes)
    return winners[0]


def state_files(directory: Path) -> list[Path]:
    """The documents of a file store (the ``.lock-NN`` files beside them hold nothing)."""
    return sorted(path for path in directory.iterdir() if not path.name.startswith(LOCK_PREFIX))


async def test_file_store_round_trips_and_keeps_files_private(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state")
    await exercise(store)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    for path in (tmp_path / "state").iterdir():  # documents and lock files alike
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # a second instance (a restarted driver) sees the same documents
    assert await FileStateStore(tmp_path / "state").keys() == ["credentials/fs/acct-1"]


@pytest.fixture(params=["memory", "file"])
def shared_pair(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[StateStore, StateStore]:
    """Two instances on one store, as two driver pods (or a restarted one) see it."""
    if request.param == "memory":
        memory = MemoryStateStore()
        return memory, memory
    return FileStateStore(tmp_path / "state"), FileStateStore(tmp_path / "state")


async def test_stores_keep_the_conditional_write_contract(shared_pair: tuple[StateStore, StateStore]) -> None:
    await exercise_conditional_writes(*shared_pair)


async def test_concurrent_creates_have_one_winner_whose_document_everyone_gets(
    shared_pair: tuple[StateStore, StateStore],
) -> None:
    winner = await race_creates(shared_pair, "credentials/s3/u", 16)
    assert await shared_pair[0].get("credentials/s3/u") == winner


async def test_concurrent_read_modify_writes_lose_no_update(shared_pair: tuple[StateStore, StateStore]) -> None:
    await asyncio.gather(*(increment(shared_pair[index % 2], "bucket/fs/counter", 10) for index in range(6)))
    assert await shared_pair[0].get("bucket/fs/counter") == {"count": 60}


WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from cosi_driver.core.stores import FileStateStore
    from tests.test_state_stores import increment

    async def main(directory: str, name: str) -> None:
        store = FileStateStore(Path(directory))
        created = await store.create("credentials/s3/raced", {"writer": name})
        await increment(store, "bucket/fs/counter", 40)
        print(json.dumps({"won": created.won, "stored": created.entry.document}))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def test_two_processes_on_one_directory_have_one_creator_and_lose_no_update(tmp_path: Path) -> None:
    """Two driver processes (or a CLI run next to a driver) on one state volume."""
    root = Path(__file__).resolve().parent.parent
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path / "state"), name],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        for name in ("first", "second")
    ]
    results = [json.loads(worker.communicate(timeout=120)[0]) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0]
    assert sorted(result["won"] for result in results) == [False, True]
    winner = next(result["stored"] for result in results if result["won"])
    assert all(result["stored"] == winner for result in results)
    assert asyncio.run(FileStateStore(tmp_path / "state").get("bucket/fs/counter")) == {"count": 80}


async def test_a_corrupt_state_file_is_unavailable_naming_it(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state")
    await store.put("bucket/fs/a", {"fingerprint": "f"})
    (path,) = state_files(tmp_path / "state")
    path.write_text('{"format": 2, "key": "bucket/fs/a", "docu')  # torn by hand or by a broken disk
    actions: list[Callable[[], Awaitable[Any]]] = [
        lambda: store.get("bucket/fs/a"),
        store.keys,
        lambda: store.create("bucket/fs/a", {}),
        lambda: store.replace("bucket/fs/a", {}, Version("any")),
    ]
    for action in actions:
        with pytest.raises(Unavailable, match=path.name) as raised:
            await action()
        assert "not valid JSON" in str(raised.value)
    await store.put("bucket/fs/a", {"fingerprint": "repaired"})  # a blind write is how to repair it
    assert await store.get("bucket/fs/a") == {"fingerprint": "repaired"}


async def test_a_state_directory_that_went_away_is_unavailable_not_internal(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state")
    (tmp_path / "state").rmdir()  # the volume was unmounted under the driver
    for action in (lambda: store.put("bucket/fs/a", {}), lambda: store.create("bucket/fs/a", {}), store.keys):
        with pytest.raises(Unavailable, match="state directory") as raised:
            await action()
        assert str(tmp_path / "state") in str(raised.value)
        assert raised.value.__cause__ is None


async def test_a_create_never_overwrites_a_file_it_did_not_expect(tmp_path: Path) -> None:
    """A writer that takes no lock left a file under the key's name: create refuses to replace it."""
    store = FileStateStore(tmp_path / "state")
    await store.put("bucket/fs/a", {"fingerprint": "theirs"})
    (path,) = state_files(tmp_path / "state")
    outcome = await FileStateStore(tmp_path / "state").create("bucket/fs/a", {"fingerprint": "ours"})
    assert not outcome.won and outcome.entry.document == {"fingerprint": "theirs"}
    assert json.loads(path.read_text())["document"] == {"fingerprint": "theirs"}


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
    assert state_files(tmp_path / "state") == []


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
    for path in state_files(state):
        wrapped = json.loads(path.read_text())
        documents[wrapped["key"]] = wrapped["document"]
    shutil.rmtree(state)  # an old store had no lock files either
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


@pytest.fixture
def kube_pair(k8s_cluster: Cluster, namespace: str) -> tuple[StateStore, StateStore]:
    """Two store objects on one namespace of the real apiserver, as two driver pods have them."""
    return kubernetes_store(k8s_cluster, namespace), kubernetes_store(k8s_cluster, namespace)


async def test_kubernetes_stores_keep_the_conditional_write_contract_on_the_apiserver(
    kube_pair: tuple[StateStore, StateStore],
) -> None:
    """The apiserver's own 409s: a taken name for the second create, a stale resourceVersion for a swap."""
    await exercise_conditional_writes(*kube_pair)


async def test_kubernetes_stores_racing_on_one_key_have_one_creator_and_lose_no_update(
    kube_pair: tuple[StateStore, StateStore],
) -> None:
    winner = await race_creates(kube_pair, "credentials/s3/raced", 12)
    assert await kube_pair[1].get("credentials/s3/raced") == winner
    # Every writer but the first read a resourceVersion someone else replaced: each retried until it stuck.
    await asyncio.gather(*(increment(kube_pair[index % 2], "bucket/fs/counter", 6) for index in range(4)))
    assert await kube_pair[0].get("bucket/fs/counter") == {"count": 24}


def kubernetes_driver_config(
    path: Path, k8s_cluster: Cluster, namespace: str, backend: dict[str, Any], request_timeout: float = 10
) -> Path:
    """A driver config file: one backend, state in Secrets of ``namespace`` on the kit's apiserver."""
    document = {
        "backends": {"store-test": {"type": backend["type"], "default": True, "config": backend["config"]}},
        "state": {
            "type": "kubernetes",
            "config": {
                "namespace": namespace,
                "kubeconfig": str(k8s_cluster.kubeconfig),
                "request_timeout": request_timeout,
            },
        },
    }
    path.write_text(json.dumps(document))  # JSON is YAML
    return path


async def test_a_paused_apiserver_is_unavailable_within_the_request_timeout_and_calls_recover(
    k8s_cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """A hung apiserver (SIGSTOP: connections accepted, never answered) must not hang the driver."""
    from cosi_driver.testing.client import CosiClient

    store = build_store(
        StateConfig(
            "kubernetes",
            {"namespace": namespace, "kubeconfig": str(k8s_cluster.kubeconfig), "request_timeout": 1},
        )
    )
    await store.put("bucket/fs/before", {"fingerprint": "f"})
    config = kubernetes_driver_config(
        tmp_path / "driver.yaml",
        k8s_cluster,
        namespace,
        {"type": "filesystem", "config": {"root": str(tmp_path / "data")}},
        request_timeout=1,
    )
    workdir = tmp_path / "run"
    workdir.mkdir()
    driver = start_driver({"COSI_DRIVER_CONFIG": str(config), "COSI_DRIVER_OPERATION_TIMEOUT": "5"}, workdir)
    try:
        async with CosiClient(driver.endpoint) as client:
            with k8s_cluster.apiserver_paused():
                started = asyncio.get_running_loop().time()
                with pytest.raises(Unavailable, match="unreachable") as raised:
                    await store.get("bucket/fs/before")
                read_took = asyncio.get_running_loop().time() - started
                with pytest.raises(Unavailable, match="unreachable"):
                    await store.create("credentials/s3/paused", {"secret_access_key": "s3cr3t-value"})
                started = asyncio.get_running_loop().time()
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await asyncio.wait_for(client.create("bucket-paused"), 60)
                create_took = asyncio.get_running_loop().time() - started
            assert repr(namespace) in str(raised.value) and "s3cr3t-value" not in str(raised.value)
            # One request timeout per attempt of the client's few retries, not the sidecar's forever.
            assert read_took < 15, f"the read took {read_took:.1f}s with a 1 s request timeout"
            assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            assert create_took < 30, f"Create took {create_took:.1f}s with a 5 s operation time limit"
            assert "Traceback" not in (refused.value.details() or "")
            # The apiserver is back: the sidecar's retry of the same Create succeeds and is recorded.
            created = await client.create("bucket-paused")
            assert created.bucket_id
            assert await store.get("bucket/store-test/bucket-paused") is not None
            assert await store.get("bucket/fs/before") == {"fingerprint": "f"}
    finally:
        driver.stop()


@pytest.fixture(params=["filesystem", "s3-seaweedfs"])
def lost_disk_backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The backend of the disk-loss test; with s3 a retried Grant would mint (rotate) a key unless the
    stored one comes back from the state store."""
    if request.param == "filesystem":
        return {"type": "filesystem", "config": {"root": str(tmp_path / "data")}}
    server = request.getfixturevalue("seaweedfs")
    return {"type": "s3", "config": server.config}


async def test_a_driver_on_the_kubernetes_store_survives_losing_its_disk(
    k8s_cluster: Cluster, namespace: str, tmp_path: Path, lost_disk_backend: dict[str, Any]
) -> None:
    """A pod deleted and started again: an empty working directory, state only in the API.

    The restarted driver must answer the sidecar's retries as the first one did: Create with the
    same bucket id, Grant with the same account and the same keys (the Secret holds those), and a
    Delete with an empty context must use the deletion policy recorded at Create.
    """
    from cosi_driver.testing.client import CosiClient, s3_secrets

    bucket = f"bucket-{uuid.uuid4().hex[:10]}"
    config = kubernetes_driver_config(tmp_path / "driver.yaml", k8s_cluster, namespace, lost_disk_backend)
    answers = []
    for pod in ("first", "second"):
        workdir = tmp_path / pod  # a new, empty working directory each time: the pod's emptyDir
        workdir.mkdir()
        driver = start_driver({"COSI_DRIVER_CONFIG": str(config)}, workdir)
        try:
            async with CosiClient(driver.endpoint) as client:
                bucket_id = (await client.create(bucket, deletionPolicy="purge")).bucket_id
                granted = await client.grant(bucket_id, f"ba-{bucket}", accessMode="readwrite")
                answers.append((bucket_id, granted.account_id, s3_secrets(granted)))
        finally:
            code = driver.stop()
        assert code == 0, driver.log()[-2000:]
        assert not (workdir / "state").exists(), "the file state store must not be used"
    assert answers[0] == answers[1], "the restarted driver answered the retries differently"

    records = json.loads(k8s_cluster.kubectl("get", "secrets", "-n", namespace, "-o", "json").stdout)["items"]
    keys = {item["metadata"]["annotations"]["cosi-driver.objectstorage.k8s.io/key"] for item in records}
    assert f"bucket/store-test/{bucket}" in keys
    workdir = tmp_path / "third"
    workdir.mkdir()
    driver = start_driver({"COSI_DRIVER_CONFIG": str(config)}, workdir)
    try:
        async with CosiClient(driver.endpoint) as client:
            bucket_id, account_id, _ = answers[0]
            if lost_disk_backend["type"] == "filesystem":  # only purge deletes a bucket with data in it
                (tmp_path / "data" / "buckets" / bucket / "object").write_text("data")
            await client.revoke(bucket_id, account_id)
            await client.delete(bucket_id)  # empty context: the recorded policy (purge) comes from the API
    finally:
        driver.stop()
    if lost_disk_backend["type"] == "filesystem":
        assert not (tmp_path / "data" / "buckets" / bucket).exists()


# ---- callers: stored credentials and intent records on a shared store -------------------------


async def test_two_credential_kits_racing_store_one_key_pair_and_tell_the_loser(
    shared_pair: tuple[StateStore, StateStore],
) -> None:
    """Two driver pods minted a key each for one IAM user: both must return the same one."""
    kits = [CredentialKit(shared_pair[0]), CredentialKit(shared_pair[1])]
    minted = [KeyPair("AKFIRST", Secret("first-secret")), KeyPair("AKSECOND", Secret("second-secret"))]
    outcomes = await asyncio.gather(
        *(kit.remember("s3", "user-1", keys) for kit, keys in zip(kits, minted, strict=True))
    )
    assert sorted(outcome.kept for outcome in outcomes) == [False, True]
    winner = next(outcome.keys for outcome in outcomes if outcome.kept)
    assert all(outcome.keys == winner for outcome in outcomes)
    assert winner in minted
    for kit in kits:
        assert await kit.recall("s3", "user-1") == winner


async def test_dead_stored_keys_are_replaced_once_and_a_fresh_winner_is_never_overwritten(
    shared_pair: tuple[StateStore, StateStore],
) -> None:
    first, second = CredentialKit(shared_pair[0]), CredentialKit(shared_pair[1])
    dead = KeyPair("AKDEAD", Secret("deleted-in-iam"))
    assert (await first.remember("s3", "user-1", dead)).kept
    # Both pods saw the dead key; the first to store a new one wins, the other yields to it.
    fresh = await first.remember("s3", "user-1", KeyPair("AKNEW1", Secret("n1")), replacing=dead)
    late = await second.remember("s3", "user-1", KeyPair("AKNEW2", Secret("n2")), replacing=dead)
    assert fresh.kept and not late.kept
    assert late.keys == fresh.keys == KeyPair("AKNEW1", Secret("n1"))
    # Keys found dead after the record itself was lost: stored as any first keys are.
    await first.forget("s3", "user-1")
    again = await second.remember("s3", "user-1", KeyPair("AKNEW3", Secret("n3")), replacing=fresh.keys)
    assert again.kept and await first.recall("s3", "user-1") == KeyPair("AKNEW3", Secret("n3"))


class InterferingStore(MemoryStateStore):
    """Another writer changes the key just before each of our next ``interfere`` swaps."""

    def __init__(self, interfere: int) -> None:
        super().__init__()
        self.interfere = interfere
        self.swaps = 0

    async def replace(self, key: str, document: dict[str, Any], version: Version) -> Entry | None:
        self.swaps += 1
        if self.interfere:
            self.interfere -= 1
            await self.put(key, {"fingerprint": "someone-else", "params": {}})
        return await super().replace(key, document, version)


async def test_an_intent_record_is_retried_on_a_concurrent_write_never_lost() -> None:
    store = InterferingStore(interfere=3)
    await store.put("bucket/fs/a", {"fingerprint": "old", "params": {}})
    ledger = Ledger(store)
    await ledger.record("fs", "a", Intent("mine", {"deletionPolicy": "purge"}))
    assert await ledger.get("fs", "a") == Intent("mine", {"deletionPolicy": "purge"})
    assert store.swaps == 4


async def test_an_intent_record_that_always_loses_is_unavailable() -> None:
    store = InterferingStore(interfere=1000)
    await store.put("bucket/fs/a", {"fingerprint": "old", "params": {}})
    with pytest.raises(Unavailable, match="bucket/fs/a"):
        await Ledger(store).record("fs", "a", Intent("mine", {}))


async def test_two_ledgers_claiming_one_bucket_agree_on_the_first_intent(
    shared_pair: tuple[StateStore, StateStore],
) -> None:
    ours, theirs = Intent("f-ours", {"deletionPolicy": "retain"}), Intent("f-theirs", {})
    stood = await asyncio.gather(
        Ledger(shared_pair[0]).claim("fs", "b", ours), Ledger(shared_pair[1]).claim("fs", "b", theirs)
    )
    assert stood[0] == stood[1] in (ours, theirs)
    assert await Ledger(shared_pair[0]).get("fs", "b") == stood[0]
    assert await Ledger(shared_pair[1]).claim("fs", "b", stood[0]) == stood[0]  # a retry with the winner: fine
