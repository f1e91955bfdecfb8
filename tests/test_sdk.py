"""Backend authors need one module: the scaffold and the example plug-in import only ``cosi_driver.sdk``."""

from __future__ import annotations

import ast
import importlib
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


# ---- what is public, what is internal ------------------------------------------------------------

PACKAGE = ROOT / "cosi_driver"
PUBLIC_PARTS = {"sdk", "testing"}
AUTHOR_TESTS = sorted((ROOT / "cosi_driver/scaffold/templates/tests").glob("*.tmpl"))


def _docstrings() -> dict[str, str]:
    """Each sub-package and module directly under ``cosi_driver`` with its docstring."""
    found = {}
    for path in sorted(PACKAGE.iterdir()):
        source = path / "__init__.py" if path.is_dir() else path
        if path.name.startswith("_") or source.suffix != ".py" or not source.exists():
            continue
        found[path.stem] = ast.get_docstring(ast.parse(source.read_text())) or ""
    return found


def _declared(doc: str, kind: str) -> set[str]:
    """The module names a ``Public:`` or ``Internal:`` paragraph lists before its first full stop."""
    found = re.search(rf"^{kind}: ([^.]*)\.", doc, re.MULTILINE)
    return set(re.split(r",\s*", found.group(1).strip())) if found else set()


def test_every_part_of_the_package_says_whether_it_is_public() -> None:
    marks = {name: set(re.findall(r"^(Public|Internal)\b", doc, re.MULTILINE)) for name, doc in _docstrings().items()}
    assert [name for name, found in marks.items() if not found] == []
    assert {name for name, found in marks.items() if "Public" in found} == PUBLIC_PARTS


def test_the_testing_kit_sorts_every_module_and_its_public_ones_list_their_names() -> None:
    doc = _docstrings()["testing"]
    public, internal = _declared(doc, "Public"), _declared(doc, "Internal")
    modules = {
        p.stem for p in (PACKAGE / "testing").iterdir() if not p.name.startswith("_") and p.suffix in (".py", "")
    }
    assert public and not public & internal
    assert public | internal == modules
    for name in public:
        module = importlib.import_module(f"cosi_driver.testing.{name}")
        exported = getattr(module, "__all__", None)
        assert exported, f"cosi_driver.testing.{name} is public but has no __all__"
        assert [n for n in exported if not hasattr(module, n)] == [], name


def test_test_code_written_for_authors_imports_only_public_modules() -> None:
    public = _declared(_docstrings()["testing"], "Public")
    allowed = {"cosi_driver.sdk", *(f"cosi_driver.testing.{name}" for name in public)}
    assert AUTHOR_TESTS, "the scaffold's test templates moved"
    stray = {str(path.relative_to(ROOT)): m for path in AUTHOR_TESTS if (m := set(_cosi_imports(path)) - allowed)}
    assert stray == {}
