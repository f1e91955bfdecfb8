"""A private Kubernetes control plane from the ``../shared/k8s`` kit, and kubectl against it.

The kit's scripts are called by path (never copied), with a state directory and ports of our
own, so several test sessions can each run a cluster on this machine at once. Everything here
goes through kubectl, as a user's commands would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures import kit_exports
from tests.support import SHARED, free_port_block

#: Where the kit lives; default ``$COSI_SHARED_DIR/k8s`` (``../shared/k8s`` from the project root).
KIT_VARIABLE = "COSI_K8S_KIT"
SCRIPTS = ("start-k8s.sh", "start-cosi.sh", "stop-k8s.sh")
#: The kit ships no programs: they come from this directory (or ``DIR1:DIR2``, first hit wins).
BIN_VARIABLE = "COSI_K8S_BIN"
#: Which COSI API the kit serves, and so which controller and sidecar it runs.
API_VARIABLE = "COSI_K8S_API"
PROGRAMS = {
    "v1alpha1": ("kube-apiserver", "cosi-controller-manager", "cosi-provisioner-sidecar"),
    "v1alpha2": ("kube-apiserver", "cosi-controller", "cosi-sidecar"),
}


def kit_location() -> Path:
    return Path(os.environ.get(KIT_VARIABLE) or SHARED / "k8s").resolve()


def kit_problem(kit: Path) -> str | None:
    """Why the kit's scripts cannot be used here, or None."""
    missing = [name for name in SCRIPTS if not (kit / name).is_file()]
    if missing:
        return f"the Kubernetes kit is not at {kit} (missing {', '.join(missing)}); set {KIT_VARIABLE}"
    return None


def programs_problem(env: Mapping[str, str] | None = None) -> str | None:
    """Why the control-plane programs the kit would run are not here, or None; one line.

    No registry carries kube-apiserver or the upstream COSI controller and sidecar, so a fresh
    machine (CI included) has none: this is the expected state there, checked before anything
    starts. The lookup is the kit's own: for each program, the first directory of the
    colon-separated list holding it as an executable file.
    """
    env = os.environ if env is None else env
    api = env.get(API_VARIABLE) or "v1alpha1"
    programs = PROGRAMS.get(api)
    if programs is None:
        return f"{API_VARIABLE}={api} is not an API the kit serves ({' or '.join(PROGRAMS)})"
    setting = env.get(BIN_VARIABLE, "")
    needed = f"{api} needs {', '.join(programs)}"
    if not setting:
        return f"{BIN_VARIABLE} is not set ({needed})"
    directories = [Path(entry) for entry in setting.split(":") if entry]
    missing = [name for name in programs if not any(_executable(directory / name) for directory in directories)]
    if missing:
        return f"no executable {', '.join(missing)} in {BIN_VARIABLE}={setting} ({needed})"
    return None


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def program_path(name: str, env: Mapping[str, str] | None = None) -> Path:
    """The program the kit would run for ``name``: the first directory of COSI_K8S_BIN holding it."""
    env = os.environ if env is None else env
    for entry in env.get(BIN_VARIABLE, "").split(":"):
        if entry and _executable(Path(entry) / name):
            return Path(entry) / name
    raise KitError(f"no executable {name} in {BIN_VARIABLE}={env.get(BIN_VARIABLE, '')}")


class KitError(RuntimeError):
    """A kit script failed; the message carries the tail of its output."""


@dataclass
class Cluster:
    """A running kube-apiserver + etcd from the kit, and later its COSI controller and sidecar."""

    kit: Path
    directory: Path
    env: dict[str, str]
    kubeconfig: Path
    cosi: dict[str, str] = field(default_factory=dict)
    #: The driver socket the kit's controller and sidecar were last started against.
    cosi_socket: Path | None = None
    kubectl_binary: str = "kubectl"

    @classmethod
    def start(cls, kit: Path, directory: Path) -> Cluster:
        ports = free_port_block(3)
        env = {
            **os.environ,
            "COSI_K8S_DIR": str(directory),
            "COSI_K8S_ETCD_PORT": str(ports),
            "COSI_K8S_ETCD_PEER_PORT": str(ports + 1),
            "COSI_K8S_APISERVER_PORT": str(ports + 2),
        }
        exports = kit_exports(_script(kit / "start-k8s.sh", env=env, timeout=300))
        env.update(exports)
        return cls(
            kit=kit,
            directory=directory,
            env=env,
            kubeconfig=Path(exports["KUBECONFIG"]),
            kubectl_binary=os.environ.get("COSI_K8S_KUBECTL", "kubectl"),
        )

    def start_cosi(self, socket: Path) -> dict[str, str]:
        """(Re)start the upstream controller and sidecar against our driver's socket."""
        self.cosi = kit_exports(_script(self.kit / "start-cosi.sh", str(socket), env=self.env, timeout=300))
        self.cosi_socket = socket
        return self.cosi

    def restore_cosi(self, socket: Path | None) -> None:
        """Point the kit's pair back at ``socket`` when that driver still listens there.

        A test that runs the pair against a driver of its own calls this afterwards, so a session
        fixture's stack (``cosi_stack``) that is still in use finds its sidecar again.
        """
        if socket is not None and socket != self.cosi_socket and socket.is_socket():
            self.start_cosi(socket)

    def stop(self) -> None:
        """Stop the sidecar, controller, apiserver and etcd this cluster started, and wipe its dir."""
        _script(self.kit / "stop-k8s.sh", "--wipe", env=self.env, timeout=180)

    @contextlib.contextmanager
    def apiserver_paused(self) -> Iterator[None]:
        """kube-apiserver frozen with SIGSTOP inside the block: connections are accepted by the kernel
        and never answered, as with a hung apiserver. SIGCONT afterwards, then wait until it is ready.

        The PID is the kit's own (its PID file), signalled only while it runs the recorded command.
        """
        run = self.directory / "run"
        pid = int((run / "kube-apiserver.pid").read_text())
        if Path(f"/proc/{pid}/cmdline").read_bytes() != (run / "kube-apiserver.cmd").read_bytes():
            raise KitError(f"PID {pid} in {run}/kube-apiserver.pid no longer runs the kit's kube-apiserver")
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)
            deadline = time.monotonic() + 60
            while self.kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode != 0:
                if time.monotonic() > deadline:
                    raise KitError("kube-apiserver not ready 60 s after SIGCONT")
                time.sleep(0.2)

    @property
    def driver_name(self) -> str:
        return self.cosi["COSI_K8S_DRIVER_NAME"]

    def log(self, name: str) -> str:
        """A kit log: ``cosi-sidecar``, ``cosi-controller``, ``kube-apiserver`` or ``etcd``."""
        path = self.directory / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- kubectl --------------------------------------------------------------------------------

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 90
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.kubectl_binary, "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise KitError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def get(self, kind: str, name: str | None = None, namespace: str | None = None) -> Any:
        """One object or, without a name, the list, as parsed JSON; None when the object is absent."""
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        result = self.kubectl(*args, check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise KitError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return json.loads(result.stdout)

    def items(self, kind: str, namespace: str | None = None) -> dict[str, Any]:
        """The objects of a kind (in a namespace), by name."""
        listing = self.get(kind, namespace=namespace)
        return {item["metadata"]["name"]: item for item in listing["items"]}

    def apply(self, documents: Iterable[Mapping[str, Any]], namespace: str | None = None) -> str:
        text = yaml.safe_dump_all(list(documents), sort_keys=False)
        args = ["apply", "-f", "-", *(["-n", namespace] if namespace else [])]
        return self.kubectl(*args, stdin=text).stdout

    def delete(self, kind: str, name: str, namespace: str | None = None, wait: bool = True) -> None:
        """Delete; with ``wait`` kubectl returns once the finalizers are gone (the driver answered)."""
        args = ["delete", kind, name, f"--wait={str(wait).lower()}", "--timeout=120s"]
        self.kubectl(*args, *(["-n", namespace] if namespace else []), timeout=150)

    def wait(self, condition: str, target: str, namespace: str | None = None, timeout: float = 60) -> None:
        """``kubectl wait --for=CONDITION TARGET``."""
        args = ["wait", f"--for={condition}", target, f"--timeout={timeout:g}s"]
        self.kubectl(*args, *(["-n", namespace] if namespace else []), timeout=timeout + 30)

    def create_namespace(self, name: str) -> None:
        # Namespaces never finish deleting here (no kube-controller-manager), so they are kept.
        self.kubectl("create", "namespace", name)

    def events(self, namespace: str, involved: str | None = None) -> list[dict[str, Any]]:
        """Events in a namespace (Bucket events land in ``default``), optionally about one object."""
        args = ["get", "events", "-n", namespace, "-o", "json"]
        if involved:
            args.append(f"--field-selector=involvedObject.name={involved}")
        return list(json.loads(self.kubectl(*args).stdout)["items"])


def _script(path: Path, *args: str, env: Mapping[str, str], timeout: float) -> str:
    """Run a kit script; its stdout has only ``export`` lines, its progress goes to stderr."""
    started = time.monotonic()
    result = subprocess.run(
        [str(path), *args], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-25:])
        raise KitError(
            f"{path.name} {' '.join(args)} failed with {result.returncode} after "
            f"{time.monotonic() - started:.1f}s:\n{tail}"
        )
    return result.stdout
