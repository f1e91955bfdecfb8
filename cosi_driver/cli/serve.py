"""``cosi-driver serve``: every setting from the environment; flags override."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from cosi_driver.config.settings import SETTINGS


def register(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "Every flag overrides the environment variable named in its help."
    for setting in SETTINGS:
        if not setting.flag:
            continue
        default = f" (default: {setting.default})" if setting.default is not None else ""
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
        return asyncio.run(_serve(overrides))
    except ConfigProblem as problem:
        print(f"cosi-driver: configuration error: {problem}", file=sys.stderr)
        return 2
    except SocketError as error:
        print(f"cosi-driver: cannot serve: {error}", file=sys.stderr)
        return 1


async def _serve(overrides: dict[str, str]) -> int:
    import structlog

    from cosi_driver import __version__
    from cosi_driver.config.backends import load_driver_config
    from cosi_driver.config.build import build_driver
    from cosi_driver.config.settings import load_settings
    from cosi_driver.observability.logging import configure, register_secret
    from cosi_driver.transport.server import CosiServer, ServerOptions
    from cosi_driver.transport.socket import SocketSpec

    settings = load_settings(os.environ, overrides)
    configure(settings.log_level, settings.log_format)
    config = load_driver_config(settings, os.environ)
    if config.master_key is not None:
        register_secret(config.master_key.get())
    driver = build_driver(settings, config)
    spec = SocketSpec(settings.endpoint, settings.socket_mode, settings.socket_uid, settings.socket_gid)
    server = CosiServer(driver, spec, ServerOptions(grace_seconds=settings.shutdown_grace))
    log: Any = structlog.get_logger("cosi_driver")
    try:
        await server.start()
    except BaseException:
        await driver.close()
        raise
    log.info(
        "serving",
        version=__version__,
        driver_name=settings.driver_name,
        endpoint=spec.address,
        socket_mode=f"{spec.mode:04o}",
        socket_uid=os.geteuid() if spec.uid is None else spec.uid,
        socket_gid=os.getegid() if spec.gid is None else spec.gid,
        config_source=config.source,
        backends={name: entry.type.type_name for name, entry in config.backends.items()},
        default_backend=config.default,
        pid=os.getpid(),
    )
    await server.wait_for_signal()
    return 0
