"""Settings of the HTTP API, taken from the Tally configuration; cached, overridable in tests."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from collector.config import TallyConfig, default_config, load_config


class Settings(BaseModel):
    """What the API needs to run: where the store is and how to pool connections."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dsn: str = Field(description="libpq connection string of the store.")
    pool_min_size: int = Field(1, ge=0, le=64)
    pool_max_size: int = Field(4, ge=1, le=64)
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to wait for a connection.")
    site: str = Field("default", description="Name of the collector's site.")
    timezone: str = Field("Asia/Shanghai", description="Zone of calendar months for call volumes.")
    data_dir: Path = Field(
        Path("./tally-data"), description="The collector's data directory (the signing key)."
    )
    signing_key: Path | None = Field(
        None, description="A provisioned signing-key file (read only); None: in data_dir."
    )

    @classmethod
    def from_config(cls, config: TallyConfig, dsn: str | None = None) -> Settings:
        """Derive API settings from a validated configuration (dsn overrides store.dsn)."""
        return cls(
            dsn=dsn or config.store.dsn,
            pool_min_size=1,
            pool_max_size=config.store.pool_size,
            connect_timeout=config.store.connect_timeout,
            site=config.site,
            timezone=config.timezone,
            data_dir=config.data_dir,
            signing_key=config.signing_key_file(),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return settings from $TALLY_CONFIG (or the embedded defaults) with TALLY_* overrides."""
    path = os.environ.get("TALLY_CONFIG")
    config = load_config(path) if path else default_config()
    return Settings.from_config(config)
