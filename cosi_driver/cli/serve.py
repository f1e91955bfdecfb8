"""``cosi-driver serve``: every setting from the environment; flags override."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING, Any

from cosi_driver.config.settings import SETTINGS

if TYPE_CHECKING:
    pass


def register(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "Every flag overrides the environment variable named in its help."
    for setting in SETTINGS:
        if not setting.flag:
            continue
        default = f" (default: {setting.render_default()})" if setting.default is not None else ""
        parser.add_argument(
            setting.flag,
            dest=f"setting_{setting.attribute}",
            metavar=setting.env,
            help=f"{setting.doc} [env {setting.env}]{default}",
        )


def run(args: argparse.Namespace) -> int:
    from cosi_driver.core.options import ConfigProblem
    from cosi_driver.transport.socket import SocketError

    overrides = {
        setting.env: getattr(args, f"setting_{setting.attribute}")
        for setting in SETTINGS
        if setting.flag and getattr(args, f"setting_{setting.attribute}", None) is not None
    }
    try:
        return asyncio.run(serve(overrides))
    except ConfigProblem as problem:
        print(f"cosi-driver: configuration error: {problem}", file=sys.stderr)
        return 2
    except SocketError as error:
        print(f"cosi-driver: cannot serve: {error}", file=sys.stderr)
        return 1


async def serve(overrides: dict[str, str], *, span_exporter: Any = None) -> int:
    """Serve until SIGTERM/SIGINT; the process is built by :func:`cosi_driver.app.run`."""
    from cosi_driver.app import Hooks, run

    hooks = Hooks(span_exporter=span_exporter, install_globals=True)
    return await run(os.environ, overrides, hooks)
