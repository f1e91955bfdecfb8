"""The Kubernetes Secret state store's own logic, on any machine: no kube-apiserver needed.

The store's round trips against a real apiserver are in tests/test_state_stores.py (the
control-plane tier, which needs programs CI does not have). What the store decides by itself is
checked here everywhere: how a key becomes a Secret name, what the Secret carries, that a second
write replaces the first after a 409, that a missing Secret is no error, which Secrets count as
its keys, how two writers race (first create wins, a stale resourceVersion loses, a Secret deleted
mid-write is written again), and how API failures reach the driver. The stand-in answers the five
CoreV1Api calls the store makes the way the apiserver does (409 for a name taken or a stale
resourceVersion, 404 for a name absent, a new resourceVersion on every write, label selection on
list) and records each call; a test can script a failure, or another writer's move, for the next
call of a method.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3 import HTTPConnectionPool
from urllib3.connection import HTTPConnection
from urllib3.exceptions import MaxRetryError, NewConnectionError

from cosi_driver.config.backends import StateConfig
from cosi_driver.config.build import build_store
from cosi_driver.core.errors import Unavailable
from cosi_driver.core.options import ConfigProblem
from cosi_driver.core.stores.base import ATTEMPTS, Version
from cosi_driver.core.stores.kubernetes import KEY_ANNOTATION, LABEL_SELECTOR, KubernetesSecretStore
from tests.support import free_port_block
from tests.test_state_stores import exercise, exercise_conditional_writes

NAMESPACE = "cosi-driver"
# A DNS-1123 subdomain, what the apiserver accepts as a Secret's name.
SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass
class Call:
    method: str
    namespace: str
    name: str | None = None
    label_selector: str | None = None
    timeout: Any = None
    resource_version: str | None = None


@dataclass
class ScriptedCoreV1:
    """Stands in for the CoreV1Api Secret calls of the store, for one namespace.

    The store calls it from worker threads, so each call holds a lock, as the apiserver
    serialises writes to one object.
    """

    secrets: dict[str, client.V1Secret] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    scripted: dict[str, list[BaseException | Callable[[], None]]] = field(default_factory=dict)
    versions: Any = field(default_factory=lambda: itertools.count(100))
    lock: Any = field(default_factory=threading.RLock)

    def fail_next(self, method: str, *errors: BaseException) -> None:
        self.scripted.setdefault(method, []).extend(errors)

    def before_next(self, method: str, move: Callable[[], None]) -> None:
        """Let another writer act just before the next call of ``method`` is served."""
        self.scripted.setdefault(method, []).append(move)

    def _enter(self, call: Call) -> None:
        assert call.namespace == NAMESPACE, f"{call.method} went to namespace {call.namespace!r}"
        assert call.timeout is not None, f"{call.method} was sent without a request timeout"
        self.calls.append(call)
        pending = self.scripted.get(call.method)
        if pending:
            step = pending.pop(0)
            if isinstance(step, BaseException):
                raise step
            step()

    def _absent(self, name: str) -> ApiException:
        return ApiException(status=404, reason=f"Not Found: secrets {name!r}")

    def _stored(self, body: client.V1Secret) -> client.V1Secret:
        kept = copy.deepcopy(body)
        kept.metadata.resource_version = str(next(self.versions))
        self.secrets[kept.metadata.name] = kept
        return copy.deepcopy(kept)

    def read_namespaced_secret(self, name: str, namespace: str, _request_timeout: Any = None) -> client.V1Secret:
        with self.lock:
            self._enter(Call("read", namespace, name, timeout=_request_timeout))
            if name not in self.secrets:
                raise self._absent(name)
            return copy.deepcopy(self.secrets[name])

    def create_namespaced_secret(
        self, namespace: str, body: client.V1Secret, _request_timeout: Any = None
    ) -> client.V1Secret:
        with self.lock:
            name = body.metadata.name
            self._enter(Call("create", namespace, name, timeout=_request_timeout))
            if name in self.secrets:
                raise ApiException(status=409, reason=f"Conflict: secrets {name!r} already exists")
            return self._stored(body)

    def replace_namespaced_secret(
        self, name: str, namespace: str, body: client.V1Secret, _request_timeout: Any = None
    ) -> client.V1Secret:
        with self.lock:
            wanted = body.metadata.resource_version
            self._enter(Call("replace", namespace, name, timeout=_request_timeout, resource_version=wanted))
            assert body.metadata.name == name, "the body must name the Secret it replaces"
            if name not in self.secrets:
                raise self._absent(name)
            if wanted is not None and wanted != self.secrets[name].metadata.resource_version:
                raise ApiException(status=409, reason="Conflict: the object has been modified")
            return self._stored(body)

    def delete_namespaced_secret(self, name: str, namespace: str, _request_timeout: Any = None) -> client.V1Status:
        with self.lock:
            self._enter(Call("delete", namespace, name, timeout=_request_timeout))
            if self.secrets.pop(name, None) is None:
                raise self._absent(name)
            return client.V1Status(status="Success")

    def list_namespaced_secret(
        self, namespace: str, label_selector: str = "", _request_timeout: Any = None
    ) -> client.V1SecretList:
        with self.lock:
            self._enter(Call("list", namespace, label_selector=label_selector, timeout=_request_timeout))
            wanted = dict(term.split("=", 1) for term in label_selector.split(",") if term)
            items = [
                copy.deepcopy(secret)
                for secret in self.secrets.values()
                if all((secret.metadata.labels or {}).get(label) == value for label, value in wanted.items())
            ]
            return client.V1SecretList(items=items)

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]


@pytest.fixture
def api() -> ScriptedCoreV1:
    return ScriptedCoreV1()


def store(api: ScriptedCoreV1, prefix: str = "cosi-driver-state-") -> KubernetesSecretStore:
    return KubernetesSecretStore(api, NAMESPACE, prefix)


def document_of(secret: client.V1Secret) -> Any:
    return json.loads(base64.b64decode(secret.data["document"]))


def foreign_secret(name: str, labels: dict[str, str] | None, data: dict[str, str] | None, key: str = "") -> Any:
    annotations = {KEY_ANNOTATION: key} if key else None
    return client.V1Secret(metadata=client.V1ObjectMeta(name=name, labels=labels, annotations=annotations), data=data)


OUR_LABELS = {"app.kubernetes.io/managed-by": "cosi-driver", "app.kubernetes.io/component": "state"}


async def test_it_keeps_the_contract_the_driver_relies_on(api: ScriptedCoreV1) -> None:
    await exercise(store(api))
    # A second instance (the restarted pod) reads what the first wrote.
    assert await store(api).get("credentials/fs/acct-1") == {"access_key_id": "AK", "secret_access_key": "s3cr3t"}


async def test_each_document_is_a_labelled_opaque_secret_named_after_its_key(api: ScriptedCoreV1) -> None:
    document = {"fingerprint": "f1", "params": {"deletionPolicy": "purge"}, "note": "bücket"}
    await store(api).put("bucket/fs/a", document)
    # The name is persistent state: a driver upgrade must find the Secrets an older version wrote,
    # so it is pinned here (the default prefix and the first 40 hex digits of the key's SHA-256).
    (name,) = api.secrets
    assert name == "cosi-driver-state-e542f670d3ed02d11a2440414b2689c1d429e86c"
    secret = api.secrets[name]
    assert secret.type == "Opaque"
    assert secret.metadata.labels == OUR_LABELS
    assert secret.metadata.annotations == {KEY_ANNOTATION: "bucket/fs/a"}
    assert list(secret.data) == ["document"]
    assert document_of(secret) == document
    assert api.methods() == ["create"]


@pytest.mark.parametrize(
    "key",
    ["bucket/fs/a", "Bucket/FS/UPPER_case", "credentials/s3/" + "x" * 400, "bucket/fs/ünïcödé name", ""],
)
def test_any_key_gives_a_name_the_apiserver_accepts(api: ScriptedCoreV1, key: str) -> None:
    name = store(api)._name(key)
    assert SECRET_NAME.match(name), name
    assert len(name) <= 253
    assert name.startswith("cosi-driver-state-")


def test_different_keys_and_prefixes_give_different_names(api: ScriptedCoreV1) -> None:
    keys = ["bucket/fs/a", "bucket/fs/b", "bucket/fs/a ", "credentials/fs/a"]
    assert len({store(api)._name(key) for key in keys}) == len(keys)
    assert store(api, "mydriver-")._name("bucket/fs/a").startswith("mydriver-")
    assert store(api, "mydriver-")._name("bucket/fs/a") != store(api)._name("bucket/fs/a")


async def test_a_second_write_replaces_the_secret_after_the_conflict(api: ScriptedCoreV1) -> None:
    kept = store(api)
    await kept.put("bucket/fs/a", {"fingerprint": "f1"})
    await kept.put("bucket/fs/a", {"fingerprint": "f2"})
    # The 409 sends the store to read the Secret's resourceVersion, which the replace carries.
    assert api.methods() == ["create", "create", "read", "replace"]
    assert api.calls[1].name == api.calls[2].name == api.calls[3].name == kept._name("bucket/fs/a")
    assert api.calls[3].resource_version == "100"
    (secret,) = api.secrets.values()
    assert document_of(secret) == {"fingerprint": "f2"}
    assert secret.metadata.annotations == {KEY_ANNOTATION: "bucket/fs/a"}


async def test_a_secret_written_by_another_instance_is_replaced_not_duplicated(api: ScriptedCoreV1) -> None:
    await store(api).put("credentials/fs/acct-1", {"secret_access_key": "old"})
    api.calls.clear()
    await store(api).put("credentials/fs/acct-1", {"secret_access_key": "new"})
    assert api.methods() == ["create", "read", "replace"]
    assert await store(api).get("credentials/fs/acct-1") == {"secret_access_key": "new"}
    assert len(api.secrets) == 1


async def test_deleting_or_reading_a_missing_key_is_not_an_error(api: ScriptedCoreV1) -> None:
    kept = store(api)
    await kept.delete("bucket/fs/never-written")
    assert await kept.get("bucket/fs/never-written") is None
    assert api.methods() == ["delete", "read"]
    await kept.put("bucket/fs/a", {"fingerprint": "f"})
    await kept.delete("bucket/fs/a")
    await kept.delete("bucket/fs/a")  # the second time the apiserver answers 404
    assert api.secrets == {}


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {"other": base64.b64encode(b"{}").decode()},
        {"document": base64.b64encode(b'["a", "list"]').decode()},
    ],
    ids=["no-data", "empty-data", "no-document-key", "not-an-object"],
)
async def test_a_secret_without_a_document_object_reads_as_absent(
    api: ScriptedCoreV1, data: dict[str, str] | None
) -> None:
    kept = store(api)
    name = kept._name("bucket/fs/a")
    api.secrets[name] = foreign_secret(name, OUR_LABELS, data, key="bucket/fs/a")
    assert await kept.get("bucket/fs/a") is None


async def test_keys_are_this_stores_own_sorted_and_filtered_by_prefix(api: ScriptedCoreV1) -> None:
    mine, theirs = store(api, "mydriver-"), store(api, "other-")
    for key in ("credentials/fs/acct-1", "bucket/fs/b", "bucket/fs/a"):
        await mine.put(key, {"k": key})
    await theirs.put("bucket/fs/c", {"k": "c"})
    # Same prefix and labels but no key annotation (made by hand): not a key.
    api.secrets["mydriver-by-hand"] = foreign_secret("mydriver-by-hand", OUR_LABELS, {})
    # Our prefix and key annotation but not our labels: the label selector leaves it out.
    api.secrets["mydriver-unlabelled"] = foreign_secret("mydriver-unlabelled", None, {}, key="bucket/fs/z")
    api.calls.clear()

    assert await mine.keys() == ["bucket/fs/a", "bucket/fs/b", "credentials/fs/acct-1"]
    assert await mine.keys("bucket/") == ["bucket/fs/a", "bucket/fs/b"]
    assert await mine.keys("nothing/") == []
    assert await theirs.keys() == ["bucket/fs/c"]
    assert {call.label_selector for call in api.calls} == {LABEL_SELECTOR}
    assert LABEL_SELECTOR == "app.kubernetes.io/managed-by=cosi-driver,app.kubernetes.io/component=state"


async def test_an_empty_namespace_has_no_keys(api: ScriptedCoreV1) -> None:
    assert await store(api).keys() == []


@pytest.mark.parametrize(
    ("method", "action"),
    [
        ("read", lambda s: s.get("credentials/fs/acct-1")),
        ("create", lambda s: s.put("credentials/fs/acct-1", {"secret_access_key": "s3cr3t-value"})),
        ("delete", lambda s: s.delete("credentials/fs/acct-1")),
        ("list", lambda s: s.keys()),
    ],
)
@pytest.mark.parametrize(("status", "reason"), [(403, "Forbidden"), (500, "Internal Server Error"), (422, "Invalid")])
async def test_api_refusals_become_unavailable_naming_status_and_namespace(
    api: ScriptedCoreV1, method: str, action: Any, status: int, reason: str
) -> None:
    api.fail_next(method, ApiException(status=status, reason=reason))
    with pytest.raises(Unavailable) as raised:
        await action(store(api))
    message = str(raised.value)
    assert f"{status} {reason}" in message
    assert repr(NAMESPACE) in message
    assert "s3cr3t-value" not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


async def test_a_refused_replace_after_the_conflict_is_unavailable(api: ScriptedCoreV1) -> None:
    await store(api).put("bucket/fs/a", {"fingerprint": "f1"})
    api.fail_next("replace", ApiException(status=403, reason="Forbidden"))
    with pytest.raises(Unavailable, match="403 Forbidden"):
        await store(api).put("bucket/fs/a", {"fingerprint": "f2"})
    assert document_of(next(iter(api.secrets.values()))) == {"fingerprint": "f1"}


async def test_a_connection_error_becomes_unavailable(api: ScriptedCoreV1) -> None:
    api.fail_next("read", ConnectionRefusedError(111, "Connection refused"))
    with pytest.raises(Unavailable, match="unreachable"):
        await store(api).get("bucket/fs/a")


async def test_an_unreachable_apiserver_is_unavailable(tmp_path: Path) -> None:
    """The real client against a port where nothing listens (nothing is started)."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{free_port_block()}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    settings = {"namespace": NAMESPACE, "kubeconfig": str(kubeconfig), "request_timeout": 2}
    real = build_store(StateConfig("kubernetes", settings))
    with pytest.raises(Unavailable, match="unreachable") as raised:
        await real.get("bucket/fs/a")
    assert "MaxRetryError" in str(raised.value) and repr(NAMESPACE) in str(raised.value)


# ---- two writers: what keeps a second driver pod from losing or clobbering a write ------------


async def test_it_keeps_the_conditional_write_contract(api: ScriptedCoreV1) -> None:
    await exercise_conditional_writes(store(api), store(api))


async def test_every_call_carries_the_configured_request_timeout(api: ScriptedCoreV1) -> None:
    kept = KubernetesSecretStore(api, NAMESPACE, "cosi-driver-state-", request_timeout=3.5)
    await kept.put("bucket/fs/a", {"fingerprint": "f1"})
    await kept.put("bucket/fs/a", {"fingerprint": "f2"})
    await kept.get("bucket/fs/a")
    await kept.keys()
    await kept.delete("bucket/fs/a")
    assert set(api.methods()) == {"create", "read", "replace", "list", "delete"}
    assert {call.timeout for call in api.calls} == {3.5}


async def test_a_replace_with_a_stale_resource_version_is_refused_and_changes_nothing(api: ScriptedCoreV1) -> None:
    first, second = store(api), store(api)
    await first.put("bucket/fs/a", {"fingerprint": "f1"})
    seen = await first.read("bucket/fs/a")
    assert seen is not None
    await second.put("bucket/fs/a", {"fingerprint": "f2"})  # another pod writes in between
    assert await first.replace("bucket/fs/a", {"fingerprint": "f3"}, seen.version) is None
    assert api.calls[-1].method == "replace" and api.calls[-1].resource_version == seen.version
    assert await first.get("bucket/fs/a") == {"fingerprint": "f2"}


async def test_the_second_creator_gets_the_first_ones_document_and_writes_nothing(api: ScriptedCoreV1) -> None:
    first, second = store(api), store(api)
    won = await first.create("credentials/s3/user-1", {"access_key_id": "AK1", "secret_access_key": "one"})
    api.calls.clear()
    lost = await second.create("credentials/s3/user-1", {"access_key_id": "AK2", "secret_access_key": "two"})
    assert won.won and not lost.won
    assert lost.entry == won.entry
    assert api.methods() == ["create", "read"]
    assert document_of(next(iter(api.secrets.values())))["access_key_id"] == "AK1"


async def test_concurrent_creates_from_many_tasks_have_exactly_one_winner(api: ScriptedCoreV1) -> None:
    stores = [store(api) for _ in range(8)]
    outcomes = await asyncio.gather(*(s.create("bucket/fs/raced", {"writer": index}) for index, s in enumerate(stores)))
    winners = [outcome for outcome in outcomes if outcome.won]
    assert len(winners) == 1
    assert {outcome.entry.document["writer"] for outcome in outcomes} == {winners[0].entry.document["writer"]}
    assert document_of(next(iter(api.secrets.values()))) == winners[0].entry.document


async def test_a_secret_deleted_between_the_conflict_and_the_read_is_created_again(api: ScriptedCoreV1) -> None:
    kept = store(api)
    await kept.put("bucket/fs/a", {"fingerprint": "f1"})
    api.before_next("read", api.secrets.clear)  # another pod deletes it after our 409
    await kept.put("bucket/fs/a", {"fingerprint": "f2"})
    assert await kept.get("bucket/fs/a") == {"fingerprint": "f2"}
    assert api.methods()[1:] == ["create", "read", "create", "read"]


async def test_a_secret_deleted_between_the_read_and_the_replace_is_written_not_lost(api: ScriptedCoreV1) -> None:
    kept = store(api)
    await kept.put("bucket/fs/a", {"fingerprint": "f1"})
    api.before_next("replace", api.secrets.clear)  # the replace now finds nothing: 404
    await kept.put("bucket/fs/a", {"fingerprint": "f2"})
    assert await kept.get("bucket/fs/a") == {"fingerprint": "f2"}, "the write was silently dropped"


async def test_a_write_that_always_loses_is_unavailable_after_bounded_attempts(api: ScriptedCoreV1) -> None:
    kept = store(api)
    await kept.put("credentials/s3/user-1", {"secret_access_key": "s3cr3t-value"})
    conflict = ApiException(status=409, reason="Conflict: the object has been modified")
    api.fail_next("replace", *[conflict] * (ATTEMPTS + 5))
    api.calls.clear()
    with pytest.raises(Unavailable, match="kept changing") as raised:
        await kept.put("credentials/s3/user-1", {"secret_access_key": "n3w-s3cr3t"})
    assert "s3cr3t" not in str(raised.value)
    assert api.methods().count("replace") <= ATTEMPTS


async def test_a_secret_with_no_document_is_taken_over_by_a_create(api: ScriptedCoreV1) -> None:
    kept = store(api)
    name = kept._name("bucket/fs/a")
    api.secrets[name] = foreign_secret(name, OUR_LABELS, {}, key="bucket/fs/a")
    api.secrets[name].metadata.resource_version = "7"
    created = await kept.create("bucket/fs/a", {"fingerprint": "f1"})
    assert created.won
    assert document_of(api.secrets[name]) == {"fingerprint": "f1"}


async def test_a_secret_holding_garbage_is_unavailable_not_internal(api: ScriptedCoreV1) -> None:
    kept = store(api)
    name = kept._name("bucket/fs/a")
    api.secrets[name] = foreign_secret(name, OUR_LABELS, {"document": "not base64 at all!"}, key="bucket/fs/a")
    with pytest.raises(Unavailable, match=name):
        await kept.get("bucket/fs/a")


async def test_a_replace_without_a_version_is_never_sent(api: ScriptedCoreV1) -> None:
    kept = store(api)
    await kept.put("bucket/fs/a", {"fingerprint": "f1"})
    api.calls.clear()
    assert await kept.replace("bucket/fs/a", {"fingerprint": "f2"}, Version("")) is None
    assert api.methods() == []


async def test_retries_exhausted_in_the_client_become_unavailable(api: ScriptedCoreV1) -> None:
    pool = HTTPConnectionPool("127.0.0.1", 1)
    reason = NewConnectionError(
        HTTPConnection("127.0.0.1", 1), "Failed to establish a new connection: [Errno 111] Connection refused"
    )
    api.fail_next("create", MaxRetryError(pool, "/api/v1/namespaces/cosi-driver/secrets", reason))
    with pytest.raises(Unavailable, match=r"unreachable.*MaxRetryError") as raised:
        await store(api).put("credentials/s3/user-1", {"secret_access_key": "s3cr3t-value"})
    assert "s3cr3t-value" not in str(raised.value)


@pytest.mark.parametrize(
    "prefix", ["Cosi-", "-cosi", "cosi_state-", "cosi..", "cosi.-", "x" * 214, "cösi-"], ids=str.__repr__
)
def test_a_prefix_the_apiserver_would_refuse_stops_the_start(api: ScriptedCoreV1, prefix: str) -> None:
    with pytest.raises(ConfigProblem, match=r"state\.config\.name_prefix"):
        store(api, prefix)
    with pytest.raises(ConfigProblem, match=r"state\.config\.name_prefix"):
        build_store(StateConfig("kubernetes", {"namespace": NAMESPACE, "name_prefix": prefix}))
    assert api.calls == [], "refused before any call"


@pytest.mark.parametrize("prefix", ["cosi-driver-state-", "a", "my.driver.", "x" * 213, ""])
def test_prefixes_that_make_valid_names_are_accepted(api: ScriptedCoreV1, prefix: str) -> None:
    assert SECRET_NAME.match(store(api, prefix)._name("bucket/fs/a"))
