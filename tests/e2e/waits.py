"""Waiting on COSI objects with deadlines, and the workaround for the upstream claim race.

The v0.2.2 controller can leave a BucketClaim at ``bucketReady: false`` for good while its Bucket
is ready (kubernetes-retired/container-object-storage-interface-api#101; ``../shared/k8s/README.md``
"The claim race"). That is never the driver's doing, so, as the kit's README prescribes, a claim
whose Bucket has been ready for a grace period while the claim is not gets the status the sidecar
had written, and the hit is counted and reported as a pass with a workaround. Everything the
driver is responsible for (the Bucket becoming ready, the access being granted) is still waited
for and must happen.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from tests.e2e.kube import Cluster

#: How long a ready Bucket may wait for its claim before the race is assumed (the kit uses 5 s).
RACE_GRACE = 5.0
#: The controller's finalizer on a claim: the last thing the controller writes to it. Until it is
#: there the (throttled) controller is still at work, and its stale retry would undo a patch.
CLAIM_FINALIZER = "cosi.objectstorage.k8s.io/bucketclaim-protection"
POLL = 0.25


@dataclass
class RaceLog:
    """The claim-race workaround, and how often it was needed over the claims waited for."""

    claims: int = 0
    #: The claims patched (each once, however often).
    hits: set[str] = field(default_factory=set)
    #: Claims that had been seen ready and fell back to not ready: the race's unmistakable signature.
    fell_back: set[str] = field(default_factory=set)
    patches: int = 0
    _stuck_since: dict[tuple[str, str], float] = field(default_factory=dict)
    _seen_ready: set[tuple[str, str]] = field(default_factory=set)

    def summary(self) -> str:
        return (
            f"claim race workaround applied to {len(self.hits)} of {self.claims} claims "
            f"({len(self.fell_back)} seen ready before falling back; {self.patches} patches, "
            f"each {RACE_GRACE:g} s after the controller's last write)"
        )

    def ready(
        self, cluster: Cluster, namespace: str, names: Collection[str], claims: dict[str, Any], buckets: dict[str, Any]
    ) -> dict[str, str]:
        """Of ``names``, the claims whose Bucket the driver has made ready: claim name -> Bucket name.

        A claim that stays not ready for the grace period while its Bucket is ready and the
        controller has finished with it (its finalizer is on) is in the race (it can also fall back
        to not ready after being seen ready): its status is set to what the sidecar had written, and
        the hit is counted.
        """
        now = time.monotonic()
        done: dict[str, str] = {}
        for name in names:
            claim = claims.get(name) or {}
            status = claim.get("status") or {}
            bucket_name = str(status.get("bucketName") or "")
            bucket_status = (buckets.get(bucket_name) or {}).get("status") or {}
            if not bucket_name or bucket_status.get("bucketReady") is not True or not bucket_status.get("bucketID"):
                continue  # the driver's part is not done yet (the sidecar may write the claim first)
            key = (namespace, name)
            if status.get("bucketReady") is True:
                self._stuck_since.pop(key, None)
                self._seen_ready.add(key)
                done[name] = bucket_name
            elif CLAIM_FINALIZER not in (claim.get("metadata") or {}).get("finalizers", []):
                self._stuck_since.pop(key, None)  # the controller is not done with it yet
            elif now - self._stuck_since.setdefault(key, now) >= RACE_GRACE:
                cluster.kubectl(
                    "patch", "bucketclaim", name, "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", '{"status":{"bucketReady":true}}',
                )  # fmt: skip
                self.patches += 1
                self.hits.add(f"{namespace}/{name}")
                if key in self._seen_ready:
                    self.fell_back.add(f"{namespace}/{name}")
                self._stuck_since.pop(key, None)
                done[name] = bucket_name
        return done


def _poll(what: str, timeout: float, check: Any) -> Any:
    """Call ``check()`` until it returns something other than None, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(POLL)


def claims_ready(
    cluster: Cluster, namespace: str, names: Collection[str], race: RaceLog, timeout: float = 90
) -> dict[str, str]:
    """Wait until every claim is bound to a Bucket the driver made ready; return claim -> Bucket.

    Polls the claims and then their Buckets (never the claims alone), with the race workaround.
    """
    race.claims += len(names)
    done: dict[str, str] = {}

    def check() -> dict[str, str] | None:
        claims, buckets = cluster.items("bucketclaims", namespace), cluster.items("buckets")
        done.update(race.ready(cluster, namespace, set(names) - set(done), claims, buckets))
        return done if len(done) == len(names) else None

    try:
        return dict(_poll(f"{len(names)} BucketClaims in {namespace} to be ready", timeout, check))
    except TimeoutError as error:
        raise TimeoutError(f"{error}; {describe(cluster, namespace, set(names) - set(done))}") from None


def accesses_granted(
    cluster: Cluster, namespace: str, names: Collection[str], race: RaceLog, timeout: float = 90
) -> dict[str, str]:
    """Wait until every BucketAccess is granted; return its name -> accountID.

    The sidecar grants an access only once its claim is ready, and the claim race can set a claim
    back to not ready after it was seen ready, so the claims are tended here too.
    """

    def check() -> dict[str, str] | None:
        accesses = cluster.items("bucketaccesses", namespace)
        granted = {
            name: accesses[name]["status"]["accountID"]
            for name in names
            if ((accesses.get(name) or {}).get("status") or {}).get("accessGranted") is True
        }
        if len(granted) == len(names):
            return granted
        waiting = {accesses[n]["spec"]["bucketClaimName"] for n in names if n in accesses and n not in granted}
        race.ready(cluster, namespace, waiting, cluster.items("bucketclaims", namespace), cluster.items("buckets"))
        return None

    try:
        return dict(_poll(f"{len(names)} BucketAccesses in {namespace} to be granted", timeout, check))
    except TimeoutError as error:
        events = [f"{e['involvedObject']['name']}: {e['message']}" for e in cluster.events(namespace)[-5:]]
        raise TimeoutError(f"{error}; last events in {namespace}: {events}") from None


def bucket_events(cluster: Cluster, bucket: str) -> list[dict[str, Any]]:
    """The Events about a Bucket (the sidecar posts them in ``default``)."""
    return cluster.events("default", involved=bucket)


def occurrences(events: list[dict[str, Any]], needle: str | tuple[str, ...]) -> int:
    """How many times Events with ``needle`` (or any of several) in their message were posted
    (repeats raise ``count``)."""
    needles = (needle,) if isinstance(needle, str) else needle
    return sum(event.get("count") or 1 for event in events if any(n in event["message"] for n in needles))


def until_events(
    cluster: Cluster,
    buckets: Collection[str],
    needle: str | tuple[str, ...],
    at_least: int = 1,
    timeout: float = 60,
) -> dict[str, list[dict[str, Any]]]:
    """Wait until every Bucket has had ``at_least`` Events containing ``needle``; return each one's Events."""

    def check() -> dict[str, list[dict[str, Any]]] | None:
        seen = {bucket: bucket_events(cluster, bucket) for bucket in buckets}
        return seen if all(occurrences(events, needle) >= at_least for events in seen.values()) else None

    return dict(_poll(f"{at_least} Event(s) containing {needle!r} on {len(buckets)} Buckets", timeout, check))


def bucket_names(cluster: Cluster, namespace: str, claims: Collection[str], timeout: float = 60) -> dict[str, str]:
    """Wait until the controller has bound every claim to a Bucket (ready or not); claim -> Bucket."""

    def check() -> dict[str, str] | None:
        items = cluster.items("bucketclaims", namespace)
        names = {c: str(((items.get(c) or {}).get("status") or {}).get("bucketName") or "") for c in claims}
        return names if all(names.values()) else None

    return dict(_poll(f"Buckets for {len(claims)} claims in {namespace}", timeout, check))


def describe(cluster: Cluster, namespace: str, claims: Collection[str]) -> str:
    """Claim and Bucket status plus the Bucket's last Events, for a timeout message."""
    items = cluster.items("bucketclaims", namespace)
    parts = []
    for name in sorted(claims)[:5]:
        status = (items.get(name) or {}).get("status") or {}
        bucket = status.get("bucketName")
        line = f"{name}: claim status {status}"
        if bucket:
            bucket_status = (cluster.get("bucket", bucket) or {}).get("status")
            messages = [event["message"] for event in bucket_events(cluster, bucket)[-3:]]
            line += f", Bucket {bucket} status {bucket_status}, events {messages}"
        parts.append(line)
    return "; ".join(parts)
