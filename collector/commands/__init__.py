"""Subcommands of `tally`; each module exposes `register(subparsers)`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from collector.commands import config_cmd, db

Register = Callable[["argparse._SubParsersAction[Any]"], None]

COMMANDS: list[Register] = [db.register, config_cmd.register]
