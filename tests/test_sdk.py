"""Backend authors need one module: the scaffold and the example plug-in import only ``cosi_driver.sdk``."""

from __future__ import annotations

import re
from pathlib import Path

from cosi_driver import sdk

ROOT = Path(__file__).resolve().parent.parent
AUTHOR_CODE = [
    *sorted((ROOT / "cosi_driver/scaffold/templates/_package_").glob("*.tmpl")),
    *sorted((ROOT / "tests/plugins/cosi-example-backend/cosi_example_backend").glob("*.py")),
]


def _cosi_imports(path: Path) -> list[str]:
    # Templates hold placeholders, so they are not Python yet: read the import lines as text.
    return re.findall(r"^\s*(?:from|import) (cosi_driver[\w.]*)", path.read_text(), re.MULTILINE)


def test_backend_code_written_for_authors_imports_only_the_sdk() -> None:
    assert AUTHOR_CODE, "the scaffold templates or the example plug-in moved"
    stray = {
        str(path.relative_to(ROOT)): m for path in AUTHOR_CODE if (m := set(_cosi_imports(path)) - {"cosi_driver.sdk"})
    }
    assert stray == {}


def test_every_public_name_is_exported_and_present() -> None:
    assert len(sdk.__all__) == len(set(sdk.__all__))
    missing = [name for name in sdk.__all__ if not hasattr(sdk, name)]
    assert missing == []
    public = {name for name in vars(sdk) if not name.startswith("_") and name != "annotations"}
    assert public == set(sdk.__all__)
