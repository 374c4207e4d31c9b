"""The film flow. Run `python -m flows.film --help`."""

from __future__ import annotations

import sys

from flows.cli import main

if __name__ == "__main__":
    sys.exit(main())
