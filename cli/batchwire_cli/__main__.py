"""``python -m batchwire_cli`` and the ``batchwire`` console script."""

from __future__ import annotations

import sys

from batchwire_cli.app import run


def main() -> None:
    """Entry point of the ``batchwire`` console script."""
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
