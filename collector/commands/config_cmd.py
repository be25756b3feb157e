"""`tally config check`: validate a configuration file and print the effective values."""

from __future__ import annotations

import argparse
import json
from typing import Any

from collector.commands.common import add_config_option, config_from_args


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `config check`."""
    cfg = sub.add_parser("config", help="configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = cfg_sub.add_parser("check", help="validate a configuration file (exit 2 if invalid)")
    add_config_option(check)
    check.add_argument("--show", action="store_true", help="print the effective configuration")
    check.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Validate and optionally print the effective configuration."""
    config = config_from_args(args)
    if args.show:
        print(json.dumps(config.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        print(f"{args.config or '<defaults>'}: valid ({len(config.devices)} device(s))")
    return 0
