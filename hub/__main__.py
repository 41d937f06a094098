"""``python -m hub --data DIR``: serve the hub (same as ``onestop hub serve``)."""

from __future__ import annotations

import sys

from hub import cli
from onestop import commands

if __name__ == "__main__":
    sys.exit(commands.run(commands.build_parser([cli]), ["hub", "serve", *sys.argv[1:]]))
