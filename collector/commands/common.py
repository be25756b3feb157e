"""Helpers shared by subcommands: config loading and the -c option."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from collector.config import TallyConfig, default_config, load_config


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """Add -c/--config (default: $TALLY_CONFIG, else embedded defaults)."""
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=os.environ.get("TALLY_CONFIG"),
        help="configuration file (default: $TALLY_CONFIG, else built-in defaults)",
    )


def config_from_args(args: argparse.Namespace) -> TallyConfig:
    """Load the configuration named by -c, or the defaults; raises ConfigError."""
    path: Path | None = args.config
    return load_config(path) if path is not None else default_config()
