"""Wire compatibility: our protos have upstream's wire shape, our own comments, and matching stubs.

The shape check compiles our proto and the shared upstream copy of the same API version with the
bundled protoc and compares everything that decides the bytes on the wire: package, messages and
their fields (number, type, label, oneof, proto3 optional), enums and their values, and the
services' methods. Options and comments are left out on purpose: ours drop upstream's custom
option extensions, and the comments are ours.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2

from cosi_driver.spec import protogen
from cosi_driver.spec.v1alpha1 import servicer
from tests.fixtures import unavailable
from tests.support import PROJECT_ROOT, SHARED

UPSTREAM_DIR = SHARED / "cosi" / "proto"
SIDECAR_CALLS = {
    "v1alpha1": (
        "cosi.v1alpha1",
        {
            "Identity": {"DriverGetInfo"},
            "Provisioner": {
                "DriverCreateBucket",
                "DriverDeleteBucket",
                "DriverGrantBucketAccess",
                "DriverRevokeBucketAccess",
            },
        },
    ),
    "v1alpha2": (
        "sigs.k8s.io.cosi.v1alpha2",
        {
            "Identity": {"DriverGetInfo"},
            "Provisioner": {
                "DriverCreateBucket",
                "DriverGetExistingBucket",
                "DriverDeleteBucket",
                "DriverGrantBucketAccess",
                "DriverRevokeBucketAccess",
            },
        },
    ),
}

Shape = dict[tuple[str, ...], Any]
versions = pytest.mark.parametrize("version", protogen.VERSIONS)


def ours(version: str) -> Path:
    return protogen.source(PROJECT_ROOT, version)


def upstream(version: str) -> Path:
    path = UPSTREAM_DIR / f"cosi.{version}.proto"
    if not path.exists():
        unavailable(f"the upstream {version} proto is not at {path} (set COSI_SHARED_DIR to the shared kit)")
    return path


def compile_file(proto: Path, tmp_path: Path) -> descriptor_pb2.FileDescriptorProto:
    """The descriptor protoc makes of ``proto`` (imports resolved, not included)."""
    pytest.importorskip("grpc_tools", reason="grpcio-tools is a dev dependency (pip install -e '.[dev]')")
    out = tmp_path / f"{proto.parent.name}-{proto.stem}.pb"
    protogen.run_protoc(proto.parent, Path(proto.name), [f"--descriptor_set_out={out}"])
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    assert len(files) == 1
    return files[0]


def _message_shape(shape: Shape, scope: str, message: descriptor_pb2.DescriptorProto) -> None:
    name = f"{scope}.{message.name}"
    shape[("message", name)] = True
    for field in message.field:
        oneof = message.oneof_decl[field.oneof_index].name if field.HasField("oneof_index") else None
        shape[("field", name, field.name)] = (
            field.number,
            descriptor_pb2.FieldDescriptorProto.Type.Name(field.type),
            field.type_name,
            descriptor_pb2.FieldDescriptorProto.Label.Name(field.label),
            oneof,
            field.proto3_optional,
        )
    for nested in message.nested_type:
        _message_shape(shape, name, nested)
    for enum in message.enum_type:
        _enum_shape(shape, name, enum)


def _enum_shape(shape: Shape, scope: str, enum: descriptor_pb2.EnumDescriptorProto) -> None:
    shape[("enum", f"{scope}.{enum.name}")] = True
    for value in enum.value:
        shape[("enum value", f"{scope}.{enum.name}", value.name)] = value.number


def wire_shape(file: descriptor_pb2.FileDescriptorProto) -> Shape:
    """Everything in ``file`` that decides the wire format, as flat entries; no options, no comments."""
    shape: Shape = {("package",): file.package}
    for message in file.message_type:
        _message_shape(shape, file.package, message)
    for enum in file.enum_type:
        _enum_shape(shape, file.package, enum)
    for service in file.service:
        full = f"{file.package}.{service.name}"
        shape[("service", full)] = True
        for method in service.method:
            shape[("method", full, method.name)] = (
                method.input_type,
                method.output_type,
                method.client_streaming,
                method.server_streaming,
            )
    return shape


def differences(mine: Shape, theirs: Shape) -> list[str]:
    """One readable line per entry that is missing on one side or differs."""
    return [
        f"{' '.join(key)}: ours {mine.get(key, '<missing>')!r}, upstream {theirs.get(key, '<missing>')!r}"
        for key in sorted(mine.keys() | theirs.keys())
        if mine.get(key, "<missing>") != theirs.get(key, "<missing>")
    ]


@versions
def test_our_proto_has_the_upstream_wire_shape(version: str, tmp_path: Path) -> None:
    theirs = wire_shape(compile_file(upstream(version), tmp_path))
    mine = wire_shape(compile_file(ours(version), tmp_path))
    assert len(mine) > 40  # the comparison looks at a real file, not an empty one
    assert differences(mine, theirs) == []


def test_the_shape_comparison_reports_a_changed_field_number_and_enum_value(tmp_path: Path) -> None:
    file = compile_file(ours("v1alpha1"), tmp_path)
    original = wire_shape(file)
    request = next(m for m in file.message_type if m.name == "DriverGrantBucketAccessRequest")
    next(f for f in request.field if f.name == "name").number = 9
    next(e for e in file.enum_type if e.name == "AuthenticationType").value[2].number = 5
    found = differences(wire_shape(file), original)
    assert found == [
        "enum value cosi.v1alpha1.AuthenticationType IAM: ours 5, upstream 2",
        "field cosi.v1alpha1.DriverGrantBucketAccessRequest name: ours "
        "(9, 'TYPE_STRING', '', 'LABEL_OPTIONAL', None, False), "
        "upstream (2, 'TYPE_STRING', '', 'LABEL_OPTIONAL', None, False)",
    ]


def test_a_proto_edited_on_disk_fails_the_shape_comparison(tmp_path: Path) -> None:
    """The whole path, protoc included: renumber one field in a copy of our v1alpha2 proto."""
    text = ours("v1alpha2").read_text()
    edited, count = re.subn(r"string account_id = 1;", "string account_id = 11;", text, count=1)
    assert count == 1
    copy = tmp_path / "edited" / "cosi.proto"
    copy.parent.mkdir()
    copy.write_text(edited)
    found = differences(wire_shape(compile_file(copy, tmp_path)), wire_shape(compile_file(ours("v1alpha2"), tmp_path)))
    assert len(found) == 1
    assert found[0].startswith("field sigs.k8s.io.cosi.v1alpha2.DriverGrantBucketAccessResponse account_id: ours (11,")


def comment_lines(text: str) -> Iterable[str]:
    """The text of every ``//`` comment, without the slashes and surrounding whitespace."""
    for line in text.splitlines():
        _, slashes, comment = line.partition("//")
        if slashes:
            yield " ".join(comment.split())


@versions
def test_our_comments_repeat_no_upstream_comment_line(version: str) -> None:
    mine = " ".join(comment_lines(ours(version).read_text()))
    copied = [line for line in comment_lines(upstream(version).read_text()) if len(line) >= 30 and line in mine]
    assert copied == [], f"proto/{version}/cosi.proto repeats upstream comment lines word for word: {copied}"


def test_our_protos_declare_no_custom_options() -> None:
    """Upstream's option extensions are not on the wire, and two files declaring them cannot share a process."""
    for version in protogen.VERSIONS:
        text = ours(version).read_text()
        assert "extend " not in text
        assert "descriptor.proto" not in text


@versions
def test_committed_stubs_are_what_make_proto_generates(version: str, tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools is a dev dependency (pip install -e '.[dev]')")
    for generated in protogen.generate(ours(version), tmp_path, version):
        committed = PROJECT_ROOT / generated.relative_to(tmp_path)
        assert committed.read_bytes() == generated.read_bytes(), f"{committed} drifted: run make proto"


@versions
def test_stub_descriptor_matches_a_fresh_compile(version: str, tmp_path: Path) -> None:
    """Independent of generator version: the descriptor the stubs register equals the proto's."""
    pytest.importorskip("grpc_tools")
    generated = protogen.generate(ours(version), tmp_path, version)[0]
    source = generated.read_text()
    start = source.index("AddSerializedFile(") + len("AddSerializedFile(")
    fresh = ast.literal_eval(source[start : source.index(")\n", start)])  # the bytes literal protoc emitted
    stubs = importlib.import_module(f"cosi_driver.spec.{version}.cosi_pb2")
    assert stubs.DESCRIPTOR.serialized_pb == fresh
    assert stubs.DESCRIPTOR.name == f"cosi_driver/spec/{version}/cosi.proto"


@versions
def test_package_and_services_are_the_ones_the_sidecar_calls(version: str) -> None:
    package, services = SIDECAR_CALLS[version]
    stubs = importlib.import_module(f"cosi_driver.spec.{version}.cosi_pb2")
    assert stubs.DESCRIPTOR.package == package
    found = {
        name: {method.name for method in service.methods} for name, service in stubs.DESCRIPTOR.services_by_name.items()
    }
    assert found == services
    assert {s.full_name for s in stubs.DESCRIPTOR.services_by_name.values()} == {f"{package}.{n}" for n in services}


def test_the_v1alpha1_servicers_register_the_v1alpha1_services() -> None:
    assert set(servicer.SERVICE_NAMES) == {"cosi.v1alpha1.Identity", "cosi.v1alpha1.Provisioner"}


def test_both_versions_load_into_one_fresh_interpreter() -> None:
    """A server offering both APIs needs both stub sets in one descriptor pool."""
    program = (
        "from google.protobuf import descriptor_pool\n"
        "from cosi_driver.spec.v1alpha1 import cosi_pb2 as a, cosi_pb2_grpc\n"
        "from cosi_driver.spec.v1alpha2 import cosi_pb2 as b, cosi_pb2_grpc\n"
        "pool = descriptor_pool.Default()\n"
        "for name in ('cosi.v1alpha1.Provisioner', 'sigs.k8s.io.cosi.v1alpha2.Provisioner'):\n"
        "    print(pool.FindServiceByName(name).full_name)\n"
        "print(b.DriverGetExistingBucketRequest(existing_bucket_id='x').SerializeToString().hex())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["cosi.v1alpha1.Provisioner", "sigs.k8s.io.cosi.v1alpha2.Provisioner", "0a0178"]
