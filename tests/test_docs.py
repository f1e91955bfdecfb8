"""The README's reference tables are generated from the code; they must not drift from it."""

from __future__ import annotations

import shutil
from pathlib import Path

from cosi_driver.cli import docs
from tests.support import PROJECT_ROOT


def test_readme_tables_match_the_code(tmp_path: Path) -> None:
    copy = tmp_path / "README.md"
    shutil.copyfile(PROJECT_ROOT / "README.md", copy)
    changed = docs.update(copy)
    assert not changed, "README.md tables are stale: run `.venv/bin/cosi-driver docs --update README.md`"


def test_every_setting_and_parameter_is_documented() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    from cosi_driver.config.settings import SETTINGS

    for setting in SETTINGS:
        assert f"`{setting.env}`" in readme
    for word in ("deletionPolicy", "accessMode", "maxSizePerBucket", "versioning", "backend"):
        assert f"`{word}`" in readme
