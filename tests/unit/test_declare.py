"""One declaration mechanism (cosi_driver.core.declare) behind process settings, backend settings and parameters.

The same kinds and the same parser serve all three, so a value reads the same wherever a user
writes it; each front end still words its errors for its own audience.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cosi_driver.config.settings import SETTINGS, Settings, load_settings
from cosi_driver.core.declare import declared
from cosi_driver.core.errors import InvalidArgument
from cosi_driver.core.options import parse_options
from cosi_driver.core.params import BucketParams, param, parse_params
from cosi_driver.sdk import COUNT, QUANTITY, ConfigProblem, ParamKind, SettingKind, ValueProblem, setting


@dataclass(frozen=True)
class Limits:
    """A backend config using kinds that began life as parameter kinds."""

    max_size: int = setting(QUANTITY, doc="Largest bucket.")
    max_objects: int = setting(COUNT, default=100, doc="Most objects.")


def _tier(text: str) -> int:
    if text not in ("1", "2", "3"):
        raise ValueProblem(f"must be 1, 2 or 3, not {text!r}")
    return int(text)


@dataclass(frozen=True)
class Tiered(BucketParams):
    """A parameter whose kind is spelled the way the SDK's ParamKind was before."""

    tier: int = param("tier", ParamKind(form="1, 2 or 3", parse=_tier), default=1, doc="Storage tier.")


def test_documented_defaults_are_the_defaults_used() -> None:
    # The settings table shows each default rendered by its kind; reading that text back must
    # give the value the driver uses, or the docs would describe another driver.
    defaults = load_settings({})
    for field in SETTINGS:
        if field.default is None:
            assert getattr(defaults, field.attribute) is None
            continue
        shown = field.render_default()
        assert field.kind.parse(shown, from_env=True) == getattr(defaults, field.attribute), field.env


def test_every_process_setting_has_its_own_variable_and_flag() -> None:
    envs = [field.env for field in SETTINGS]
    flags = [field.flag for field in SETTINGS if field.flag]
    assert len(envs) == len(set(envs)) == len(declared(Settings))
    assert all(env.startswith(("COSI_", "X_COSI_")) for env in envs)
    assert len(flags) == len(set(flags))
    assert all(flag.startswith("--") for flag in flags)


def test_a_bad_flag_is_named_with_its_variable_and_the_form() -> None:
    with pytest.raises(ConfigProblem) as raised:
        load_settings({"COSI_DRIVER_SHUTDOWN_GRACE": "5"}, {"COSI_DRIVER_SHUTDOWN_GRACE": "soon"})
    assert raised.value.where == "--shutdown-grace"
    assert "'soon'" in raised.value.problem
    assert raised.value.fix == "set COSI_DRIVER_SHUTDOWN_GRACE (or --shutdown-grace) to a number of seconds"


def test_quantity_and_count_read_the_same_as_settings_and_as_parameters() -> None:
    from_yaml = parse_options(Limits, {"max_size": "10Gi", "max_objects": 7}, "backends.b.config")
    from_env = parse_options(Limits, {"max_size": "10Gi"}, "COSI_DRIVER_BACKEND", from_env=True)
    assert from_yaml == Limits(max_size=10 * 2**30, max_objects=7)
    assert from_env == Limits(max_size=10 * 2**30)
    parsed = parse_params(Tiered, {"tier": "3"}, field_name="parameters", backend="b")
    assert parsed.tier == 3


def test_a_setting_error_names_the_yaml_path_and_the_form() -> None:
    with pytest.raises(ConfigProblem) as raised:
        parse_options(Limits, {"max_size": "lots"}, "backends.b.config")
    assert raised.value.where == "backends.b.config.max_size"
    assert raised.value.fix.startswith("use a Kubernetes quantity")
    with pytest.raises(ConfigProblem) as missing:
        parse_options(Limits, {}, "backends.b.config")
    assert (missing.value.where, missing.value.problem) == ("backends.b.config.max_size", "is required")


def test_a_kind_spelled_with_parse_is_a_setting_kind_too() -> None:
    kind = ParamKind(form="1, 2 or 3", parse=_tier)
    assert isinstance(kind, SettingKind)
    with pytest.raises(
        InvalidArgument,
        match=r"^parameters: parameter 'tier' must be 1, 2 or 3, not 'gold'\. Accepted form: 1, 2 or 3$",
    ):
        parse_params(Tiered, {"tier": "gold"}, field_name="parameters", backend="b")


def test_an_undeclared_field_is_refused_by_name() -> None:
    @dataclass(frozen=True)
    class Careless:
        plain: int = 3

    with pytest.raises(TypeError, match=r"Careless\.plain is not declared"):
        declared(Careless)
