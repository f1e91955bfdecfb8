"""``cosi-driver docs``: reference tables generated from the code, so the documentation cannot drift.

``settings`` prints every environment variable (from the ``Settings`` declarations), ``parameters`` the
BucketClass/BucketAccessClass vocabulary of each backend (from its parameter dataclasses), and
``backend-config`` each backend's ``config:`` settings. ``--update docs/configuration.md`` (where
the tables live) rewrites the blocks between ``<!-- BEGIN generated:NAME -->`` and
``<!-- END generated:NAME -->`` markers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

TABLES = ("settings", "parameters", "backend-config")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", nargs="?", choices=TABLES, help="print one table (default: all)")
    parser.add_argument("--update", type=Path, metavar="FILE", help="rewrite the generated blocks in FILE")
    parser.add_argument("--all-backends", action="store_true", help="include installed third-party backends")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _option_default(value: Any) -> str:
    """A config default as a user would write it in YAML (None means: not set)."""
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`"


def settings_table() -> str:
    from cosi_driver.config.settings import SETTINGS

    rows = ["| Variable | Flag | Default | Meaning |", "|---|---|---|---|"]
    for setting in SETTINGS:
        default = f"`{setting.render_default()}`" if setting.default is not None else ""
        flag = f"`{setting.flag}`" if setting.flag else ""
        rows.append(f"| `{setting.env}` | {flag} | {default} | {_cell(setting.doc)} |")
    return "\n".join(rows)


def _backend_types(all_backends: bool) -> list[Any]:
    from cosi_driver.core import registry

    types = []
    for name in registry.available():
        try:
            backend_type = registry.load(name)
        except registry.BrokenBackendType:
            continue  # an optional extra that is not installed: nothing to document from here
        if all_backends or backend_type.build.__module__.startswith("cosi_driver."):
            types.append(backend_type)
    return types


def parameters_table(all_backends: bool = False) -> str:
    from cosi_driver.core.params import BACKEND_PARAMETER, AccessParams, BucketParams, Quota, Versioning, specs

    types = _backend_types(all_backends)
    header = (
        "| Parameter | Class | Values | Default | " + " | ".join(f"`{t.type_name}`" for t in types) + " | Meaning |"
    )
    rows = [header, "|" + "---|" * (5 + len(types))]
    every = "yes | " * len(types)
    rows.append(
        f"| `{BACKEND_PARAMETER}` | BucketClass | a configured backend name | the default backend | {every}"
        "Which of the driver's backends holds the bucket. |"
    )
    # The portable vocabulary first (even where no built-in backend supports a word yet), then
    # each backend's own extras.
    seen: dict[tuple[str, str], Any] = {}
    for kind, portable in (("BucketClass", (BucketParams, Versioning, Quota)), ("BucketAccessClass", (AccessParams,))):
        for cls in portable:
            for spec in specs(cls):
                seen[(kind, spec.wire)] = spec
    for kind, attribute in (("BucketClass", "bucket_params"), ("BucketAccessClass", "access_params")):
        for backend_type in types:
            for spec in specs(getattr(backend_type, attribute)):
                seen.setdefault((kind, spec.wire), spec)
    # The portable words of each class together, then the rest.
    order = sorted(seen, key=lambda key: (key[0] != "BucketClass", not seen[key].portable))
    for kind, wire in order:
        spec = seen[(kind, wire)]
        attribute = "bucket_params" if kind == "BucketClass" else "access_params"
        support = " | ".join(
            "yes" if any(s.wire == wire for s in specs(getattr(t, attribute))) else "no" for t in types
        )
        scope = "portable" if spec.portable else "backend-specific"
        rows.append(
            f"| `{wire}` | {kind} | {_cell(spec.kind.form)} | `{spec.render_default()}` | {support} | "
            f"{_cell(spec.doc)} ({scope}) |"
        )
    return "\n".join(rows)


def backend_config_table(all_backends: bool = False) -> str:
    from cosi_driver.core.options import option_specs

    out = []
    for backend_type in _backend_types(all_backends):
        label = " (development only)" if backend_type.development_only else ""
        out.append(f"**`{backend_type.type_name}`**{label}: {backend_type.summary}\n")
        out.append("| Setting | Form | Default | Meaning |\n|---|---|---|---|")
        for spec in option_specs(backend_type.config):
            default = "required" if spec.required else _option_default(spec.default)
            out.append(f"| `{spec.name}` | {_cell(spec.kind.form)} | {default} | {_cell(spec.doc)} |")
        out.append("")
    return "\n".join(out).rstrip()


def render(table: str, all_backends: bool = False) -> str:
    if table == "settings":
        return settings_table()
    if table == "parameters":
        return parameters_table(all_backends)
    return backend_config_table(all_backends)


def update(path: Path, all_backends: bool = False) -> bool:
    """Rewrite the generated blocks in ``path``; True if anything changed."""
    text = path.read_text()
    new = text
    for table in TABLES:
        begin, end = f"<!-- BEGIN generated:{table} -->\n", f"<!-- END generated:{table} -->"
        start = new.find(begin)
        stop = new.find(end, start)
        if start >= 0 and stop >= 0:
            new = new[: start + len(begin)] + render(table, all_backends) + "\n" + new[stop:]
    if new != text:
        path.write_text(new)
    return new != text


def run(args: argparse.Namespace) -> int:
    if args.update is not None:
        changed = update(args.update, args.all_backends)
        print(f"{args.update}: {'updated' if changed else 'already up to date'}", file=sys.stderr)
        return 0
    for table in [args.table] if args.table else TABLES:
        print(render(table, args.all_backends))
        print()
    return 0
