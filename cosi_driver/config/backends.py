"""Which backends the driver runs: a YAML file (several backends) or plain environment (one).

The file follows Thanos objstore's shape, a ``type:`` and a ``config:`` per backend::

    backends:
      local:
        type: filesystem
        default: true
        existingBuckets: ["legacy-*"]   # optional: names the driver may take as existing buckets
        config:
          root: /var/lib/cosi-driver/filesystem
      seaweed:
        type: s3
        config:
          endpoint: http://seaweedfs.storage:8333
          access_key_id: {env: SEAWEED_ACCESS_KEY}
          secret_access_key: {file: /etc/cosi-driver/seaweed/secret-key}
    master_key: {file: /etc/cosi-driver/master-key}
    state:
      type: file
      config: {directory: /var/lib/cosi-driver/state}

Without a file, ``COSI_DRIVER_BACKEND`` names one backend type (there is no default: a driver
that silently served a development backend would hand out credentials no client can use) and its
settings come from ``COSI_DRIVER_BACKEND_<SETTING>`` variables (``<SETTING>_FILE`` for a secret
read from a file). Every error names the path of the bad field and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cosi_driver.config.settings import Settings
from cosi_driver.core import registry
from cosi_driver.core.backend import BackendType
from cosi_driver.core.credentials import master_key_problem
from cosi_driver.core.existing import ENVIRONMENT as EXISTING_ENVIRONMENT
from cosi_driver.core.existing import NONE as NO_EXISTING_BUCKETS
from cosi_driver.core.existing import SETTING as EXISTING_SETTING
from cosi_driver.core.existing import ExistingBuckets
from cosi_driver.core.ids import BACKEND_NAME
from cosi_driver.core.options import SECRET, ConfigProblem, SecretRef, option_specs, parse_options
from cosi_driver.core.values import ValueProblem, parse_int

BACKEND_ENV_PREFIX = "COSI_DRIVER_BACKEND_"
_TOP_LEVEL = ("backends", "master_key", "master_key_version", "state")


@dataclass(frozen=True)
class BackendEntry:
    name: str
    type: BackendType[Any, Any, Any]
    config: Any
    existing: ExistingBuckets = NO_EXISTING_BUCKETS  # the core-level existingBuckets setting


@dataclass(frozen=True)
class StateConfig:
    type: str  # "file" or "kubernetes"
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class DriverConfig:
    backends: dict[str, BackendEntry]
    default: str
    master_key: SecretRef | None
    master_key_version: int
    state: StateConfig
    source: str


def load_driver_config(settings: Settings, environ: Mapping[str, str]) -> DriverConfig:
    backend_env = {key: value for key, value in environ.items() if key.startswith(BACKEND_ENV_PREFIX) and value}
    if settings.config_file is not None:
        if settings.backend_type is not None or backend_env:
            names = ", ".join(sorted(["COSI_DRIVER_BACKEND"] * (settings.backend_type is not None) + list(backend_env)))
            raise ConfigProblem(
                "COSI_DRIVER_CONFIG",
                f"is set together with {names}",
                "declare backends either in the config file or in the environment, not both",
            )
        config = _from_file(settings.config_file, settings)
    else:
        config = _from_environment(settings, backend_env)
    _check_master_key(config)
    return config


def _master_key_from_settings(settings: Settings) -> SecretRef | None:
    if settings.master_key_file is not None and settings.master_key is not None:
        raise ConfigProblem(
            "COSI_DRIVER_MASTER_KEY", "is set together with COSI_DRIVER_MASTER_KEY_FILE", "set only one of them"
        )
    if settings.master_key_file is not None:
        ref = SecretRef(file=settings.master_key_file)
        ref.check("COSI_DRIVER_MASTER_KEY_FILE")
        return ref
    if settings.master_key is not None:
        return SecretRef(inline=settings.master_key)
    return None


def _from_environment(settings: Settings, backend_env: Mapping[str, str]) -> DriverConfig:
    type_name = settings.backend_type
    if not type_name:
        settings_only = f" ({', '.join(sorted(backend_env))} set without it)" if backend_env else ""
        raise ConfigProblem(
            "COSI_DRIVER_BACKEND",
            f"is not set and neither is COSI_DRIVER_CONFIG: no backend is configured{settings_only}",
            f"set COSI_DRIVER_BACKEND to one of: {backend_choices()}; or point COSI_DRIVER_CONFIG at a YAML "
            "file declaring the backends",
        )
    backend_type = _load_type(type_name, "COSI_DRIVER_BACKEND")
    backend_env = dict(backend_env)
    existing_text = backend_env.pop(EXISTING_ENVIRONMENT, "")  # the core's setting, not the backend's
    try:
        existing = ExistingBuckets.from_text(existing_text)
    except ValueProblem as problem:
        raise ConfigProblem(EXISTING_ENVIRONMENT, str(problem), "use comma-separated glob patterns") from None
    plain: dict[str, str] = {}  # variable -> setting whose value it holds
    files: dict[str, str] = {}  # variable -> secret setting whose value is read from that file
    for spec in option_specs(backend_type.config):
        plain[BACKEND_ENV_PREFIX + spec.name.upper()] = spec.name
        if spec.kind is SECRET:
            files[BACKEND_ENV_PREFIX + spec.name.upper() + "_FILE"] = spec.name
    values: dict[str, Any] = {}
    for variable, text in backend_env.items():
        if variable in plain:
            values[plain[variable]] = text
        elif variable in files:
            values[files[variable]] = {"file": text}
        else:
            raise ConfigProblem(
                variable,
                f"is not a setting of backend type {type_name!r}",
                f"remove it; accepted: {', '.join([*plain, *files]) or 'none'}",
            )
    try:
        config = _parse_backend_config(backend_type, values, "COSI_DRIVER_BACKEND", from_env=True)
    except ConfigProblem as problem:  # name the variable, not the YAML-style path
        setting = problem.where.rsplit(".", 1)[-1]
        raise ConfigProblem(BACKEND_ENV_PREFIX + setting.upper(), problem.problem, problem.fix) from None
    entry = BackendEntry(type_name, backend_type, config, existing)
    return DriverConfig(
        backends={type_name: entry},
        default=type_name,
        master_key=_master_key_from_settings(settings),
        master_key_version=settings.master_key_version,
        state=StateConfig("file", {"directory": settings.state_dir}),
        source="environment",
    )


def _from_file(path: Path, settings: Settings) -> DriverConfig:
    where = str(path)
    document = _read_document(path)
    backends, default = _parse_backends(document.get("backends"), f"{where}: backends")
    master_key = _master_key_from_settings(settings)
    if document.get("master_key") is not None:
        if master_key is not None:
            raise ConfigProblem(
                f"{where}: master_key", "is also set in the environment", "set the master key in one place"
            )
        master_key = _parse_secret(document["master_key"], f"{where}: master_key")
    version = settings.master_key_version
    if document.get("master_key_version") is not None:
        try:
            version = parse_int(str(document["master_key_version"]), minimum=1)
        except ValueProblem as problem:
            raise ConfigProblem(f"{where}: master_key_version", str(problem), "use a whole number >= 1") from None
    return DriverConfig(
        backends=backends,
        default=default,
        master_key=master_key,
        master_key_version=version,
        state=_state_from_file(document.get("state"), f"{where}: state", settings),
        source=f"file {path}",
    )


def _read_document(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigProblem("COSI_DRIVER_CONFIG", f"cannot read {path}: {error.strerror}", "fix the path") from None
    except yaml.YAMLError as error:
        raise ConfigProblem(str(path), f"is not valid YAML ({error})", "fix the syntax") from None
    if not isinstance(document, dict):
        raise ConfigProblem(
            str(path), "must be a mapping with a 'backends' key", "see the README's configuration file example"
        )
    for key in document:
        if key not in _TOP_LEVEL:
            raise ConfigProblem(f"{path}: {key}", "is not a known key", f"remove it; accepted: {', '.join(_TOP_LEVEL)}")
    return document


def _parse_backends(raw: Any, where: str) -> tuple[dict[str, BackendEntry], str]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigProblem(where, "must map backend names to {type, config}", "declare at least one backend")
    backends: dict[str, BackendEntry] = {}
    defaults = []
    for name, body in raw.items():
        backends[name] = _parse_backend(name, body, f"{where}.{name}")
        if body.get("default") is True:
            defaults.append(name)
    if len(backends) == 1:
        return backends, next(iter(backends))
    if len(defaults) != 1:
        raise ConfigProblem(
            where,
            f"{len(defaults)} of {len(backends)} backends are marked default",
            "mark exactly one backend with default: true",
        )
    return backends, defaults[0]


def _parse_backend(name: Any, body: Any, at: str) -> BackendEntry:
    if not isinstance(name, str) or not BACKEND_NAME.fullmatch(name):
        raise ConfigProblem(
            at,
            "is not a valid backend name",
            "use 1-32 lowercase letters, digits and '-', starting with a letter (it appears in bucket ids)",
        )
    if not isinstance(body, dict) or "type" not in body:
        raise ConfigProblem(at, "needs a 'type' and a 'config'", "e.g. {type: filesystem, config: {root: /data}}")
    for key in body:
        if key not in ("type", "config", "default", EXISTING_SETTING):
            raise ConfigProblem(
                f"{at}.{key}", "is not a known key", f"use type, config, default and {EXISTING_SETTING}"
            )
    if body.get("default") not in (None, True, False):
        raise ConfigProblem(f"{at}.default", "must be true or false", "mark exactly one backend default: true")
    backend_type = _load_type(str(body["type"]), f"{at}.type")
    config_values = body.get("config") or {}
    if not isinstance(config_values, dict):
        raise ConfigProblem(f"{at}.config", "must be a mapping", "write the backend's settings as key: value")
    config = _parse_backend_config(backend_type, config_values, f"{at}.config")
    return BackendEntry(
        name, backend_type, config, _parse_existing(body.get(EXISTING_SETTING), f"{at}.{EXISTING_SETTING}")
    )


def _parse_existing(raw: Any, where: str) -> ExistingBuckets:
    if raw is None:
        return NO_EXISTING_BUCKETS
    try:
        if not isinstance(raw, list):
            raise ValueProblem(f"must be a list of bucket name patterns, not {raw!r}")
        return ExistingBuckets.parse(raw)
    except ValueProblem as problem:
        raise ConfigProblem(where, str(problem), 'e.g. existingBuckets: ["legacy-*", "shared-data"]') from None


def _parse_secret(raw: Any, where: str) -> SecretRef:
    try:
        ref = SECRET.parse(raw)
    except ValueProblem as problem:
        raise ConfigProblem(
            where, str(problem), "reference the key, e.g. {file: /etc/cosi-driver/master-key}"
        ) from None
    ref.check(where)
    return ref


def _state_from_file(raw: Any, where: str, settings: Settings) -> StateConfig:
    if raw is None:
        return StateConfig("file", {"directory": settings.state_dir})
    if not isinstance(raw, dict) or raw.get("type") not in ("file", "kubernetes") or set(raw) - {"type", "config"}:
        raise ConfigProblem(
            where, "must be {type: file|kubernetes, config: {...}}", "see the README's configuration file example"
        )
    config = raw.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigProblem(f"{where}.config", "must be a mapping", "write the store's settings as key: value")
    return StateConfig(str(raw["type"]), dict(config))


def backend_choices() -> str:
    """The installed backend types for an error message, development-only ones marked. Each type
    is imported to read its label; one whose extra is missing is listed with that said."""
    choices = []
    for name in registry.available():
        try:
            label = " (development only)" if registry.load(name).development_only else ""
        except registry.BrokenBackendType:
            label = " (its extra is not installed)"
        choices.append(name + label)
    return ", ".join(choices) or "none installed"


def _load_type(type_name: str, where: str) -> BackendType[Any, Any, Any]:
    try:
        return registry.load(type_name)
    except registry.UnknownBackendType:
        raise ConfigProblem(
            where, f"names an unknown backend type {type_name!r}", f"use one of: {backend_choices()}"
        ) from None
    except registry.BrokenBackendType as error:
        raise ConfigProblem(where, str(error), "install the package that provides it") from None


def _parse_backend_config(
    backend_type: BackendType[Any, Any, Any], values: Mapping[str, Any], where: str, *, from_env: bool = False
) -> Any:
    return parse_options(backend_type.config, values, where, from_env=from_env)


def _check_master_key(config: DriverConfig) -> None:
    needing = [entry.name for entry in config.backends.values() if entry.type.derives_credentials]
    if not needing:
        return
    if config.master_key is None:
        raise ConfigProblem(
            "COSI_DRIVER_MASTER_KEY_FILE",
            f"is not set, but backend(s) {', '.join(needing)} derive credentials from the driver master key",
            "mount a Secret holding at least 32 random bytes (e.g. openssl rand -hex 32) and point "
            "COSI_DRIVER_MASTER_KEY_FILE (or master_key in the config file) at it",
        )
    problem = master_key_problem(config.master_key.get())
    if problem is not None:
        raise ConfigProblem(
            config.master_key.describe(),
            f"holds a weak master key: {problem}",
            "generate one with: openssl rand -hex 32",
        )
