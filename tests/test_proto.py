"""Wire compatibility: the proto is upstream's byte for byte and the committed stubs match it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from cosi_driver.spec import protogen
from cosi_driver.spec.v1alpha1 import cosi_pb2, servicer
from tests.support import PROJECT_ROOT, SHARED

PROTO = PROJECT_ROOT / "proto" / "cosi.proto"


def test_proto_is_the_upstream_v1alpha1_file_byte_for_byte() -> None:
    upstream = SHARED / "cosi" / "proto" / "cosi.v1alpha1.proto"
    if not upstream.exists():
        pytest.skip(f"upstream copy not found at {upstream}")
    assert PROTO.read_bytes() == upstream.read_bytes()


def test_committed_stubs_are_what_make_proto_generates(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools is a dev dependency (pip install -e '.[dev]')")
    for generated in protogen.generate(PROTO, tmp_path):
        committed = PROJECT_ROOT / generated.relative_to(tmp_path)
        assert committed.read_bytes() == generated.read_bytes(), f"{committed.name} drifted: run make proto"


def test_stub_descriptor_matches_a_fresh_compile(tmp_path: Path) -> None:
    """Independent of generator version: the descriptor the stubs register equals the proto's."""
    pytest.importorskip("grpc_tools")
    generated = protogen.generate(PROTO, tmp_path)[0]
    source = generated.read_text()
    start = source.index("AddSerializedFile(") + len("AddSerializedFile(")
    fresh = ast.literal_eval(source[start : source.index(")\n", start)])  # the bytes literal protoc emitted
    assert cosi_pb2.DESCRIPTOR.serialized_pb == fresh


def test_package_and_services_are_the_ones_the_sidecar_calls() -> None:
    assert cosi_pb2.DESCRIPTOR.package == "cosi.v1alpha1"
    assert set(servicer.SERVICE_NAMES) == {"cosi.v1alpha1.Identity", "cosi.v1alpha1.Provisioner"}
    methods = {m.name for m in cosi_pb2.DESCRIPTOR.services_by_name["Provisioner"].methods}
    assert methods == {
        "DriverCreateBucket",
        "DriverDeleteBucket",
        "DriverGrantBucketAccess",
        "DriverRevokeBucketAccess",
    }


def test_stubs_live_under_their_own_proto_path() -> None:
    """A later v1alpha2 module with the same option extensions must be able to load beside it."""
    assert cosi_pb2.DESCRIPTOR.name == "cosi_driver/spec/v1alpha1/cosi.proto"
    assert "cosi_driver.spec.v1alpha1.cosi_pb2" in sys.modules
