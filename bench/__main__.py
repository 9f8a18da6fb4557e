"""``python -m bench``: run every benchmark and print the table (see bench/README.md)."""

import sys

from bench.runner import main

sys.exit(main())
