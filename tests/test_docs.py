"""The reference tables in docs/configuration.md are generated from the code; they must not drift from it."""

from __future__ import annotations

import shutil
from pathlib import Path

from cosi_driver.cli import docs
from tests.support import PROJECT_ROOT

CONFIGURATION = PROJECT_ROOT / "docs" / "configuration.md"


def test_configuration_tables_match_the_code(tmp_path: Path) -> None:
    copy = tmp_path / "configuration.md"
    shutil.copyfile(CONFIGURATION, copy)
    text = copy.read_text()
    for table in docs.TABLES:
        assert f"<!-- BEGIN generated:{table} -->" in text, f"docs/configuration.md lost its {table} table"
    changed = docs.update(copy)
    assert not changed, (
        "docs/configuration.md tables are stale: run `.venv/bin/cosi-driver docs --update docs/configuration.md`"
    )


def test_every_setting_and_parameter_is_documented() -> None:
    text = CONFIGURATION.read_text()
    from cosi_driver.config.settings import SETTINGS

    for setting in SETTINGS:
        assert f"`{setting.env}`" in text
    for word in ("deletionPolicy", "accessMode", "maxSizePerBucket", "versioning", "backend"):
        assert f"`{word}`" in text


def test_the_readme_links_every_docs_page() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    pages = sorted((PROJECT_ROOT / "docs").rglob("*.md"))
    assert pages
    for page in pages:
        relative = page.relative_to(PROJECT_ROOT).as_posix()
        linked = f"]({relative})" in readme or f"]({relative}#" in readme
        assert linked, f"README.md does not link {relative}"
