"""``python -m node --data DIR``: serve the node (same as ``onestop node serve``)."""

from __future__ import annotations

import sys

from node import cli
from onestop import commands

if __name__ == "__main__":
    sys.exit(commands.run(commands.build_parser([cli]), ["node", "serve", *sys.argv[1:]]))
