"""The Tally configuration file: models, loading, environment overrides and errors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.registry import DeviceConfig
from collector.control.config import ControlConfig

ENV_PREFIX = "TALLY_"
ENV_NESTING = "__"


class ConfigError(Exception):
    """A configuration that cannot be used; the message names every bad key."""


class Strict(BaseModel):
    """Base for configuration models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TimescaleConfig(Strict):
    """TimescaleDB options, used only when the extension is present."""

    chunk_interval: str = Field("1 day", description="Hypertable chunk interval.")
    compress_after: str = Field("7 days", description="Compress sample chunks older than this.")
    retention: str | None = Field(
        None, description="Drop raw samples older than this; null keeps all."
    )


class StoreConfig(Strict):
    """Where and how telemetry is stored."""

    dsn: str = Field(
        "postgresql://tally@127.0.0.1:5432/tally", description="libpq connection string."
    )
    pool_size: int = Field(4, ge=1, le=64)
    connect_timeout: float = Field(5.0, gt=0)
    timescale: TimescaleConfig = TimescaleConfig()


class SpoolConfig(Strict):
    """Durable local spool used while the store is unreachable."""

    directory: Path = Field(Path("spool"), description="Relative paths resolve under data_dir.")
    max_bytes: int = Field(1 << 30, ge=1 << 20, description="Upper bound of the spool on disk.")
    on_full: Literal["block", "drop_oldest"] = Field(
        "block",
        description="block: stop accepting samples (backpressure); drop_oldest: discard oldest "
        "spooled batches, counted as dropped.",
    )
    fsync: bool = Field(True, description="fsync every spooled batch before acknowledging it.")
    replay_interval: float = Field(2.0, gt=0, description="Seconds between store health probes.")


class PipelineConfig(Strict):
    """Queue and batching between adapters and the store writer."""

    queue_size: int = Field(100_000, ge=1, description="Records the queue holds before it blocks.")
    batch_size: int = Field(5_000, ge=1, le=1_000_000)
    batch_age: float = Field(1.0, gt=0, description="Seconds before a partial batch is flushed.")
    group_batches: int = Field(
        8,
        ge=1,
        le=64,
        description="When batches wait (a slow store, a spool replay), up to this many are "
        "written in one transaction (group commit), each still applied exactly once.",
    )
    shutdown_timeout: float = Field(30.0, gt=0)


class ApiConfig(Strict):
    """HTTP API listener."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    signing_key: Path | None = Field(
        None,
        description="PEM file of the report-signing key (Ed25519, PKCS#8), read and never "
        "created (relative paths resolve under data_dir); unset: "
        "<data_dir>/keys/report-signing-ed25519.pem, created on first use.",
    )


class MetricsConfig(Strict):
    """Prometheus listener of `tally collect` (run and serve expose /metrics on the API)."""

    host: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535, description="0 disables the listener.")


class LoggingConfig(Strict):
    """Log level and format."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "text"] = Field(
        "auto", description="auto: JSON when stderr is not a terminal."
    )


class TallyConfig(Strict):
    """The whole Tally configuration (one YAML file, version 1)."""

    version: Literal[1]
    site: str = Field("default", description="Name of this collector's site, stated in reports.")
    data_dir: Path = Field(Path("./tally-data"), description="Signing key and spool.")
    timezone: str = Field("Asia/Shanghai", description="Zone of calendar months for call volumes.")
    store: StoreConfig = StoreConfig()
    pipeline: PipelineConfig = PipelineConfig()
    spool: SpoolConfig = SpoolConfig()
    api: ApiConfig = ApiConfig()
    metrics: MetricsConfig = MetricsConfig()
    logging: LoggingConfig = LoggingConfig()
    control: ControlConfig = ControlConfig()
    devices: list[DeviceConfig] = Field(default_factory=list)

    @field_validator("devices")
    @classmethod
    def _unique_device_ids(cls, devices: list[DeviceConfig]) -> list[DeviceConfig]:
        seen: set[str] = set()
        for device in devices:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} is declared twice")
            seen.add(device.id)
        return devices

    def signing_key_file(self) -> Path | None:
        """Return the provisioned signing-key file, resolved under data_dir when relative."""
        path = self.api.signing_key
        if path is None:
            return None
        return path if path.is_absolute() else self.data_dir / path

    def spool_dir(self) -> Path:
        """Return the spool directory, resolved under data_dir when relative."""
        path = self.spool.directory
        return path if path.is_absolute() else self.data_dir / path


def _format_location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


def _clean_location(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # Discriminated unions add the tag (e.g. 'modbus') as a path element; hide it.
    tags = {"modbus", "opcua", "mqtt", "sparkplug", "function-after", "function-before"}
    return tuple(p for p in loc if not (isinstance(p, str) and (p in tags or "[" in p)))


def format_validation_error(error: ValidationError, source: str) -> str:
    """Render a pydantic error as one line per bad key: `path: message (got ...)`."""
    lines = [f"{source}: invalid configuration ({error.error_count()} problem(s))"]
    for item in error.errors():
        loc = _format_location(_clean_location(tuple(item["loc"])))
        got = item.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        lines.append(f"  {loc}: {item['msg']}{shown}")
    return "\n".join(lines)


def _parse_env_value(raw: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _set_path(tree: dict[str, Any], path: list[str], value: Any, var: str) -> None:
    node: Any = tree
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"{var}: index {part!r} is not an existing list element")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"{var}: {'.'.join(path[:i])} is not a mapping")
        if last:
            node[part] = value
        else:
            node = node.setdefault(part, {})


def apply_env_overrides(tree: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay TALLY_A__B=value variables onto the raw config (A.b = value)."""
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or var.startswith(ENV_PREFIX + "TEST_"):
            continue
        if var in _NON_CONFIG_VARS:
            continue
        path = [p.lower() for p in var[len(ENV_PREFIX) :].split(ENV_NESTING)]
        if not all(path):
            raise ConfigError(f"{var}: empty key segment; use {ENV_NESTING} between keys")
        _set_path(tree, path, _parse_env_value(environ[var]), var)
    return tree


# Variables that steer the command line rather than the configuration file.
_NON_CONFIG_VARS = frozenset({"TALLY_CONFIG", "TALLY_API_KEY", "TALLY_URL", "TALLY_MQTT_PASSWORD"})


def parse_config(
    raw: Mapping[str, Any] | None, source: str, environ: Mapping[str, str] | None = None
) -> TallyConfig:
    """Validate a raw mapping (plus environment overrides) into a TallyConfig."""
    if raw is not None and not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    tree: dict[str, Any] = dict(raw or {})
    apply_env_overrides(tree, os.environ if environ is None else environ)
    try:
        return TallyConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> TallyConfig:
    """Read, override and validate a configuration file; raise ConfigError when unusable."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read configuration: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{file}: not valid YAML{where}: {problem}") from None
    return parse_config(raw, str(file), environ)


def default_config(environ: Mapping[str, str] | None = None) -> TallyConfig:
    """Return the embedded defaults (used by `tally demo`), with environment overrides."""
    return parse_config({"version": 1}, "<defaults>", environ)
