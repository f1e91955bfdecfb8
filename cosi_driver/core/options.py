"""A backend's settings: its ``config:`` block (or ``COSI_DRIVER_BACKEND_<SETTING>`` variables).

A backend declares them as a frozen dataclass whose fields are made with :func:`option` (the
SDK's ``setting``) and a kind from :mod:`cosi_driver.core.kinds`; :func:`parse_options` checks a
block once at start-up with the shared parser (:func:`cosi_driver.core.declare.build`), naming
the exact path of a bad field and how to fix it. The kinds and :class:`ConfigProblem` are
re-exported here because backends and the SDK import them from this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from cosi_driver.core.declare import REQUIRED, Declared, FieldProblem, build, declare, declared
from cosi_driver.core.kinds import (
    BOOLEAN,
    PATH,
    SECRET,
    STRING,
    Kind,
    SecretRef,
    integer,
    one_of,
    seconds,
    url,
)
from cosi_driver.core.values import ConfigProblem

__all__ = [
    "BOOLEAN",
    "PATH",
    "REQUIRED",
    "SECRET",
    "STRING",
    "ConfigProblem",
    "OptionKind",
    "SecretRef",
    "integer",
    "one_of",
    "option",
    "option_specs",
    "parse_options",
    "seconds",
    "url",
]

OptionKind = Kind  # the name backends import


def option(kind: Kind[Any], *, doc: str, default: Any = REQUIRED, name: str | None = None) -> Any:
    """Declare a backend setting. ``name`` overrides the YAML key (defaults to the attribute name)."""
    return declare(kind, doc=doc, default=default, name=name)


def option_specs(cls: type[Any]) -> tuple[Declared, ...]:
    """The settings a config dataclass declares, in declaration order."""
    return declared(cls)


C = TypeVar("C")


def parse_options(cls: type[C], values: Mapping[str, Any], where: str, *, from_env: bool = False) -> C:
    """Build ``cls`` from a YAML mapping (or, ``from_env``, variable texts); errors name ``where.<field>``."""

    def resolve_secret(name: str, value: Any) -> None:
        if isinstance(value, SecretRef):
            value.check(f"{where}.{name}")

    try:
        return build(cls, values, from_env=from_env, check=resolve_secret)
    except FieldProblem as problem:
        path = f"{where}.{problem.key}"
        field = problem.field
        if field is None:
            accepted = ", ".join(spec.name for spec in declared(cls)) or "none"
            raise ConfigProblem(path, "is not a known setting", f"remove it; accepted settings: {accepted}") from None
        if problem.reason == "missing":
            raise ConfigProblem(path, "is required", f"set it to {field.kind.form} ({field.doc})") from None
        raise ConfigProblem(path, problem.problem, f"use {field.kind.form}") from None
