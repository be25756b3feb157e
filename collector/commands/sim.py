"""`tally sim --fleet FILE [--manifest OUT]`: serve a simulated fleet and write its manifest."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `sim`."""
    from simulators.runner import add_arguments

    sim = sub.add_parser(
        "sim",
        help="serve a simulated device fleet (all its protocols) and write a ground-truth manifest",
    )
    add_arguments(sim)
    sim.add_argument(
        "--protocol",
        action="append",
        dest="protocols",
        metavar="NAME",
        help="serve only this protocol's devices (repeatable; default: all)",
    )
    sim.set_defaults(handler=run_sim)


def run_sim(args: argparse.Namespace) -> int:
    """Serve the fleet until interrupted."""
    import logging

    from simulators.runner import run_from_args

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_from_args(args, args.protocols)
