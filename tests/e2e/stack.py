"""One backend profile end to end: our driver process, the upstream sidecar on its socket, the cluster.

Each profile's driver runs under its own name (``<profile>.e2e.cosi-driver.example.com``), so the
sidecar of one profile never acts on the objects another profile's scenarios left behind.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosi_driver.core import ids
from tests.backend_profiles import BackendProfile, Credentials, Grant
from tests.e2e import waits
from tests.e2e.kube import Cluster
from tests.e2e.manifests import Document, Walkthrough
from tests.support import DriverProcess, start_driver


def driver_name(profile: BackendProfile) -> str:
    return f"{profile.name}.e2e.cosi-driver.example.com"


@dataclass
class Stack:
    cluster: Cluster
    profile: BackendProfile
    workdir: Path
    driver: DriverProcess
    env: dict[str, str]
    race: waits.RaceLog = field(default_factory=waits.RaceLog)
    #: What the scenarios observed that the session summary should show (not asserted).
    notes: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, cluster: Cluster, profile: BackendProfile, workdir: Path, **extra_env: str) -> Stack:
        """Start ``cosi-driver serve`` for the profile, then point the kit's controller and sidecar at it."""
        workdir.mkdir(parents=True, exist_ok=True)
        env = {**profile.driver_env(), "COSI_DRIVER_NAME": driver_name(profile), **extra_env}
        driver = start_driver(env, workdir)
        try:
            cluster.start_cosi(driver.socket_path)
        except BaseException:
            driver.stop()
            raise
        if cluster.driver_name != env["COSI_DRIVER_NAME"]:
            driver.stop()
            raise RuntimeError(f"the sidecar connected to {cluster.driver_name!r}, not to our driver")
        return cls(cluster=cluster, profile=profile, workdir=workdir, driver=driver, env=env)

    def kill_driver(self) -> None:
        """SIGKILL: no shutdown, no cleanup, in-flight calls cut off."""
        self.driver.stop(signal.SIGKILL)

    def restart_driver(self) -> None:
        """Start the driver again with the same settings, state and socket (its log is appended)."""
        self.driver = start_driver(self.env, self.workdir)

    def stop(self) -> None:
        self.driver.stop()
        self.profile.close()

    @property
    def sidecar_pid(self) -> int:
        return int(self.cluster.cosi["COSI_K8S_SIDECAR_PID"])

    def rpcs(self, rpc: str) -> list[dict[str, Any]]:
        """The driver's log records of one RPC (our JSON log: one record per call, with its ids and code)."""
        records = []
        for line in self.driver.log().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == "rpc" and record.get("rpc") == rpc:
                    records.append(record)
        return records

    def scenario(self, name: str) -> Scenario:
        """A fresh namespace, and the examples renamed for it."""
        namespace = f"{name}-{self.profile.name}"[:63].rstrip("-")
        self.cluster.create_namespace(namespace)
        walkthrough = Walkthrough(
            prefix=namespace,
            namespace=namespace,
            driver_name=driver_name(self.profile),
            parameters=self.profile.bucket_class_parameters(),
        )
        return Scenario(self, namespace, walkthrough)


@dataclass
class Scenario:
    stack: Stack
    namespace: str
    examples: Walkthrough

    @property
    def cluster(self) -> Cluster:
        return self.stack.cluster

    @property
    def profile(self) -> BackendProfile:
        return self.stack.profile

    def apply(self, *documents: Document) -> None:
        self.cluster.apply(documents)

    def claims_ready(self, names: Collection[str], timeout: float = 90) -> dict[str, str]:
        return waits.claims_ready(self.cluster, self.namespace, names, self.stack.race, timeout)

    def accesses_granted(self, names: Collection[str], timeout: float = 90) -> dict[str, str]:
        return waits.accesses_granted(self.cluster, self.namespace, names, self.stack.race, timeout)

    def bucket(self, name: str) -> Any:
        return self.cluster.get("bucket", name)

    def storage_bucket(self, bucket_name: str) -> str:
        """The bucket's name in storage, from the bucket_id our driver returned."""
        return ids.parse_bucket_id(self.bucket(bucket_name)["status"]["bucketID"]).bucket

    def credentials(self, secret: str) -> Credentials:
        return Credentials.from_secret(self.cluster.get("secret", secret, self.namespace))

    def grant(self, access: Document, bucket_name: str, mode: str, account_id: str) -> Grant:
        return Grant(
            bucket=self.storage_bucket(bucket_name),
            account=ids.parse_account_id(account_id).account,
            mode=mode,
            credentials=self.credentials(access["spec"]["credentialsSecretName"]),
        )

    def grants(self, accesses: Mapping[str, Document], buckets: Mapping[str, str], mode: str) -> list[Grant]:
        """Every access's Grant, from one read of the namespace's objects (for bursts)."""
        status = self.cluster.items("bucketaccesses", self.namespace)
        secrets = self.cluster.items("secrets", self.namespace)
        bucket_ids = {
            name: (item.get("status") or {}).get("bucketID", "") for name, item in self.cluster.items("buckets").items()
        }
        result = []
        for name, access in accesses.items():
            claim = access["spec"]["bucketClaimName"]
            result.append(
                Grant(
                    bucket=ids.parse_bucket_id(bucket_ids[buckets[claim]]).bucket,
                    account=ids.parse_account_id(status[name]["status"]["accountID"]).account,
                    mode=mode,
                    credentials=Credentials.from_secret(secrets[access["spec"]["credentialsSecretName"]]),
                )
            )
        return result
