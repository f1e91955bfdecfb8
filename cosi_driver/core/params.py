"""Typed schemas for BucketClass and BucketAccessClass parameters.

On the wire, parameters are plain ``map<string,string>``. A backend declares what it accepts as a
frozen dataclass whose fields are made with :func:`param` and a kind from
:mod:`cosi_driver.core.kinds`; the core parses the map into that dataclass once, with the shared
parser (:func:`cosi_driver.core.declare.build`), before the backend is called, so a backend only
ever sees typed values.

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from cosi_driver.core.declare import Declared, FieldProblem, build, declare, declared
from cosi_driver.core.errors import InvalidArgument
from cosi_driver.core.kinds import BOOLEAN, COUNT, QUANTITY, Kind, choice
from cosi_driver.core.types import AccessMode

__all__ = [
    "BACKEND_PARAMETER",
    "BOOL",
    "COUNT",
    "QUANTITY",
    "AccessMode",
    "AccessParams",
    "BucketParams",
    "DeletionPolicy",
    "Kind",
    "Params",
    "Quota",
    "Versioning",
    "choice",
    "fingerprint",
    "param",
    "parse_params",
    "specs",
    "to_wire",
]

#: The parameter that routes a BucketClass to one of several configured backends. It is handled
#: by the core's router and never reaches a backend.
BACKEND_PARAMETER = "backend"
#: The BucketAccessClass parameter giving a v1alpha1 grant its mode (v1alpha2 gives one per bucket).
ACCESS_MODE_PARAMETER = "accessMode"

BOOL = BOOLEAN  # the name parameter declarations use


def param(wire: str, kind: Kind[Any], *, default: Any, doc: str, portable: bool = False) -> Any:
    """Declare a dataclass field as the parameter ``wire`` (its name in the BucketClass)."""
    return declare(kind, name=wire, default=default, doc=doc, portable=portable)


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


def specs(cls: type[Any]) -> tuple[Declared, ...]:
    """The parameters a dataclass declares, in declaration order."""
    return declared(cls)


P = TypeVar("P", bound=Params)


def parse_params(cls: type[P], raw: Mapping[str, str], *, field_name: str, backend: str) -> P:
    """Parse a wire map into ``cls``; every problem is INVALID_ARGUMENT naming the parameter.

    ``field_name`` is the request field (``parameters`` or ``delete_context``) so that the message
    points at what the user must edit.
    """
    try:
        wire = {key: text for key, text in raw.items() if key != BACKEND_PARAMETER}
        return build(cls, wire, from_env=True, given_order=True)
    except FieldProblem as problem:
        key = problem.key
        if problem.field is not None:
            raise InvalidArgument(
                f"{field_name}: parameter {key!r} {problem.problem}. Accepted form: {problem.field.kind.form}"
            ) from None
        accepted_list = ", ".join(sorted(spec.wire for spec in specs(cls))) or "none"
        if key in _portable_names():
            raise InvalidArgument(
                f"{field_name}: parameter {key!r} is not supported by backend {backend!r}; "
                f"its storage cannot honour it. Accepted parameters: {accepted_list}"
            ) from None
        raise InvalidArgument(
            f"{field_name}: unknown parameter {key!r} for backend {backend!r}. Accepted parameters: {accepted_list}"
        ) from None


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
