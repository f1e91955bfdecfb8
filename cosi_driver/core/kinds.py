"""The value kinds every declared field uses: process settings, backend settings and parameters.

A :class:`Kind` says which form a value takes (the ``form`` shown in errors and docs), how text
becomes a value (an environment variable, a flag, a BucketClass parameter), how a YAML value does
(already typed, so ``true`` and ``5`` need no quoting), and how a value is written back as text
(parameter fingerprints, documented defaults). One set serves all three audiences, so a
quantity or a duration reads the same in a ``config:`` block as in a BucketClass.

Secret values are never held inline in a configuration: the :data:`SECRET` kind yields a
:class:`SecretRef` (environment variable, file, or, discouraged, an inline literal) resolved on
use, so rotated credentials mounted from a Kubernetes Secret are picked up without a restart.
"""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from cosi_driver.core.secret import Secret
from cosi_driver.core.values import (
    QUANTITY_FORM,
    ConfigProblem,
    ValueProblem,
    parse_bool,
    parse_float,
    parse_int,
    parse_quantity,
)

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)


@dataclass(frozen=True, init=False)
class Kind(Generic[T]):
    """How one declared value is read from text or YAML, and written back as text.

    ``parse=`` is accepted for ``from_text``: parameter kinds were spelled ``Kind(form=...,
    parse=..., render=...)`` before settings and parameters shared one set of kinds, and backends
    written against ``cosi_driver.sdk.ParamKind`` still spell them so.
    """

    form: str
    from_text: Callable[[str], T]
    from_yaml: Callable[[Any], T] | None  # None: YAML scalars are turned into text first
    render: Callable[[T], str]

    def __init__(
        self,
        form: str,
        from_text: Callable[[str], T] | None = None,
        from_yaml: Callable[[Any], T] | None = None,
        render: Callable[[T], str] = str,
        *,
        parse: Callable[[str], T] | None = None,
    ) -> None:
        text = from_text if from_text is not None else parse
        if text is None:
            raise TypeError("a Kind needs a text parser: Kind(form, from_text)")
        for name, value in (("form", form), ("from_text", text), ("from_yaml", from_yaml), ("render", render)):
            object.__setattr__(self, name, value)

    def parse(self, value: Any, *, from_env: bool = False) -> T:
        """Parse a YAML value, or (``from_env``) the text of a variable, flag or parameter."""
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


STRING: Kind[str] = Kind("text", str)
BOOLEAN: Kind[bool] = Kind("true | false", parse_bool, _yaml_bool, lambda value: "true" if value else "false")
PATH: Kind[Path] = Kind("a file system path", lambda text: Path(text).expanduser())
QUANTITY: Kind[int] = Kind(QUANTITY_FORM, parse_quantity)


def integer(minimum: int | None = None, maximum: int | None = None, *, form: str = "a whole number") -> Kind[int]:
    def parse(text: str) -> int:
        return parse_int(text, minimum=minimum, maximum=maximum)

    return Kind(form, parse)


COUNT: Kind[int] = integer(0, form="a whole number >= 0")


def seconds(minimum: float = 0.0) -> Kind[float]:
    """A duration in seconds; written back without a needless ``.0`` (``30``, ``0.5``)."""
    return Kind(
        "a number of seconds",
        lambda text: parse_float(text, minimum=minimum),
        _yaml_number(minimum),
        lambda value: f"{value:g}",
    )


def _unknown_choice(names: list[str], text: str) -> ValueProblem:
    return ValueProblem(f"must be one of {', '.join(names)}, not {text!r}")


def one_of(*choices: str) -> Kind[str]:
    """One of a few words, exactly as written."""

    def parse(text: str) -> str:
        if text not in choices:
            raise _unknown_choice(list(choices), text)
        return text

    return Kind(" | ".join(choices), parse)


def choice(enum_type: type[E]) -> Kind[E]:
    """A member of ``enum_type`` by its value, ignoring case and surrounding space."""
    names = [str(member.value) for member in enum_type]

    def parse(text: str) -> E:
        lowered = text.strip().lower()
        for member in enum_type:
            if str(member.value) == lowered:
                return member
        raise _unknown_choice(names, text)

    return Kind(" | ".join(names), parse, render=lambda member: str(member.value))


def url(*schemes: str) -> Kind[str]:
    def parse(text: str) -> str:
        scheme, sep, rest = text.partition("://")
        if not sep or scheme not in schemes or not rest:
            raise ValueProblem(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}, not {text!r}")
        return text.rstrip("/")

    return Kind(f"a URL ({', '.join(s + '://...' for s in schemes)})", parse)


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


SECRET: Kind[SecretRef] = Kind(
    "{env: VARIABLE} | {file: /path} | {value: literal}", _secret_from_text, _secret_from_yaml
)
