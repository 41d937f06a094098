"""The ``onestop`` command, on top of everything: ``node``, ``sync``, ``hub``, ``verify``,
``demo`` and ``ansible``, each added by the ``register(subparsers)`` of the part that owns it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hub import cli as hub_cli
from node import cli as node_cli
from node.replication import cli as replication_cli
from onestop import commands
from onestop.cli import ansible, demo, verify

PARTS = (node_cli, replication_cli, hub_cli, verify, demo, ansible)
DESCRIPTION = "Government affairs service center software: node, hub and sync."


def build_parser() -> argparse.ArgumentParser:
    return commands.build_parser(PARTS, description=DESCRIPTION)


def main(argv: Sequence[str] | None = None) -> int:
    return commands.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
