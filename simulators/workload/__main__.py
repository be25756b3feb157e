"""`python -m simulators.workload --spec FILE (--api URL --key KEY | --dsn DSN)`."""

import sys

from simulators.workload.runner import main

sys.exit(main())
