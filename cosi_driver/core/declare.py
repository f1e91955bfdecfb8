"""One way to declare configuration: dataclass fields that carry their kind, names and meaning.

The driver's process settings (``config.settings.Settings``), a backend's ``config:`` block
(``core.options``) and BucketClass/BucketAccessClass parameters (``core.params``) are all frozen
dataclasses whose fields are made with :func:`declare`. :func:`declared` reads the declarations
back (for the docs tables, ``--help`` and a backend's environment variables), and :func:`build`
is the one parser: it refuses unknown keys, insists on values that have no default and parses
each value by its :class:`~cosi_driver.core.kinds.Kind`. It raises :class:`FieldProblem`, which
each caller words for its audience: a configuration error naming the variable, flag or YAML path
and the fix, or INVALID_ARGUMENT naming the parameter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from cosi_driver.core.kinds import Kind
from cosi_driver.core.values import ValueProblem

_META = "cosi_declared"
#: The default of a field that must be given.
REQUIRED: Any = dataclasses.MISSING


@dataclass(frozen=True)
class Declared:
    """One declared field, as the parser, the docs and ``--help`` see it."""

    name: str  # the key a user writes: a YAML key or a parameter name (the attribute by default)
    attribute: str
    kind: Kind[Any]
    default: Any
    doc: str
    env: str = ""  # process settings: the environment variable
    flag: str = ""  # process settings: the ``serve`` flag, if there is one
    portable: bool = False  # parameters: part of the vocabulary shared by backends

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def wire(self) -> str:
        """A parameter's name in the BucketClass or BucketAccessClass."""
        return self.name

    def render_default(self) -> str:
        return "(unset)" if self.default is None else self.kind.render(self.default)


def declare(
    kind: Kind[Any],
    *,
    doc: str,
    default: Any = REQUIRED,
    name: str | None = None,
    env: str = "",
    flag: str = "",
    portable: bool = False,
) -> Any:
    """A dataclass field declared as ``kind``; ``name`` is the key users write (default: the attribute)."""
    meta = Declared(name or "", "", kind, default, doc, env, flag, portable)  # completed by declared()
    if default is REQUIRED:
        return dataclasses.field(metadata={_META: meta})
    return dataclasses.field(default=default, metadata={_META: meta})


_CACHE: dict[type[Any], tuple[Declared, ...]] = {}


def declared(cls: type[Any]) -> tuple[Declared, ...]:
    """The fields ``cls`` declares, in declaration order; every field must be declared."""
    cached = _CACHE.get(cls)
    if cached is None:
        out = []
        for f in dataclasses.fields(cls):
            meta = f.metadata.get(_META)
            if meta is None:
                raise TypeError(f"{cls.__name__}.{f.name} is not declared with setting() or param()")
            out.append(dataclasses.replace(meta, name=meta.name or f.name, attribute=f.name))
        cached = _CACHE[cls] = tuple(out)
    return cached


class FieldProblem(Exception):
    """Why :func:`build` refused its input: the key as the caller spelled it, its field, and what is wrong.

    ``field`` is None for an unknown key. The caller turns this into its own error, with the fix.
    """

    def __init__(
        self, reason: Literal["unknown", "missing", "invalid"], key: str, field: Declared | None, problem: str
    ) -> None:
        super().__init__(f"{key} {problem}")
        self.reason, self.key, self.field, self.problem = reason, key, field, problem


def _by_name(field: Declared) -> str:
    return field.name


C = TypeVar("C")


def build(
    cls: type[C],
    values: Mapping[str, Any],
    *,
    key: Callable[[Declared], str] = _by_name,
    from_env: bool = False,
    given_order: bool = False,
    check: Callable[[str, Any], None] | None = None,
) -> C:
    """Build ``cls`` from ``values`` keyed by ``key(field)``; unset (None) values take the default.

    ``from_env``: the values are texts (variables, flags, parameters) rather than YAML values; a
    mapping (a secret given as ``{file: ...}``) is still read as YAML. The first problem is
    reported: unknown keys first, then the fields in declaration order, or (``given_order``) in
    the order the user wrote the keys. ``check(key, value)`` runs on every parsed value, for
    checks that need the caller's context (resolving a secret).
    """
    fields = {key(field): field for field in declared(cls)}
    if given_order:
        order = [*values, *(name for name in fields if name not in values)]
    else:
        order = [*(name for name in values if name not in fields), *fields]
    kwargs: dict[str, Any] = {}
    for name in order:
        field = fields.get(name)
        if field is None:
            raise FieldProblem("unknown", name, None, "is not known")
        value = values.get(name)
        if value is None:
            if field.required:
                raise FieldProblem("missing", name, field, "is required")
            continue
        try:
            parsed = field.kind.parse(value, from_env=from_env and not isinstance(value, Mapping))
        except ValueProblem as problem:
            raise FieldProblem("invalid", name, field, str(problem)) from None
        if check is not None:
            check(name, parsed)
        kwargs[field.attribute] = parsed
    return cls(**kwargs)
