"""Generate the Python stubs for ``proto/cosi.proto`` (``make proto``, and the drift test).

The upstream file is used byte for byte, but it is compiled from a copy placed at
``cosi_driver/spec/v1alpha1/cosi.proto`` so that the descriptor is registered under a path that
belongs to this package and the generated gRPC module imports its messages absolutely. The
v1alpha2 file declares the same option extensions; giving each version its own proto path is what
will let both load into one process later (see ``../shared/cosi/SIDECAR.md``).

grpcio-tools is a development dependency only, so it is imported inside the function.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

PACKAGE_DIR = Path("cosi_driver/spec/v1alpha1")
OUTPUTS = ("cosi_pb2.py", "cosi_pb2.pyi", "cosi_pb2_grpc.py")


def generate(proto_file: Path, out_root: Path) -> list[Path]:
    """Compile ``proto_file`` into ``out_root/cosi_driver/spec/v1alpha1/``; return the files written."""
    import grpc_tools
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / PACKAGE_DIR / "cosi.proto"
        staged.parent.mkdir(parents=True)
        shutil.copyfile(proto_file, staged)
        (out_root / PACKAGE_DIR).mkdir(parents=True, exist_ok=True)
        well_known = Path(grpc_tools.__file__).parent / "_proto"
        rc = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{tmp}",
                f"-I{well_known}",
                f"--python_out={out_root}",
                f"--pyi_out={out_root}",
                f"--grpc_python_out={out_root}",
                str(staged.relative_to(tmp)),
            ]
        )
        if rc != 0:
            raise RuntimeError(f"protoc failed with exit code {rc} for {proto_file}")
    return [out_root / PACKAGE_DIR / name for name in OUTPUTS]


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    for path in generate(root / "proto" / "cosi.proto", root):
        print(f"wrote {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
