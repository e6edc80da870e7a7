"""``python -m harbor_report``: the same command line as ``harbor-report``."""

import sys

from harbor_report.cli import main

sys.exit(main())
