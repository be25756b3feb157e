"""`python -m simulators.modbus [--fleet FILE] [--manifest OUT]`: serve a fleet's Modbus devices."""

import sys

from simulators.runner import main

sys.exit(main(protocols=["modbus"]))
