"""``cosi-driver bootstrap``: generate a standalone driver project that uses cosi-driver as a library.

The templates under ``templates/`` are package data. Paths map ``_package_`` to the Python
package, ``_chart_`` to the chart's name and a leading ``dot-`` to ``.`` (wheels and globbing
drop dotfiles); every file's ``.tmpl`` suffix goes. In the text, ``@@KEY@@`` tokens are replaced,
and a token left over is a bug in the templates, refused rather than written out.

Internal: the public interface is ``cosi-driver bootstrap``; the generated project imports only
public modules (:mod:`cosi_driver.sdk`, :mod:`cosi_driver.testing`).
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass
from importlib import metadata, resources
from importlib.abc import Traversable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cosi_driver import __version__
from cosi_driver.core.ids import BACKEND_NAME
from cosi_driver.core.values import ValueProblem, parse_driver_name

_PROJECT_NAME = re.compile(r"[a-z][a-z0-9-]{0,38}[a-z0-9]")
_PACKAGE_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_TOKEN = re.compile(r"@@([A-Z_]+)@@")
_RESERVED_PACKAGES = frozenset({"cosi_driver", "tests", "test", "deploy", "charts"})
EXECUTABLE = frozenset({".ci/run"})


class ScaffoldProblem(ValueError):
    """A bootstrap option is wrong, or the output directory is in the way."""


@dataclass(frozen=True)
class ProjectSpec:
    name: str  # distribution, image, namespace and chart name: acme-objects
    package: str  # Python package: acme_objects
    driver_name: str  # DriverGetInfo name: acme-objects.objectstorage.example.com
    backend_type: str  # entry-point name and COSI_DRIVER_BACKEND value: acme-objects
    cosi_driver_source: str = ""  # the Makefile's default COSI_DRIVER; empty: the package index

    @property
    def class_prefix(self) -> str:
        return "".join(part.capitalize() for part in re.split(r"[-_]", self.name) if part)

    def tokens(self) -> dict[str, str]:
        return {
            "NAME": self.name,
            "PACKAGE": self.package,
            "DRIVER_NAME": self.driver_name,
            "BACKEND_TYPE": self.backend_type,
            "CLASS": self.class_prefix,
            "COSI_DRIVER_VERSION": __version__,
            # The Makefile's assignment line, without trailing whitespace when it is empty.
            "COSI_DRIVER_DEFAULT": f"COSI_DRIVER ?= {self.cosi_driver_source}".rstrip(),
        }


def make_spec(
    name: str,
    *,
    package: str | None = None,
    driver_name: str | None = None,
    backend_type: str | None = None,
    cosi_driver_source: str = "",
) -> ProjectSpec:
    """Validate the options (the driver name by the spec's stricter v1alpha2 rule) and fill defaults."""
    if not _PROJECT_NAME.fullmatch(name):
        raise ScaffoldProblem(
            f"project name {name!r} must be 2-40 lowercase letters, digits and '-', starting with a letter "
            "(it names the distribution, the image, the namespace and the chart)"
        )
    package = package if package is not None else name.replace("-", "_")
    if not _PACKAGE_NAME.fullmatch(package) or keyword.iskeyword(package) or package in _RESERVED_PACKAGES:
        raise ScaffoldProblem(
            f"package name {package!r} must be a lowercase Python identifier, not a keyword and not one of "
            f"{', '.join(sorted(_RESERVED_PACKAGES))}"
        )
    driver_name = driver_name if driver_name is not None else f"{name}.objectstorage.example.com"
    try:
        parse_driver_name(driver_name)
    except ValueProblem as problem:
        raise ScaffoldProblem(f"driver name {problem}") from None
    if driver_name != driver_name.strip():
        raise ScaffoldProblem(f"driver name {driver_name!r} must not have surrounding whitespace")
    backend_type = backend_type if backend_type is not None else name
    if not BACKEND_NAME.fullmatch(backend_type):
        raise ScaffoldProblem(
            f"backend type {backend_type!r} must be 1-32 lowercase letters, digits and '-', starting with a letter"
        )
    return ProjectSpec(
        name=name,
        package=package,
        driver_name=driver_name,
        backend_type=backend_type,
        cosi_driver_source=cosi_driver_source,
    )


@dataclass(frozen=True)
class DriverSource:
    """Where the running cosi-driver was installed from, when that was not a package index."""

    requirement: str  # what pip installs: a directory, a wheel path, an archive URL or a VCS URL
    kind: str  # for the user: "checkout", "wheel", "archive" or "git" (the VCS)


def source_from_direct_url(text: str | None) -> DriverSource | None:
    """Read a distribution's ``direct_url.json`` (PEP 610): pip writes one for every install that
    did not come from an index, and none for an index install (``None`` here)."""
    if not text:
        return None
    record = json.loads(text)
    url = str(record.get("url", ""))
    if not url:
        return None
    parts = urlsplit(url)
    local = unquote(parts.path) if parts.scheme == "file" else None
    if "vcs_info" in record:
        vcs = record["vcs_info"]
        return DriverSource(
            f"{vcs.get('vcs', 'git')}+{url}@{vcs.get('commit_id', '')}".rstrip("@"), vcs.get("vcs", "git")
        )
    if "dir_info" in record:
        return DriverSource(local or url, "checkout")
    kind = "wheel" if parts.path.endswith(".whl") else "archive"
    return DriverSource(local or url, kind)


def installed_source(distribution: str = "cosi-driver") -> DriverSource | None:
    """The source of the installed cosi-driver, or None when it came from a package index (or
    is not installed at all). Only a distribution an installer wrote (it leaves an INSTALLER
    file) counts: a checkout's own ``*.egg-info`` build artefact comes first on ``sys.path`` when
    the checkout is the working directory, and says nothing about how cosi-driver was installed."""
    for found in metadata.distributions(name=distribution):
        if found.read_text("INSTALLER") is not None:
            return source_from_direct_url(found.read_text("direct_url.json"))
    return None


def _templates() -> Traversable:
    return resources.files("cosi_driver.scaffold") / "templates"


def _walk(directory: Traversable, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Traversable]]:
    found = []
    for entry in sorted(directory.iterdir(), key=lambda item: item.name):
        if entry.is_dir():
            found += _walk(entry, (*prefix, entry.name))
        elif entry.name.endswith(".tmpl"):
            found.append(((*prefix, entry.name.removesuffix(".tmpl")), entry))
    return found


def _target(parts: tuple[str, ...], spec: ProjectSpec) -> str:
    renamed = [{"_package_": spec.package, "_chart_": spec.name}.get(part, part) for part in parts]
    return "/".join("." + part.removeprefix("dot-") if part.startswith("dot-") else part for part in renamed)


def render(text: str, spec: ProjectSpec, where: str) -> str:
    values = spec.tokens()
    rendered = _TOKEN.sub(lambda match: values.get(match[1], match[0]), text)
    leftover = _TOKEN.search(rendered)
    if leftover:
        raise ScaffoldProblem(f"template {where} uses an unknown token {leftover[0]}")
    return rendered


def plan(spec: ProjectSpec) -> dict[str, str]:
    """Every file of the project: relative path -> content."""
    return {
        _target(parts, spec): render(entry.read_text(), spec, "/".join(parts)) for parts, entry in _walk(_templates())
    }


def generate(spec: ProjectSpec, output: Path, *, force: bool = False) -> list[Path]:
    """Write the project into ``output``; refuse an existing directory unless ``force``."""
    if output.exists() and not force:
        raise ScaffoldProblem(f"{output} already exists; choose another --output, or --force to write over it")
    if output.exists() and not output.is_dir():
        raise ScaffoldProblem(f"{output} exists and is not a directory")
    files = plan(spec)
    written = []
    for relative, content in files.items():
        path = output / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if relative in EXECUTABLE:
            path.chmod(0o755)
        written.append(path)
    return written
