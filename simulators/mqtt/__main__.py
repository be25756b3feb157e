"""`python -m simulators.mqtt --broker mqtt://127.0.0.1:1883`: run simulated MQTT devices."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from simulators.mqtt.devices import default_fleet
from simulators.mqtt.simulator import serve


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the simulator until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m simulators.mqtt", description=__doc__)
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://host:port")
    parser.add_argument("--json-devices", type=int, default=2)
    parser.add_argument("--sparkplug-devices", type=int, default=2)
    parser.add_argument("--interval", type=float, default=1.0, help="Seconds between samples.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    fleet = default_fleet(args.json_devices, args.sparkplug_devices, args.interval)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.broker, fleet))


if __name__ == "__main__":
    main()
