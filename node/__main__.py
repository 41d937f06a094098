"""``python -m node --data DIR``: serve a node (same as ``onestop node serve``)."""

from __future__ import annotations

import sys

from onestop.cli import main

if __name__ == "__main__":
    sys.exit(main(["node", "serve", *sys.argv[1:]]))
