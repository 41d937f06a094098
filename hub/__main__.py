"""``python -m hub --data DIR``: serve the hub (same as ``onestop hub serve``)."""

from __future__ import annotations

import sys

from onestop.cli import main

if __name__ == "__main__":
    sys.exit(main(["hub", "serve", *sys.argv[1:]]))
