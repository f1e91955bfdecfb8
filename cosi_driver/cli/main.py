"""``cosi-driver``: the command line. Thin: parse arguments, hand over to a subcommand module.

Each subcommand module declares its arguments at import time and keeps its heavy imports inside
``run()``, so ``--help`` is instant and ``cosi-driver call`` never loads the server.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from cosi_driver import __version__

# name -> (module, one-line help). Each module has register(subparser) and run(args) -> int.
COMMANDS = {
    "serve": ("cosi_driver.cli.serve", "serve the COSI Identity and Provisioner services on a UNIX socket"),
    "call": ("cosi_driver.cli.call", "call any COSI driver endpoint from the shell (JSON output)"),
    "docs": ("cosi_driver.cli.docs", "print reference tables (settings, parameters) generated from the code"),
    "bootstrap": ("cosi_driver.cli.bootstrap", "generate a new driver project that uses cosi-driver as a library"),
    "emulate": (
        "cosi_driver.cli.emulate",
        "replay the v0.2.2 (or --api v1alpha2) sidecar's calls for a claim and an access; report what users see",
    ),
    "conformance": (
        "cosi_driver.cli.conformance",
        "check any COSI driver endpoint against the spec and the real sidecar",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cosi-driver",
        description="A Kubernetes COSI driver (v1alpha1 and v1alpha2) with pluggable storage backends.",
    )
    parser.add_argument("--version", action="version", version=f"cosi-driver {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module.register(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    code: int = args._module.run(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
