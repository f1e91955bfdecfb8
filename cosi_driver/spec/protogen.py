"""Compile ``proto/<version>/cosi.proto`` into Python stubs (``make proto``, and the drift tests).

Each proto is staged as ``cosi_driver/spec/<version>/cosi.proto`` before protoc sees it, so
the descriptor each stub module registers is named after the package it lives in. Distinct
names (and no custom option extensions in our protos) are what let the v1alpha1 and v1alpha2
modules share one descriptor pool: a server can then register both APIs side by side.
The staged path also makes the generated ``_grpc`` module import its messages absolutely.

grpcio-tools is a development dependency only, so it is imported inside the functions.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

VERSIONS = ("v1alpha1", "v1alpha2")
OUTPUTS = ("cosi_pb2.py", "cosi_pb2.pyi", "cosi_pb2_grpc.py")


def package_dir(version: str) -> Path:
    """Where the stubs of ``version`` live, relative to the project root; also their proto path."""
    return Path("cosi_driver/spec") / version


def source(root: Path, version: str) -> Path:
    """The proto of ``version`` in a checkout rooted at ``root``."""
    return root / "proto" / version / "cosi.proto"


def run_protoc(include: Path, proto: Path, args: list[str]) -> None:
    """Run the bundled protoc on ``proto`` (relative to ``include``) with extra output ``args``."""
    import grpc_tools
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    rc = protoc.main(["grpc_tools.protoc", f"-I{include}", f"-I{well_known}", *args, str(proto)])
    if rc != 0:
        raise RuntimeError(f"protoc failed with exit code {rc} for {include / proto}")


def generate(proto_file: Path, out_root: Path, version: str) -> list[Path]:
    """Compile ``proto_file`` into ``out_root/cosi_driver/spec/<version>/``; return the files written."""
    target = package_dir(version)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / target / "cosi.proto"
        staged.parent.mkdir(parents=True)
        shutil.copyfile(proto_file, staged)
        (out_root / target).mkdir(parents=True, exist_ok=True)
        args = [f"--python_out={out_root}", f"--pyi_out={out_root}", f"--grpc_python_out={out_root}"]
        run_protoc(Path(tmp), staged.relative_to(tmp), args)
    return [out_root / target / name for name in OUTPUTS]


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    for version in VERSIONS:
        for path in generate(source(root, version), root, version):
            print(f"wrote {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
