"""Typed configuration schemas for backends, checked once at start-up.

A backend declares its ``config:`` block as a frozen dataclass whose fields are made with
:func:`option`. The same declaration parses YAML values (already typed) and environment strings
(the one-backend case), produces the documentation table, and yields errors that name the exact
path of the bad field and how to fix it.

Secret values are never inline in the dataclass: a :class:`SecretRef` field holds a reference
(environment variable, file, or, discouraged, an inline literal) that is resolved when needed, so
rotated credentials mounted from a Kubernetes Secret are picked up without a restart.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from cosi_driver.core.declared import declared_fields
from cosi_driver.core.secret import Secret
from cosi_driver.core.values import ValueProblem, parse_bool, parse_float, parse_int

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

_META = "cosi_option"
REQUIRED: Any = dataclasses.MISSING


class ConfigProblem(ValueError):
    """A configuration error: where it is, what is wrong, and how to fix it."""

    def __init__(self, where: str, problem: str, fix: str = "") -> None:
        self.where, self.problem, self.fix = where, problem, fix
        text = f"{where}: {problem}"
        super().__init__(f"{text}. Fix: {fix}" if fix else text)


@dataclass(frozen=True)
class OptionKind(Generic[T]):
    form: str
    from_text: Callable[[str], T]
    from_yaml: Callable[[Any], T] | None = None  # None: YAML scalars are turned into text first

    def parse(self, value: Any, *, from_env: bool = False) -> T:
        """Parse a YAML value, or (``from_env``) the text of an environment variable."""
        if from_env:
            return self.from_text(str(value))
        if self.from_yaml is not None:
            return self.from_yaml(value)
        if isinstance(value, (dict, list)):
            raise ValueProblem(f"must be {self.form}, not a {'mapping' if isinstance(value, dict) else 'list'}")
        if isinstance(value, bool):
            value = "true" if value else "false"
        return self.from_text(str(value))


def _yaml_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return parse_bool(value)
    raise ValueProblem(f"must be true or false, not {value!r}")


def _yaml_number(minimum: float | None) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, str):
            return parse_float(value, minimum=minimum)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueProblem(f"must be a number, not {value!r}")
        return parse_float(str(value), minimum=minimum)

    return parse


STRING: OptionKind[str] = OptionKind("text", str)
BOOLEAN: OptionKind[bool] = OptionKind("true | false", parse_bool, _yaml_bool)
PATH: OptionKind[Path] = OptionKind("a file system path", lambda text: Path(text).expanduser())


def integer(minimum: int | None = None, maximum: int | None = None) -> OptionKind[int]:
    def parse(text: str) -> int:
        return parse_int(text, minimum=minimum, maximum=maximum)

    return OptionKind("a whole number", parse)


def seconds(minimum: float = 0.0) -> OptionKind[float]:
    return OptionKind("a number of seconds", lambda text: parse_float(text, minimum=minimum), _yaml_number(minimum))


def one_of(*choices: str) -> OptionKind[str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueProblem(f"must be one of {', '.join(choices)}, not {text!r}")
        return text

    return OptionKind(" | ".join(choices), parse)


def url(*schemes: str) -> OptionKind[str]:
    def parse(text: str) -> str:
        scheme, sep, rest = text.partition("://")
        if not sep or scheme not in schemes or not rest:
            raise ValueProblem(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}, not {text!r}")
        return text.rstrip("/")

    return OptionKind(f"a URL ({', '.join(s + '://...' for s in schemes)})", parse)


@dataclass(frozen=True)
class SecretRef:
    """A reference to a secret: resolved on use, re-read from its file when the file changes."""

    env: str | None = None
    file: Path | None = None
    inline: Secret | None = None

    def describe(self) -> str:
        if self.env is not None:
            return f"environment variable {self.env}"
        if self.file is not None:
            return f"file {self.file}"
        return "an inline value"

    def get(self) -> Secret:
        if self.inline is not None:
            return self.inline
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigProblem(self.describe(), "is not set", f"set {self.env} or point the reference elsewhere")
            return Secret(value.strip())
        assert self.file is not None
        return _read_secret_file(self.file)

    def check(self, where: str) -> None:
        """Resolve once at start-up so a missing variable or unreadable file fails fast."""
        try:
            value = self.get()
        except OSError as error:
            raise ConfigProblem(
                where, f"cannot read {self.describe()} ({error.strerror})", "mount the secret file or fix the path"
            ) from None
        except ConfigProblem as problem:
            raise ConfigProblem(where, f"{problem.where} {problem.problem}", problem.fix) from None
        if not value:
            raise ConfigProblem(where, f"{self.describe()} is empty", "put the secret value there")


def _read_secret_file(path: Path) -> Secret:
    stat = path.stat()
    return _read_secret_file_cached(path, stat.st_mtime_ns, stat.st_size, stat.st_ino)


@functools.lru_cache(maxsize=64)
def _read_secret_file_cached(path: Path, mtime_ns: int, size: int, inode: int) -> Secret:
    # The stat triple is part of the cache key: a rotated file (new content or a new inode, as
    # Kubernetes' atomic symlink swap produces) is read again; an unchanged one is not.
    return Secret(path.read_text().strip())


def _secret_from_yaml(value: Any) -> SecretRef:
    if isinstance(value, Mapping):
        keys = set(value)
        if keys == {"env"} and isinstance(value["env"], str) and value["env"]:
            return SecretRef(env=value["env"])
        if keys == {"file"} and isinstance(value["file"], str) and value["file"]:
            return SecretRef(file=Path(value["file"]).expanduser())
        if keys == {"value"} and isinstance(value["value"], str):
            return SecretRef(inline=Secret(value["value"]))
        raise ValueProblem("must be {env: VARIABLE}, {file: /path/to/file} or {value: literal}")
    raise ValueProblem("must be a reference such as {env: VARIABLE} or {file: /path/to/file}, not a bare value")


def _secret_from_text(text: str) -> SecretRef:
    # From the environment the value itself is the secret (the variable is the reference).
    return SecretRef(inline=Secret(text))


SECRET: OptionKind[SecretRef] = OptionKind(
    "{env: VARIABLE} | {file: /path} | {value: literal}", _secret_from_text, _secret_from_yaml
)


@dataclass(frozen=True)
class OptionSpec:
    name: str
    attribute: str
    kind: OptionKind[Any]
    default: Any
    doc: str

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def option(kind: OptionKind[Any], *, doc: str, default: Any = REQUIRED, name: str | None = None) -> Any:
    """Declare a config field. ``name`` overrides the YAML key (defaults to the attribute name)."""
    meta = {"kind": kind, "doc": doc, "name": name}
    if default is REQUIRED:
        return field(metadata={_META: meta})
    return field(default=default, metadata={_META: meta})


def option_specs(cls: type[Any]) -> tuple[OptionSpec, ...]:
    """The settings a config dataclass declares, in declaration order."""
    return declared_fields(
        cls,
        _META,
        lambda f, meta: OptionSpec(
            meta["name"] or f.name,
            f.name,
            meta["kind"],
            f.default if f.default is not dataclasses.MISSING else REQUIRED,
            meta["doc"],
        ),
        "cosi_driver.core.options.option()",
    )


C = TypeVar("C")


def parse_options(cls: type[C], values: Mapping[str, Any], where: str, *, from_env: bool = False) -> C:
    """Build ``cls`` from a YAML mapping (or, ``from_env``, variable texts); errors name ``where.<field>``."""
    specs = {spec.name: spec for spec in option_specs(cls)}
    accepted = ", ".join(specs) or "none"
    for key in values:
        if key not in specs:
            raise ConfigProblem(f"{where}.{key}", "is not a known setting", f"remove it; accepted settings: {accepted}")
    kwargs: dict[str, Any] = {}
    for name, spec in specs.items():
        path = f"{where}.{name}"
        if name not in values or values[name] is None:
            if spec.required:
                raise ConfigProblem(path, "is required", f"set it to {spec.kind.form} ({spec.doc})")
            continue
        try:
            value = values[name]
            # A secret read from a file is given as {file: ...} even in the environment case.
            parsed = spec.kind.parse(value, from_env=from_env and not isinstance(value, Mapping))
        except ValueProblem as problem:
            raise ConfigProblem(path, str(problem), f"use {spec.kind.form}") from None
        if isinstance(parsed, SecretRef):
            parsed.check(path)
        kwargs[spec.attribute] = parsed
    return cls(**kwargs)
