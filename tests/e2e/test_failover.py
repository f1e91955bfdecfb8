"""Two replicas on the real control plane: the leader's pod dies mid-burst and the standby finishes.

Replica A is the kit's sidecar on driver A, replica B a second sidecar of the same program on
driver B (tests/e2e/replicas.py). Both drivers keep their state only in Kubernetes (Secrets in a
namespace of the test's own; no state directory) and share one storage. A burst of claims with
accesses is applied, the Lease holder's driver and sidecar are SIGKILLed once some of it is in
storage, and the standby takes the Lease over (the v0.2.2 timings make that minutes, not seconds;
the measured time goes into the session summary). Then every claim and access must be done once:
one bucket per claim and one account per access in storage, every Secret's keys working, and the
surviving replica deletes all of it again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml

from tests.e2e.kube import Cluster
from tests.e2e.manifests import Walkthrough
from tests.e2e.profiles import PROFILES
from tests.e2e.replicas import (
    TAKEOVER_BOUND,
    Replica,
    ReplicaProblem,
    Sidecar,
    driver_config,
    leader_of,
    lease_holder,
    lease_name,
    leases,
    wait_for_takeover,
)
from tests.e2e.stack import Scenario, Stack
from tests.e2e.test_faults import burst, check_storage_matches, names
from tests.fixtures import unavailable
from tests.fixtures.k8s import e2e_stats
from tests.support import start_driver, wait_until

pytestmark = pytest.mark.e2e

BURST = 100
#: The leader dies once this many of the burst's accounts are in storage: claims and accesses are
#: both under way then, and (at the v0.2.2 programs' 5 API requests a second) most are still to do.
KILL_AT_ACCOUNTS = 5
#: After the takeover the standby has the whole rest of the burst to do at that pace.
FINISH_TIMEOUT = 900
#: Replica B's sidecar runs under this hostname: its Lease identity (tests/e2e/replicas.py).
STANDBY_HOSTNAME = "cosi-e2e-replica-b"
#: The backends the scenario runs on: one without any server, one whose keys are used for real.
FAILOVER_PROFILES = ("filesystem", "seaweedfs")


@dataclass
class TwoReplicas:
    cluster: Cluster
    driver_name: str
    state_namespace: str
    scenario: Scenario
    replicas: list[Replica]


def driver_name_for(profile_name: str) -> str:
    """A name of the scenario's own: its Lease, and no other scenario's leftover objects reach it."""
    return f"failover.{profile_name}.e2e.cosi-driver.example.com"


@pytest.fixture(params=FAILOVER_PROFILES)
def two_replicas(request: pytest.FixtureRequest, k8s_cluster: Cluster) -> Iterator[TwoReplicas]:
    cluster, profile_name = k8s_cluster, str(request.param)
    base = cluster.directory.parent / f"failover-{profile_name}"
    base.mkdir(parents=True, exist_ok=True)
    name = driver_name_for(profile_name)
    state_namespace, namespace = f"failover-state-{profile_name}", f"failover-{profile_name}"
    profile = PROFILES[profile_name](base, request.getfixturevalue)
    document, env = driver_config(
        profile.driver_env(),
        {"type": "kubernetes", "config": {"namespace": state_namespace, "kubeconfig": str(cluster.kubeconfig)}},
    )
    config = base / "driver.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    env.update({"COSI_DRIVER_CONFIG": str(config), "COSI_DRIVER_NAME": name})
    cluster.create_namespace(state_namespace)
    cluster.create_namespace(namespace)

    previous = cluster.cosi_socket
    stacks: list[Stack] = []
    standby: Sidecar | None = None
    try:
        for replica in ("a", "b"):
            workdir = base / f"replica-{replica}"
            workdir.mkdir(exist_ok=True)
            stacks.append(Stack(cluster, profile, workdir, start_driver(env, workdir), env))
        cluster.start_cosi(stacks[0].driver.socket_path)
        assert cluster.driver_name == name, f"the kit's sidecar connected to {cluster.driver_name!r}"
        # Replica A's sidecar is the only candidate so far: the Lease's holder is its identity.
        wait_until(lambda: lease_holder(cluster, name) is not None, 60, f"Lease {lease_name(name)}", 0.5)
        leading = Sidecar.of_kit(cluster, str(lease_holder(cluster, name)))
        try:
            standby = Sidecar.start(cluster, stacks[1].driver.socket_path, stacks[1].workdir, STANDBY_HOSTNAME)
        except ReplicaProblem as problem:
            unavailable(f"failover scenario: {problem}")
        assert standby is not None
        assert standby.identity != leading.identity, "both sidecars would hold the Lease as one identity"
        walkthrough = Walkthrough(
            prefix=namespace, namespace=namespace, driver_name=name, parameters=profile.bucket_class_parameters()
        )
        yield TwoReplicas(
            cluster=cluster,
            driver_name=name,
            state_namespace=state_namespace,
            scenario=Scenario(stacks[0], namespace, walkthrough),
            replicas=[Replica("A", stacks[0], leading), Replica("B", stacks[1], standby)],
        )
    finally:
        if stacks:
            e2e_stats(request.config).races[f"failover-{profile_name}"] = stacks[0].race
        if standby is not None:
            standby.stop()
        for stack in stacks:
            stack.driver.stop()
        profile.close()
        # A session stack that is still in use gets the kit's controller and sidecar back.
        cluster.restore_cosi(previous)


def test_the_standby_finishes_a_burst_once_after_the_leaders_pod_is_killed(
    two_replicas: TwoReplicas, request: pytest.FixtureRequest
) -> None:
    started = time.monotonic()
    cluster, scenario, driver_name = two_replicas.cluster, two_replicas.scenario, two_replicas.driver_name
    profile = scenario.profile
    leader = leader_of(cluster, driver_name, two_replicas.replicas)
    (standby,) = [replica for replica in two_replicas.replicas if replica is not leader]

    before = profile.buckets()
    claims, accesses, access_class = burst(scenario, BURST, "fo")
    scenario.apply(*claims, *accesses.values())

    def new_buckets() -> set[str]:
        return profile.buckets() - before

    wait_until(
        lambda: len(profile.accounts(new_buckets())) >= KILL_AT_ACCOUNTS,
        600,
        f"{KILL_AT_ACCOUNTS} of the burst's accounts in storage",
        0.5,
    )
    leader.kill()
    killed_at = time.monotonic()
    made, granted = len(new_buckets()), len(profile.accounts(new_buckets()))
    assert granted < BURST, "the burst was over before the kill; nothing was handed over"
    assert lease_holder(cluster, driver_name) == leader.sidecar.identity, "the Lease moved before the kill"

    try:
        takeover = wait_for_takeover(cluster, driver_name, standby, since=killed_at)
    except TimeoutError as error:
        raise AssertionError(f"{error}; Leases in default: {leases(cluster)}") from None
    stats = e2e_stats(request.config)
    stats.notes.append(
        f"failover ({profile.name}): replica {leader.name}'s driver and sidecar SIGKILLed with {made} of {BURST} "
        f"buckets and {granted} of {BURST} accounts in storage; replica {standby.name} held the Lease "
        f"{takeover:.1f} s later (bound {TAKEOVER_BOUND:.0f} s: Lease 150 s, retry 60 s with jitter 1.2)"
    )

    buckets = scenario.claims_ready(names(claims), timeout=FINISH_TIMEOUT)
    account_ids = scenario.accesses_granted(list(accesses), timeout=FINISH_TIMEOUT)
    assert len(set(account_ids.values())) == BURST, "two BucketAccesses share one account"
    mode = access_class["parameters"]["accessMode"]
    check_storage_matches(scenario, before, buckets, accesses, mode)
    assert standby.stack.rpcs("DriverGrantBucketAccess"), "the standby's driver granted nothing"
    for replica in two_replicas.replicas:
        assert not (replica.stack.workdir / "state").exists(), "a replica kept state on its local disk"
    assert cluster.items("secrets", two_replicas.state_namespace), "no state Secrets in the store's namespace"

    # Clean up through the surviving replica: every account revoked, then every bucket deleted.
    in_storage = new_buckets()
    cluster.kubectl("delete", "bucketaccesses", "--all", "-n", scenario.namespace, "--wait=false")
    wait_until(lambda: not profile.accounts(in_storage), FINISH_TIMEOUT, "every account revoked", 1.0)
    cluster.kubectl("delete", "bucketclaims", "--all", "-n", scenario.namespace, "--wait=false")
    wait_until(lambda: not profile.buckets() & in_storage, FINISH_TIMEOUT, "every bucket deleted", 1.0)
    stats.scenarios[request.node.nodeid] = time.monotonic() - started
