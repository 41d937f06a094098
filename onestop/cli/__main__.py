"""``python -m onestop.cli``: the ``onestop`` command."""

from __future__ import annotations

import sys

from onestop.cli import main

if __name__ == "__main__":
    sys.exit(main())
