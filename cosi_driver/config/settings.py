"""The driver process's settings: environment variables, overridden by ``serve`` flags.

One table (:data:`SETTINGS`) declares every variable with its flag, form, default and meaning;
it drives parsing, the ``--help`` text and the settings table in docs/configuration.md, so they cannot
drift apart. Every problem is reported at start-up naming the variable and the fix.

``COSI_ENDPOINT`` is the spec's; ``X_COSI_ENDPOINT_*`` are gocosi's names for the socket's mode
and owner. The spec reserves the bare ``COSI_`` prefix for itself; our own settings use the
``COSI_DRIVER_`` namespace beneath it.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosi_driver.core.driver import DEFAULT_BACKEND_TIMEOUT, DEFAULT_HEALTH_TIMEOUT
from cosi_driver.core.options import BOOLEAN, PATH, ConfigProblem, OptionKind, integer, one_of, seconds
from cosi_driver.core.secret import Secret
from cosi_driver.core.values import ValueProblem, parse_driver_name, parse_octal_mode

DEFAULT_ENDPOINT = "unix:///var/lib/cosi/cosi.sock"
DEFAULT_DRIVER_NAME = "cosi-driver.objectstorage.local"
#: The COSI API versions ``serve`` can offer on its socket, in the order they are registered.
API_VERSIONS = ("v1alpha1", "v1alpha2")


def _parse_endpoint(text: str) -> Path:
    if text.startswith("unix://"):
        path = text[len("unix://") :]
        if not path.startswith("/"):
            raise ValueProblem(f"must be unix:///absolute/path.sock (three slashes), not {text!r}")
    elif text.startswith("unix:"):
        path = text[len("unix:") :]
    else:
        raise ValueProblem(f"must be a UNIX socket endpoint such as {DEFAULT_ENDPOINT}, not {text!r}")
    if not path.endswith(".sock"):
        raise ValueProblem(f"must end with .sock, as the COSI spec requires, not {text!r}")
    return Path(os.path.abspath(path))


def _parse_user(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        raise ValueProblem(f"names no user on this system: {text!r}; use a user name or a numeric uid") from None


def _parse_group(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise ValueProblem(f"names no group on this system: {text!r}; use a group name or a numeric gid") from None


def _parse_http_addr(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueProblem(f"must be host:port such as 127.0.0.1:8080 or :8080 (every interface), not {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if any(c.isspace() or c in "/[]" for c in host):
        raise ValueProblem(f"has an invalid host part {host!r}")
    return host, int(port)


def _parse_apis(text: str) -> tuple[str, ...]:
    """A comma-separated subset of :data:`API_VERSIONS`; one sidecar generation per cluster needs one."""
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in API_VERSIONS]
    if unknown or not chosen:
        named = f"unknown API {', '.join(repr(u) for u in unknown)}" if unknown else "names no API"
        raise ValueProblem(f"{named}; choose from {', '.join(API_VERSIONS)} (comma-separated), not {text!r}")
    return tuple(version for version in API_VERSIONS if version in chosen)


ENDPOINT: OptionKind[Path] = OptionKind("unix:///path/to/socket.sock", _parse_endpoint)
MODE: OptionKind[int] = OptionKind("an octal mode such as 0660", parse_octal_mode)
USER: OptionKind[int] = OptionKind("a user name or numeric uid", _parse_user)
GROUP: OptionKind[int] = OptionKind("a group name or numeric gid", _parse_group)
DRIVER_NAME: OptionKind[str] = OptionKind("a DNS-style name such as objectstorage.example.com", parse_driver_name)
HTTP_ADDR: OptionKind[tuple[str, int]] = OptionKind("host:port, e.g. :8080 or 127.0.0.1:8080", _parse_http_addr)
APIS: OptionKind[tuple[str, ...]] = OptionKind("a comma-separated list of " + " and ".join(API_VERSIONS), _parse_apis)


@dataclass(frozen=True)
class Setting:
    env: str
    flag: str
    attribute: str
    kind: OptionKind[Any]
    default: str | None
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting("COSI_ENDPOINT", "--endpoint", "endpoint", ENDPOINT, DEFAULT_ENDPOINT,
            "UNIX socket the driver listens on; the provisioner sidecar connects to it."),
    Setting("X_COSI_ENDPOINT_PERMS", "--socket-perms", "socket_mode", MODE, "0660",
            "Mode of the socket file, set from the instant it exists."),
    Setting("X_COSI_ENDPOINT_USER", "--socket-user", "socket_uid", USER, None,
            "Owner of the socket (name or uid); default: the driver's own user."),
    Setting("X_COSI_ENDPOINT_GROUP", "--socket-group", "socket_gid", GROUP, None,
            "Group of the socket (name or gid); give the sidecar's group here with mode 0660."),
    Setting("COSI_DRIVER_APIS", "--apis", "apis", APIS, ",".join(API_VERSIONS),
            "COSI API versions served on the one socket: v1alpha1 (the v0.2.2 sidecar), v1alpha2 (the "
            "v1alpha2 sidecar), or both."),
    Setting("COSI_DRIVER_NAME", "--name", "driver_name", DRIVER_NAME, DEFAULT_DRIVER_NAME,
            "Name returned by DriverGetInfo; BucketClasses select the driver by it. Checked by the "
            "stricter v1alpha2 rule (at most 63 characters, lowercase DNS labels starting with a letter)."),
    Setting("COSI_DRIVER_CONFIG", "--config", "config_file", PATH, None,
            "YAML file declaring one or more backends (see Configuration file). Mutually exclusive "
            "with COSI_DRIVER_BACKEND."),
    Setting("COSI_DRIVER_BACKEND", "--backend", "backend_type", OptionKind("a backend type", str), None,
            "Type of the single backend when no config file is given; one of the two is required (serve "
            "refuses to start without a backend). Its settings come from COSI_DRIVER_BACKEND_<SETTING> variables."),
    Setting("COSI_DRIVER_STATE_DIR", "--state-dir", "state_dir", PATH, "/var/lib/cosi-driver/state",
            "Directory of the driver's file state store (ownership records, stored credentials)."),
    Setting("COSI_DRIVER_MASTER_KEY_FILE", "--master-key-file", "master_key_file", PATH, None,
            "File holding the master key from which backends that choose their own keys derive "
            "credentials (at least 32 bytes). Required only by such backends."),
    Setting("COSI_DRIVER_MASTER_KEY", "", "master_key", OptionKind("a secret of at least 32 bytes", Secret), None,
            "The master key itself, for local runs; prefer COSI_DRIVER_MASTER_KEY_FILE."),
    Setting("COSI_DRIVER_MASTER_KEY_VERSION", "--master-key-version", "master_key_version", integer(1), "1",
            "Version of the master key, recorded in account ids; raise it when the key is rotated."),
    Setting("COSI_DRIVER_OPERATION_TIMEOUT", "--operation-timeout", "operation_timeout", seconds(0.1),
            f"{DEFAULT_BACKEND_TIMEOUT:g}",
            "Seconds any single backend operation may take before the call fails with DEADLINE_EXCEEDED "
            "(the sidecar sets no deadline of its own)."),
    Setting("COSI_DRIVER_SHUTDOWN_GRACE", "--shutdown-grace", "shutdown_grace", seconds(0.0), "10",
            "Seconds in-flight calls may take to finish after SIGTERM/SIGINT."),
    Setting("COSI_DRIVER_HTTP_ADDR", "--http-addr", "http_addr", HTTP_ADDR, None,
            "host:port of the HTTP endpoint serving /livez, /readyz and /metrics (Prometheus); :PORT listens on "
            "every interface, as kubelet probes need. Unset: no HTTP server."),
    Setting("COSI_DRIVER_HEALTH_TIMEOUT", "--health-timeout", "health_timeout", seconds(0.1),
            f"{DEFAULT_HEALTH_TIMEOUT:g}",
            "Seconds each backend has to answer a readiness check before it counts as not ready."),
    Setting("COSI_DRIVER_GRPC_REFLECTION", "--grpc-reflection", "grpc_reflection", BOOLEAN, "false",
            "Serve gRPC server reflection on the COSI socket (for grpcurl). Needs the reflection extra."),
    Setting("COSI_DRIVER_LOG_LEVEL", "--log-level", "log_level",
            one_of("debug", "info", "warning", "error"), "info", "Log level."),
    Setting("COSI_DRIVER_LOG_FORMAT", "--log-format", "log_format",
            one_of("auto", "json", "console"), "auto",
            "json, console, or auto (console on a terminal, JSON otherwise)."),
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    endpoint: Path
    socket_mode: int
    socket_uid: int | None
    socket_gid: int | None
    apis: tuple[str, ...]
    driver_name: str
    config_file: Path | None
    backend_type: str | None
    state_dir: Path
    master_key_file: Path | None
    master_key: Secret | None
    master_key_version: int
    operation_timeout: float
    shutdown_grace: float
    http_addr: tuple[str, int] | None
    health_timeout: float
    grpc_reflection: bool
    log_level: str
    log_format: str


def load_settings(environ: Mapping[str, str], overrides: Mapping[str, str] | None = None) -> Settings:
    """Parse every setting; ``overrides`` maps variable names to flag values given on the command line."""
    merged = {**environ, **(overrides or {})}
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        text = merged.get(setting.env)
        if text is None or text == "":
            values[setting.attribute] = None if setting.default is None else setting.kind.parse(setting.default)
            continue
        try:
            values[setting.attribute] = setting.kind.parse(text)
        except ValueProblem as problem:
            source = setting.flag if overrides and setting.env in overrides else setting.env
            also = f" (or {setting.flag})" if setting.flag else ""
            raise ConfigProblem(source, str(problem), f"set {setting.env}{also} to {setting.kind.form}") from None
    return Settings(**values)
