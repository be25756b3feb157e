"""`python -m simulators --fleet FILE [--manifest OUT]`: serve a whole fleet."""

import sys

from simulators.runner import main

sys.exit(main())
