"""``onestop verify``: audit a signed log offline.

``--data DIR`` audits a node's own log (:func:`node.replication.verify.verify_node`),
``--hub DIR --code CODE`` the hub's copy of one node's log.  Both exit 1 when anything fails
to verify.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hub import cli as hub_cli
from node.replication.verify import verify_node
from onestop.errors import CliError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "verify",
        help="audit a signed log offline: a node's own (--data) or the hub's copy (--hub --code)",
    )
    p.add_argument("--data", default=None, metavar="DIR", help="a node's data directory")
    p.add_argument("--hub", default=None, metavar="DIR", help="a hub's data directory")
    p.add_argument("--code", default=None, help="with --hub: the node whose copy to verify")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    if args.data and args.hub:
        raise CliError("give either --data DIR (a node) or --hub DIR --code CODE, not both")
    if args.data:
        if args.code:
            raise CliError("--code goes with --hub", hint="onestop verify --data DIR")
        return int(verify_node(Path(args.data)))
    if not args.hub:
        raise CliError("give --data DIR (a node) or --hub DIR --code CODE",
                       hint="onestop verify --hub DIR --code 370102001")  # fmt: skip
    if not args.code:
        raise CliError("--hub needs --code CODE (the node whose copy to verify)")
    return hub_cli.verify_hub_copy(args.hub, args.code)
