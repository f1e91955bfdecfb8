"""Typed schemas for BucketClass and BucketAccessClass parameters.

On the wire, parameters are plain ``map<string,string>``. A backend declares what it accepts as a
frozen dataclass whose fields are made with :func:`param`; the core parses the map into that
dataclass once, before the backend is called, so a backend only ever sees typed values.

Where the idea is the same across storage systems, backends share one portable vocabulary (the
mixins below) so that users can copy a BucketClass from one backend to another. Names follow
what the COSI ecosystem already uses (``maxSizePerBucket`` / ``maxObjectsPerBucket`` agreed by
the Ceph and NooBaa COSI drivers).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from cosi_driver.core.declared import declared_fields
from cosi_driver.core.errors import InvalidArgument
from cosi_driver.core.types import AccessMode
from cosi_driver.core.values import QUANTITY_FORM, ValueProblem, parse_bool, parse_int, parse_quantity

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

_META = "cosi_param"

#: The parameter that routes a BucketClass to one of several configured backends. It is handled
#: by the core's router and never reaches a backend.
BACKEND_PARAMETER = "backend"
#: The BucketAccessClass parameter giving a v1alpha1 grant its mode (v1alpha2 gives one per bucket).
ACCESS_MODE_PARAMETER = "accessMode"


@dataclass(frozen=True)
class Kind(Generic[T]):
    """How one parameter's string turns into a value, and how it is written back canonically."""

    form: str
    parse: Callable[[str], T]
    render: Callable[[T], str] = str


def choice(enum_type: type[E]) -> Kind[E]:
    values = [str(member.value) for member in enum_type]

    def parse(text: str) -> E:
        lowered = text.strip().lower()
        for member in enum_type:
            if str(member.value) == lowered:
                return member
        raise ValueProblem(f"must be one of {', '.join(values)}, not {text!r}")

    return Kind(form=" | ".join(values), parse=parse, render=lambda member: str(member.value))


BOOL: Kind[bool] = Kind(form="true | false", parse=parse_bool, render=lambda v: "true" if v else "false")
COUNT: Kind[int] = Kind(form="a whole number >= 0", parse=lambda text: parse_int(text, minimum=0))
QUANTITY: Kind[int] = Kind(form=QUANTITY_FORM, parse=parse_quantity)


@dataclass(frozen=True)
class ParamSpec:
    """One accepted parameter, as documentation and validation see it."""

    wire: str
    attribute: str
    kind: Kind[Any]
    default: Any
    doc: str
    portable: bool

    def render_default(self) -> str:
        return "(unset)" if self.default is None else self.kind.render(self.default)


def param(wire: str, kind: Kind[Any], *, default: Any, doc: str, portable: bool = False) -> Any:
    """Declare a dataclass field as the parameter ``wire`` (its name in the BucketClass)."""
    meta = {"wire": wire, "kind": kind, "doc": doc, "portable": portable}
    return field(default=default, metadata={_META: meta})


class DeletionPolicy(enum.Enum):
    """What DeleteBucket does with a bucket, on top of Kubernetes' own Retain/Delete."""

    RETAIN = "retain"
    DELETE = "delete"
    PURGE = "purge"


@dataclass(frozen=True)
class Params:
    """Base of every parameter dataclass."""

    _schema_title: ClassVar[str] = "parameters"


@dataclass(frozen=True)
class BucketParams(Params):
    """Every backend accepts a deletion policy: deleting buckets is the core's business."""

    deletion_policy: DeletionPolicy = param(
        "deletionPolicy",
        choice(DeletionPolicy),
        default=DeletionPolicy.DELETE,
        portable=True,
        doc="retain: DeleteBucket leaves the bucket and its data in storage; delete: delete it "
        "when empty, refuse (FAILED_PRECONDITION) while it holds data; purge: delete it and "
        "everything in it (objects, versions, unfinished uploads).",
    )


@dataclass(frozen=True)
class Versioning:
    """Mixin for backends that can turn on object versioning."""

    versioning: bool = param(
        "versioning", BOOL, default=False, portable=True, doc="Turn on object versioning for the bucket."
    )


@dataclass(frozen=True)
class Quota:
    """Mixin for backends that enforce bucket quotas."""

    max_size: int | None = param(
        "maxSizePerBucket",
        QUANTITY,
        default=None,
        portable=True,
        doc="Upper limit of the bucket's total size, e.g. 10Gi.",
    )
    max_objects: int | None = param(
        "maxObjectsPerBucket",
        COUNT,
        default=None,
        portable=True,
        doc="Upper limit of the number of objects in the bucket.",
    )


@dataclass(frozen=True)
class AccessParams(Params):
    """Every backend grants one of three access modes."""

    access_mode: AccessMode = param(
        ACCESS_MODE_PARAMETER,
        choice(AccessMode),
        default=AccessMode.READ_WRITE,
        portable=True,
        doc="What the credentials may do in the bucket: read (get and list objects), write "
        "(put and delete objects), or readwrite.",
    )


@functools.cache
def _portable_names() -> frozenset[str]:
    names: set[str] = set()
    for cls in (BucketParams, Versioning, Quota, AccessParams):
        names.update(spec.wire for spec in specs(cls))
    return frozenset(names)


def specs(cls: type[Any]) -> tuple[ParamSpec, ...]:
    """The parameters a dataclass declares, in declaration order."""
    return declared_fields(
        cls,
        _META,
        lambda f, meta: ParamSpec(meta["wire"], f.name, meta["kind"], f.default, meta["doc"], meta["portable"]),
        "cosi_driver.core.params.param()",
    )


P = TypeVar("P", bound=Params)


def parse_params(cls: type[P], raw: Mapping[str, str], *, field_name: str, backend: str) -> P:
    """Parse a wire map into ``cls``; every problem is INVALID_ARGUMENT naming the parameter.

    ``field_name`` is the request field (``parameters`` or ``delete_context``) so that the message
    points at what the user must edit.
    """
    accepted = {spec.wire: spec for spec in specs(cls)}
    accepted_list = ", ".join(sorted(accepted)) or "none"
    values: dict[str, Any] = {}
    for key, text in raw.items():
        if key == BACKEND_PARAMETER:
            continue
        spec = accepted.get(key)
        if spec is None:
            if key in _portable_names():
                raise InvalidArgument(
                    f"{field_name}: parameter {key!r} is not supported by backend {backend!r}; "
                    f"its storage cannot honour it. Accepted parameters: {accepted_list}"
                )
            raise InvalidArgument(
                f"{field_name}: unknown parameter {key!r} for backend {backend!r}. Accepted parameters: {accepted_list}"
            )
        try:
            values[spec.attribute] = spec.kind.parse(text)
        except ValueProblem as problem:
            raise InvalidArgument(
                f"{field_name}: parameter {key!r} {problem}. Accepted form: {spec.kind.form}"
            ) from None
    return cls(**values)


def to_wire(params: Params) -> dict[str, str]:
    """The canonical string form of parsed parameters (defaults included)."""
    out = {}
    for spec in specs(type(params)):
        value = getattr(params, spec.attribute)
        if value is not None:
            out[spec.wire] = spec.kind.render(value)
    return out


def fingerprint(backend: str, params: Params) -> str:
    """A stable digest of what the parameters ask for.

    Parsed values are compared, so ``10Gi`` and ``10737418240`` are the same request. Values equal
    to their default are left out, so a parameter added in a later release (or spelled out at its
    default) does not turn a retried Create of an existing bucket into a conflict.
    """
    chosen = {
        spec.wire: spec.kind.render(getattr(params, spec.attribute))
        for spec in specs(type(params))
        if getattr(params, spec.attribute) != spec.default
    }
    canonical = json.dumps({"backend": backend, "params": chosen}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
