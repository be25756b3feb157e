from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from adapters.modbus.config import ModbusDevice
from collector.cli import main
from collector.config import (
    ConfigError,
    TallyConfig,
    apply_env_overrides,
    load_config,
    parse_config,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tally.example.yaml"


def _field_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.add(path)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths |= _field_paths(annotation, f"{path}.")
    return paths


def _tree_paths(tree: Any, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(tree, dict):
        for key, value in tree.items():
            path = f"{prefix}{key}"
            paths.add(path)
            paths |= _tree_paths(value, f"{path}.")
    return paths


def test_example_file_loads() -> None:
    config = load_config(EXAMPLE, environ={})
    assert config.version == 1
    assert config.devices


def test_example_file_shows_every_option_with_its_default() -> None:
    raw = yaml.safe_load(EXAMPLE.read_text())
    shown = _tree_paths({k: v for k, v in raw.items() if k != "devices"})
    expected = {p for p in _field_paths(TallyConfig) if not p.startswith("devices")}
    assert expected - shown == set(), "options missing from tally.example.yaml"
    defaults = TallyConfig(version=1).model_dump(mode="json", exclude={"devices"})
    as_shown = TallyConfig.model_validate({**raw, "devices": []}).model_dump(
        mode="json", exclude={"devices"}
    )
    assert as_shown == defaults, "tally.example.yaml must show the defaults"


def test_example_device_shows_every_device_option() -> None:
    raw = yaml.safe_load(EXAMPLE.read_text())
    config = TallyConfig.model_validate(raw)
    device = config.devices[0]
    assert isinstance(device, ModbusDevice)
    shown_device = set(raw["devices"][0])
    assert set(type(device).model_fields) == shown_device
    point_models = {type(p) for p in device.points}
    shown_points = set().union(*(set(p) for p in raw["devices"][0]["points"]))
    for model in point_models:
        assert set(model.model_fields) == shown_points


MODBUS_DEVICE = {
    "protocol": "modbus",
    "id": "d",
    "endpoint": "tcp://127.0.0.1:5020",
    "points": [{"key": "p", "address": 0}],
}


def _devices(n: int) -> list[dict[str, Any]]:
    return [{**MODBUS_DEVICE, "id": f"d{i}"} for i in range(n)]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"version": 1, "devices": [*_devices(3), {**MODBUS_DEVICE, "id": "x", "points": [
                {"key": "p", "address": "forty"}]}]},
            "devices[3].points[0].address: Input should be a valid integer",
        ),
        ({"version": 2}, "version: Input should be 1"),
        ({}, "version: Field required"),
        ({"version": 1, "pipeline": {"batch_sise": 10}}, "pipeline.batch_sise: Extra inputs"),
        ({"version": 1, "pipeline": {"batch_size": 0}}, "pipeline.batch_size: Input should be"),
        ({"version": 1, "spool": {"on_full": "explode"}}, "spool.on_full: Input should be"),
        (
            {"version": 1, "devices": [{**MODBUS_DEVICE, "protocol": "profinet"}]},
            "devices[0]: Input tag 'profinet'",
        ),
        (
            {"version": 1, "devices": [{**MODBUS_DEVICE, "industry": "chemicals"}]},
            "devices[0].industry: Value error, expected a GB/T 4754-2017 code",
        ),
        (
            {"version": 1, "devices": [{**MODBUS_DEVICE, "points": [
                {"key": "p", "table": "coil", "address": 1, "data_type": "float32"}]}]},
            "devices[0].points[0]: Value error, coil points hold single bits",
        ),
        ({"version": 1, "devices": _devices(1) * 2}, "devices: Value error, device id 'd0'"),
    ],
)  # fmt: skip
def test_bad_config_names_the_key(raw: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "tally.yaml", environ={})
    assert expected in str(info.value)
    assert str(info.value).startswith("tally.yaml: invalid configuration")


def test_bad_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "tally.yaml"
    path.write_text("version: 1\nstore:\n  dsn: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+, column \d+"):
        load_config(path, environ={})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path / "absent.yaml", environ={})


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "tally.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(path, environ={})


@pytest.mark.parametrize(
    ("content", "key_path"),
    [
        ("version: 1\napi:\n  port: 70000\n", "api.port"),
        ("version: 1\nlogging:\n  level: LOUD\n", "logging.level"),
        ("version: 1\ndevices:\n  - protocol: modbus\n    id: a\n", "devices[0].endpoint"),
    ],
)
def test_cli_exits_2_with_the_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, key_path: str
) -> None:
    path = tmp_path / "tally.yaml"
    path.write_text(content)
    assert main(["config", "check", "-c", str(path)]) == 2
    assert f"  {key_path}:" in capsys.readouterr().err


def test_cli_accepts_a_valid_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "-c", str(EXAMPLE)]) == 0
    assert "valid" in capsys.readouterr().out


def test_environment_overrides_nested_values() -> None:
    env = {
        "TALLY_STORE__DSN": "postgresql://x@127.0.0.1:1/y",
        "TALLY_PIPELINE__BATCH_SIZE": "42",
        "TALLY_SPOOL__FSYNC": "false",
        "TALLY_SITE": "plant-7",
        "HOME": "/root",
    }
    config = parse_config({"version": 1}, "t", environ=env)
    assert config.store.dsn == "postgresql://x@127.0.0.1:1/y"
    assert config.pipeline.batch_size == 42
    assert config.spool.fsync is False
    assert config.site == "plant-7"


def test_environment_overrides_list_elements() -> None:
    raw = {"version": 1, "devices": _devices(2)}
    env = {"TALLY_DEVICES__1__POLL_INTERVAL": "5"}
    config = parse_config(raw, "t", environ=env)
    device = config.devices[1]
    assert isinstance(device, ModbusDevice)
    assert device.poll_interval == 5


def test_environment_override_errors_are_named() -> None:
    with pytest.raises(ConfigError, match="TALLY_DEVICES__7__ID"):
        apply_env_overrides({"devices": []}, {"TALLY_DEVICES__7__ID": "x"})
    with pytest.raises(ConfigError, match=r"pipeline\.batch_size: Input should be a valid integer"):
        parse_config({"version": 1}, "t", environ={"TALLY_PIPELINE__BATCH_SIZE": "many"})


def test_test_and_cli_variables_are_not_config() -> None:
    env = {
        "TALLY_TEST_DATABASE_URL": "x",
        "TALLY_CONFIG": "y",
        "TALLY_API_KEY": "z",
        "TALLY_MQTT_PASSWORD": "p",
    }
    assert parse_config({"version": 1}, "t", environ=env).version == 1


def test_a_relative_signing_key_resolves_under_data_dir() -> None:
    raw = {"version": 1, "data_dir": "/var/lib/tally", "api": {"signing_key": "keys/site.pem"}}
    assert parse_config(raw, "t", environ={}).signing_key_file() == Path(
        "/var/lib/tally/keys/site.pem"
    )
    env = {"TALLY_API__SIGNING_KEY": "/run/secrets/signing"}
    assert parse_config(raw, "t", environ=env).signing_key_file() == Path("/run/secrets/signing")
    assert parse_config({"version": 1}, "t", environ={}).signing_key_file() is None
