from collections.abc import Iterator
from pathlib import Path

import pytest

from api.app import create_app
from api.settings import Settings, get_settings
from collector.config import default_config


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_settings_come_from_the_configuration_named_by_tally_config(
    fresh_settings: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "tally.yaml"
    config.write_text(
        "version: 1\nsite: plant-7\nstore:\n  dsn: postgresql://x@127.0.0.1:1/y\n  pool_size: 9\n"
    )
    monkeypatch.setenv("TALLY_CONFIG", str(config))
    monkeypatch.setenv("TALLY_STORE__CONNECT_TIMEOUT", "2.5")
    settings = get_settings()
    assert settings == Settings(
        dsn="postgresql://x@127.0.0.1:1/y",
        pool_min_size=1,
        pool_max_size=9,
        connect_timeout=2.5,
        site="plant-7",
    )
    assert get_settings() is settings  # cached
    assert create_app().state.settings is settings  # the default of create_app


def test_explicit_settings_win_and_the_dsn_can_be_overridden() -> None:
    settings = Settings.from_config(default_config({}), dsn="postgresql://other/db")
    assert settings.dsn == "postgresql://other/db"
    assert create_app(settings).state.settings is settings
