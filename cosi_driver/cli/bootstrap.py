"""``cosi-driver bootstrap NAME``: generate a new driver project that uses cosi-driver as a library.

The project works from the first minute (its backend talks to a stand-in storage kept in a file)
and has its own ``make run`` / ``make test``, acceptance and conformance tests, Dockerfile,
kustomize manifests, Helm chart and CI entry point.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="project name: distribution, image, namespace and chart (e.g. acme-objects)")
    parser.add_argument(
        "--driver-name",
        help="name in DriverGetInfo, checked by the spec's v1alpha2 rule "
        "(default: NAME.objectstorage.example.com; use your own domain)",
    )
    parser.add_argument("--package", help="Python package name (default: NAME with '-' as '_')")
    parser.add_argument("--backend-type", help="backend type, the entry point's name (default: NAME)")
    parser.add_argument("--output", type=Path, help="directory to create (default: ./NAME)")
    parser.add_argument("--force", action="store_true", help="write into an existing directory, replacing files")


def run(args: argparse.Namespace) -> int:
    from cosi_driver.scaffold import ScaffoldProblem, generate, installed_source, make_spec

    source = installed_source()
    try:
        spec = make_spec(
            args.name,
            package=args.package,
            driver_name=args.driver_name,
            backend_type=args.backend_type,
            cosi_driver_source=source.requirement if source is not None else "",
        )
        output = args.output if args.output is not None else Path(args.name)
        written = generate(spec, output, force=args.force)
    except ScaffoldProblem as problem:
        print(f"cosi-driver bootstrap: {problem}", file=sys.stderr)
        return 2
    print(f"Created {output}/ ({len(written)} files): driver {spec.driver_name}, backend type {spec.backend_type}.")
    print(f"  {spec.package}/vendor.py   the stand-in storage API: replace the VENDOR API methods")
    print(f"  {spec.package}/backend.py  the COSI contract in terms of that API")
    if source is not None:
        # cosi-driver is not on the package index: the project must install this very one.
        print(
            f"This cosi-driver was installed from a {source.kind}, not a package index: the Makefile installs it "
            f"from {source.requirement} (COSI_DRIVER; override with make test COSI_DRIVER=...)."
        )
    print("Next:")
    print(f"  cd {output} && make test   # acceptance suite, conformance and sidecar emulation")
    print("  make run                    # serve on ./.run/cosi.sock")
    if args.driver_name is None:
        print(f"Choose a driver name in your own domain: --driver-name (now {spec.driver_name}).")
    return 0
