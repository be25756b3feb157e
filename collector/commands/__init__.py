"""Subcommands of `tally`; each module exposes `register(subparsers)`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from collector.commands import (
    audit_cmd,
    calls,
    collect,
    config_cmd,
    db,
    demo,
    evaluate,
    imports,
    keys,
    report,
    serve,
    sim,
    snapshot,
    verify,
)

Register = Callable[["argparse._SubParsersAction[Any]"], None]

COMMANDS: list[Register] = [
    db.register,
    collect.register,
    demo.register,
    config_cmd.register,
    keys.register,
    serve.register,
    sim.register,
    report.register,
    snapshot.register,
    evaluate.register,
    imports.register,
    calls.register,
    audit_cmd.register,
    verify.register,
]
