"""Bad configuration fails fast at start-up, naming the variable (or file path) and the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import run_cli


def serve(workdir: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    """``cosi-driver serve`` with the filesystem backend, or the config file ``env`` names."""
    base = {
        "COSI_ENDPOINT": f"unix://{workdir}/cosi.sock",
        "COSI_DRIVER_STATE_DIR": str(workdir / "state"),
        "COSI_DRIVER_BACKEND_ROOT": str(workdir / "data"),
    }
    if "COSI_DRIVER_CONFIG" not in env:
        base["COSI_DRIVER_BACKEND"] = "filesystem"
    result = run_cli("serve", *args, env={**base, **env}, timeout=30)
    return result.returncode, result.stderr


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"COSI_ENDPOINT": "tcp://127.0.0.1:9000"}, ["COSI_ENDPOINT", "unix://"]),
        ({"COSI_ENDPOINT": "unix:///tmp/cosi-driver-no-suffix"}, ["COSI_ENDPOINT", ".sock"]),
        ({"X_COSI_ENDPOINT_PERMS": "rw-rw----"}, ["X_COSI_ENDPOINT_PERMS", "0660"]),
        ({"X_COSI_ENDPOINT_PERMS": "4755"}, ["X_COSI_ENDPOINT_PERMS", "setuid"]),
        ({"X_COSI_ENDPOINT_USER": "no-such-user-here"}, ["X_COSI_ENDPOINT_USER", "no-such-user-here"]),
        ({"X_COSI_ENDPOINT_GROUP": "no-such-group-here"}, ["X_COSI_ENDPOINT_GROUP"]),
        ({"COSI_DRIVER_NAME": "Bad_Name"}, ["COSI_DRIVER_NAME", "lowercase"]),
        ({"COSI_DRIVER_NAME": "a" * 64}, ["COSI_DRIVER_NAME", "63"]),
        ({"COSI_DRIVER_NAME": "9starts.with.digit"}, ["COSI_DRIVER_NAME"]),
        ({"COSI_DRIVER_OPERATION_TIMEOUT": "soon"}, ["COSI_DRIVER_OPERATION_TIMEOUT", "number"]),
        ({"COSI_DRIVER_LOG_LEVEL": "loud"}, ["COSI_DRIVER_LOG_LEVEL", "debug, info"]),
        ({"COSI_DRIVER_BACKEND": "nosuchstore"}, ["COSI_DRIVER_BACKEND", "filesystem"]),
        ({"COSI_DRIVER_BACKEND_ROOOT": "/x"}, ["COSI_DRIVER_BACKEND_ROOOT", "COSI_DRIVER_BACKEND_ROOT"]),
        ({"COSI_DRIVER_MASTER_KEY_FILE": "/nonexistent/key"}, ["COSI_DRIVER_MASTER_KEY_FILE", "cannot read"]),
    ],
)
def test_bad_environment_is_named_with_a_fix(workdir: Path, env: dict[str, str], names: list[str]) -> None:
    code, stderr = serve(workdir, env)
    assert code == 2, stderr
    assert "configuration error" in stderr
    for name in names:
        assert name in stderr, stderr
    assert "Fix:" in stderr
    assert "Traceback" not in stderr
    assert not (workdir / "cosi.sock").exists()


def serve_unconfigured(workdir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``cosi-driver serve`` in an environment holding only what is given (none of the caller's)."""
    clean = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "COSI_ENDPOINT": f"unix://{workdir}/cosi.sock",
        "COSI_DRIVER_STATE_DIR": str(workdir / "state"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "cosi_driver", "serve"],
        env=clean,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_no_backend_configured_stops_at_start_up_and_lists_the_choices(workdir: Path) -> None:
    result = serve_unconfigured(workdir)
    assert result.returncode == 2, result.stderr
    assert "COSI_DRIVER_BACKEND: is not set and neither is COSI_DRIVER_CONFIG: no backend is configured" in (
        result.stderr
    )
    # Every registered type is a choice; the ones for development only say so.
    assert "filesystem (development only)" in result.stderr
    assert "seaweedfs (development only)" in result.stderr
    assert "s3, " in result.stderr or result.stderr.rstrip().endswith("s3")
    assert "s3 (development only)" not in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workdir / "cosi.sock").exists()
    assert not (workdir / "state").exists()


def test_backend_settings_without_a_backend_type_are_named(workdir: Path) -> None:
    result = serve_unconfigured(workdir, COSI_DRIVER_BACKEND_ROOT=str(workdir / "data"))
    assert result.returncode == 2, result.stderr
    assert "no backend is configured (COSI_DRIVER_BACKEND_ROOT set without it)" in result.stderr
    assert not (workdir / "cosi.sock").exists()


def test_a_flag_overrides_the_environment_and_is_named(workdir: Path) -> None:
    code, stderr = serve(workdir, {"COSI_DRIVER_NAME": "fine.example.com"}, "--name", "NOT OK")
    assert code == 2
    assert "--name" in stderr


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("backends: [1, 2]\n", ["backends", "declare at least one backend"]),
        ("backendz: {}\n", ["backendz", "accepted: backends"]),
        ("backends:\n  Bad_Name: {type: filesystem}\n", ["backends.Bad_Name", "lowercase"]),
        ("backends:\n  a: {type: nosuch}\n", ["backends.a.type", "nosuch", "filesystem"]),
        ("backends:\n  a: {type: filesystem, config: {rooot: /x}}\n", ["backends.a.config.rooot", "root, region"]),
        (
            "backends:\n  a: {type: filesystem}\n  b: {type: filesystem}\n",
            ["backends", "exactly one backend with default: true"],
        ),
        ("backends:\n  a: {type: filesystem\n", ["not valid YAML"]),
        ("backends:\n  a: {type: filesystem}\nmaster_key: plain-text-key\n", ["master_key", "{file:"]),
        ("backends:\n  a: {type: filesystem}\nmaster_key: {env: COSI_TEST_UNSET_VAR}\n", ["COSI_TEST_UNSET_VAR"]),
    ],
)
def test_bad_config_file_names_the_path_of_the_field(workdir: Path, text: str, names: list[str]) -> None:
    config = workdir / "driver.yaml"
    config.write_text(text)
    code, stderr = serve(workdir, {"COSI_DRIVER_CONFIG": str(config), "COSI_DRIVER_BACKEND_ROOT": ""})
    assert code == 2, stderr
    for name in names:
        assert name in stderr, stderr
    assert "Traceback" not in stderr


def test_config_file_and_backend_environment_together_are_refused(workdir: Path) -> None:
    config = workdir / "driver.yaml"
    config.write_text("backends:\n  a: {type: filesystem}\n")
    code, stderr = serve(workdir, {"COSI_DRIVER_CONFIG": str(config)})
    assert code == 2
    assert "COSI_DRIVER_CONFIG" in stderr and "COSI_DRIVER_BACKEND_ROOT" in stderr


def test_help_and_version_work_for_every_command() -> None:
    for args in (["--help"], ["--version"], ["serve", "--help"], ["call", "--help"], ["call", "info", "--help"]):
        result = run_cli(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stdout.strip()
