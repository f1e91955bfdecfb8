"""The layer contract ([tool.importlinter] in pyproject.toml) holds, and `lint-imports` does catch a breach.

The breaches are injected into a copy of the package, analysed from that copy's directory (the
linter puts its working directory first on the import path, ahead of the editable install).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
LAYERS = "Layers: cli > testing | scaffold > app > config > observability > transport > spec > sdk > core"
NO_WIRE = "The core and the backends know no gRPC and no protobuf"
BACKENDS_ON_CORE = "Backends import only the core (and each other's shared kits), nothing above it"
BY_ENTRY_POINT = "The framework reaches backends only through entry points, never by import"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )


def copy_with(tmp_path: Path, module: str, line: str) -> Path:
    """The package and its pyproject.toml under ``tmp_path``, with ``line`` appended to ``module``."""
    shutil.copytree(
        PROJECT_ROOT / "cosi_driver", tmp_path / "cosi_driver", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "cosi_driver" / module
    target.write_text(target.read_text() + f"\n{line}  # injected by test_layers\n")
    return tmp_path


def test_the_real_tree_keeps_every_contract() -> None:
    result = lint_imports(PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "edge"),
    [
        # The core reaching up into the transport: the import this contract exists to stop.
        (
            "core/errors.py",
            "from cosi_driver.transport import server",
            LAYERS,
            "cosi_driver.core.errors -> cosi_driver.transport.server",
        ),
        # The old cycle coming back: the transport reading readiness from observability.
        (
            "transport/server.py",
            "from cosi_driver.observability import health",
            LAYERS,
            "cosi_driver.transport.server -> cosi_driver.observability.health",
        ),
        # A lazy import counts as much as a top-level one.
        (
            "spec/v1alpha1/servicer.py",
            "def _lazy() -> None:\n    from cosi_driver.config import build",
            LAYERS,
            "cosi_driver.spec.v1alpha1.servicer -> cosi_driver.config.build",
        ),
        # The composition root sits above config: what it assembles must not reach back into it.
        (
            "config/build.py",
            "from cosi_driver import app",
            LAYERS,
            "cosi_driver.config.build -> cosi_driver.app",
        ),
        ("core/errors.py", "import grpc", NO_WIRE, "cosi_driver.core.errors -> grpc"),
        (
            "backends/filesystem.py",
            "from google.protobuf import message",
            NO_WIRE,
            "cosi_driver.backends.filesystem -> google",
        ),
        (
            "backends/filesystem.py",
            "from cosi_driver.spec.v1alpha1 import servicer",
            BACKENDS_ON_CORE,
            "cosi_driver.backends.filesystem -> cosi_driver.spec.v1alpha1.servicer",
        ),
        (
            "config/build.py",
            "from cosi_driver.backends import filesystem",
            BY_ENTRY_POINT,
            "cosi_driver.config.build -> cosi_driver.backends.filesystem",
        ),
    ],
)
def test_an_injected_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str, edge: str
) -> None:
    result = lint_imports(copy_with(tmp_path, module, line))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"{contract} BROKEN" in " ".join(output.split()), output  # the report wraps long names
    assert edge in output
