"""Two driver replicas on the real control plane, each our driver with an upstream sidecar of its own.

The kit runs one controller and one sidecar (``start-cosi.sh``); replica A is that sidecar on
driver A's socket. Replica B's sidecar is started here from the same program, with the same flags
and the same scrubbed environment as ``start-cosi.sh`` gives the v1alpha1 sidecar, and stopped by
its PID. Both drivers share one Kubernetes state store (Secrets in a namespace of the test's own)
and one storage, as two pods of one Deployment do.

Leader election, from the v0.2.2 source (``internal/runtime/controller.go`` and the client-go it
vendors): the Lease lives in ``POD_NAMESPACE`` (``default`` here) and is named after the driver,
``sanitize(driver name + "/cosi")`` (``sidecar/cmd/cmd.go`` passes the name as the lock name and
"cosi" as the identity); the holder identity is ``sanitize(os.Hostname())``. Two
sidecars on one machine would therefore share one identity, and client-go lets a candidate whose
identity already holds the Lease renew it at once: both would lead. So B's sidecar runs in a UTS
namespace of its own (``unshare --uts``) with a hostname of its own; nothing else differs.

Timings of that election: Lease 150 s, renew deadline 120 s, retry period 60 s, and a standby
retries every 60 s plus up to 1.2 times that again (client-go's jitter). A standby notes the time
it *saw* the last renewal, and waits a whole Lease after it, so from a SIGKILL of the leader to its
takeover is at most one retry gap (seeing the last renewal) + the Lease + one more retry gap.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosi_driver.config.backends import BACKEND_ENV_PREFIX
from cosi_driver.core import registry
from cosi_driver.core.options import SECRET, option_specs
from tests.e2e.kube import Cluster, KitError, program_path
from tests.e2e.stack import Stack
from tests.support import wait_until

#: The v0.2.2 sidecar, as the kit's start-cosi.sh runs it for v1alpha1.
SIDECAR_PROGRAM = "cosi-provisioner-sidecar"
#: start-cosi.sh's POD_NAMESPACE: where both COSI programs keep their Leases.
LEASE_NAMESPACE = "default"
LEASE_DURATION = 150.0
RETRY_PERIOD = 60.0
JITTER_FACTOR = 1.2
#: The longest a standby may need after the leader's SIGKILL (module docstring), plus slack for a
#: busy 2-core machine: 150 + 2 x 132 + 30 = 444 s.
TAKEOVER_BOUND = LEASE_DURATION + 2 * RETRY_PERIOD * (1 + JITTER_FACTOR) + 30
#: What start-cosi.sh waits for in a sidecar's log: it has called DriverGetInfo and leads.
CONNECTED = "Successfully connected to driver"
LEADS = "became leader"
#: The environment start-cosi.sh gives both v1alpha1 programs (they bind every flag to a variable).
CHILD_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class ReplicaProblem(RuntimeError):
    """A second replica cannot be had on this machine; the message says why."""


def sanitize(name: str) -> str:
    """The sidecar's rule for Lease names and identities: other than [a-zA-Z0-9-] becomes '-',
    lower case, and a trailing '-' gets an 'X'."""
    cleaned = re.sub(r"[^a-zA-Z0-9-]", "-", name).lower()
    return cleaned + "X" if cleaned.endswith("-") else cleaned


def lease_name(driver_name: str) -> str:
    return sanitize(f"{driver_name}/cosi")


def lease_holder(cluster: Cluster, driver_name: str) -> str | None:
    """The identity holding the driver's sidecar Lease, or None while there is no Lease."""
    lease = cluster.get("lease", lease_name(driver_name), LEASE_NAMESPACE)
    if lease is None:
        return None
    return str((lease.get("spec") or {}).get("holderIdentity") or "") or None


def leases(cluster: Cluster) -> list[str]:
    """The Leases in the sidecars' namespace, for failure messages."""
    return sorted(cluster.items("leases", LEASE_NAMESPACE))


def driver_config(profile_env: Mapping[str, str], state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A profile's ``COSI_DRIVER_BACKEND*`` environment as a config file document with ``state``.

    The Kubernetes state store is configured only in a config file, and a config file excludes
    backend variables, so the profile's backend moves into the file (under its type's name, as
    the environment names it) and what is left (master key, time limits) stays in the environment.
    """
    env = dict(profile_env)
    type_name = env.pop("COSI_DRIVER_BACKEND")
    secret = {spec.name for spec in option_specs(registry.load(type_name).config) if spec.kind is SECRET}
    settings: dict[str, Any] = {}
    for variable in [name for name in env if name.startswith(BACKEND_ENV_PREFIX)]:
        value = env.pop(variable)
        setting = variable.removeprefix(BACKEND_ENV_PREFIX).lower()
        if setting.endswith("_file") and setting.removesuffix("_file") in secret:
            settings[setting.removesuffix("_file")] = {"file": value}
        elif setting in secret:
            settings[setting] = {"value": value}
        else:
            settings[setting] = value
    backend = {"type": type_name, "default": True, "config": settings}
    return {"backends": {type_name: backend}, "state": dict(state)}, env


def _own_hostname_command(hostname: str) -> list[str]:
    """The command prefix that runs a program under ``hostname`` in a UTS namespace of its own.

    Tried as root first (``unshare --uts``), then in a user namespace of its own for machines where
    the first is refused; each is checked by reading the name back.
    """
    unshare, shell = shutil.which("unshare"), shutil.which("sh")
    if unshare is None or shell is None:
        raise ReplicaProblem("unshare (util-linux) is needed to give the second sidecar a hostname of its own")
    script = 'hostname "$1" && shift && exec "$@"'
    refusals = []
    for flags in (["--uts"], ["--user", "--map-root-user", "--uts"]):
        prefix = [unshare, *flags, "--", shell, "-c", script, "sh", hostname]
        probe = subprocess.run(
            [*prefix, "hostname"], capture_output=True, text=True, timeout=30, check=False, env={"PATH": CHILD_PATH}
        )
        if probe.returncode == 0 and probe.stdout.strip() == hostname:
            return prefix
        refusals.append(f"unshare {' '.join(flags)}: {(probe.stderr or probe.stdout).strip() or probe.returncode}")
    raise ReplicaProblem(
        "two v0.2.2 sidecars on one machine share one Lease identity (the hostname), so the second needs "
        f"a UTS namespace of its own, and this machine refuses one ({'; '.join(refusals)})"
    )


@dataclass
class Sidecar:
    """One upstream sidecar process: its PID, its log, its Lease identity."""

    pid: int
    log_path: Path
    identity: str
    #: The exact command line, to signal the PID only while it still runs it (the kit's rule).
    cmdline: bytes
    process: subprocess.Popen[bytes] | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def running(self) -> bool:
        try:
            return Path(f"/proc/{self.pid}/cmdline").read_bytes() == self.cmdline
        except OSError:
            return False

    def send(self, sig: int) -> None:
        if self.running():
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 35) -> None:
        """SIGTERM (the sidecar then gives its Lease up), SIGKILL after ``timeout``, as stop-k8s.sh does."""
        self.send(signal.SIGTERM)
        try:
            wait_until(lambda: not self.running(), timeout, "the sidecar to exit", 0.1)
        except TimeoutError:
            self.send(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    @classmethod
    def of_kit(cls, cluster: Cluster, identity: str) -> Sidecar:
        """The sidecar start-cosi.sh started (its PID file and recorded command line)."""
        run = cluster.directory / "run"
        return cls(
            pid=int(cluster.cosi["COSI_K8S_SIDECAR_PID"]),
            log_path=Path(cluster.cosi["COSI_K8S_SIDECAR_LOG"]),
            identity=identity,
            cmdline=(run / "cosi-sidecar.cmd").read_bytes(),
        )

    @classmethod
    def start(cls, cluster: Cluster, socket: Path, workdir: Path, hostname: str, timeout: float = 200) -> Sidecar:
        """A second sidecar on ``socket``, as start-cosi.sh starts one, under ``hostname``.

        Returns once it has connected to its driver (start-cosi.sh's sign); it then stands by
        while another sidecar holds the Lease.
        """
        program = program_path(SIDECAR_PROGRAM, cluster.env)
        argv = [
            str(program),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--driver-addr",
            f"unix://{socket.resolve()}",
            f"--v={cluster.env.get('COSI_K8S_V', '5')}",
        ]
        env = {
            "PATH": CHILD_PATH,
            "HOME": os.environ.get("HOME", "/root"),
            "POD_NAMESPACE": LEASE_NAMESPACE,
            "KUBECONFIG": str(cluster.kubeconfig),
        }
        log_path = workdir / "cosi-sidecar.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [*_own_hostname_command(hostname), *argv],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        sidecar = cls(process.pid, log_path, sanitize(hostname), b"".join(a.encode() + b"\0" for a in argv), process)

        def connected() -> bool:
            if process.poll() is not None:
                raise KitError(f"the second sidecar exited ({process.returncode}):\n{sidecar.log()[-3000:]}")
            return CONNECTED in sidecar.log() and sidecar.running()

        try:
            wait_until(connected, timeout, f"the second sidecar to connect to {socket}", 0.2)
        except BaseException:
            sidecar.stop(timeout=5)
            raise
        return sidecar


@dataclass
class Replica:
    """One replica: our driver (a Stack without a sidecar of its own) and the sidecar calling it."""

    name: str
    stack: Stack
    sidecar: Sidecar

    def leads_by_log(self) -> bool:
        return LEADS in self.sidecar.log()

    def kill(self) -> None:
        """SIGKILL the driver and its sidecar at once, as a node dying takes the whole pod."""
        self.sidecar.send(signal.SIGKILL)
        self.stack.kill_driver()
        wait_until(lambda: not self.sidecar.running(), 30, f"replica {self.name}'s sidecar to die", 0.05)
        if self.sidecar.process is not None:
            self.sidecar.process.wait(timeout=30)


def leader_of(cluster: Cluster, driver_name: str, replicas: list[Replica]) -> Replica:
    """The replica holding the Lease; its sidecar's log must say so and no other's may."""
    holder = lease_holder(cluster, driver_name)
    holders = [replica for replica in replicas if replica.sidecar.identity == holder]
    assert len(holders) == 1, f"Lease {lease_name(driver_name)} is held by {holder!r}, not by one replica of ours"
    leader = holders[0]
    assert [replica.name for replica in replicas if replica.leads_by_log()] == [leader.name], (
        f"only the holder {leader.name} may have started leading"
    )
    return leader


def wait_for_takeover(
    cluster: Cluster, driver_name: str, standby: Replica, since: float, timeout: float = TAKEOVER_BOUND
) -> float:
    """Seconds from ``since`` (the leader's death, monotonic) until ``standby`` holds the Lease and
    its sidecar has started leading."""
    wait_until(
        lambda: lease_holder(cluster, driver_name) == standby.sidecar.identity and standby.leads_by_log(),
        max(0.0, since + timeout - time.monotonic()),
        f"replica {standby.name} to take Lease {lease_name(driver_name)} over",
        1.0,
    )
    return time.monotonic() - since
