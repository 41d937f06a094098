"""Running commands: one parser from the parts that add subcommands, one way to report errors.

A part is a module with ``register(subparsers)``; a command is a function of the parsed
arguments returning the exit status.  A :class:`~onestop.errors.CliError` prints ``error:`` and
the ``hint:`` (the next command to run) and exits with its code.
"""

from __future__ import annotations

import argparse
import logging
import re
import socket
import sys
from collections.abc import Sequence
from typing import Protocol

from aiohttp import web

from onestop.errors import CliError


class Part(Protocol):
    def register(self, sub: argparse._SubParsersAction) -> None: ...  # type: ignore[type-arg]


def build_parser(parts: Sequence[Part], prog: str = "onestop",
                 description: str | None = None) -> argparse.ArgumentParser:  # fmt: skip
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for part in parts:
        part.register(sub)
    return parser


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command it names; returns the exit status."""
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.code


#: The line :func:`serve` logs once it listens; scripts and tests read the URL from it.
SERVING = re.compile(r"serving on (http://\S+?:\d+)/")


def serve(app: web.Application, host: str, port: int, name: str, log: logging.Logger) -> None:
    """Serve ``app`` until stopped, logging ``{name} serving on http://HOST:PORT/`` first (to
    the service's ``log``).

    ``port`` 0 binds a port the system picks and the line names that port (tests and scripts
    start servers that way and read the line, so no two servers race for a port)."""
    if port != 0:
        log.info("%s serving on http://%s:%s/", name, host, port)
        web.run_app(app, host=host, port=port, print=None, access_log=None)
        return
    family, kind, proto, _, addr = socket.getaddrinfo(
        host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(addr)
    log.info("%s serving on http://%s:%s/", name, host, sock.getsockname()[1])
    web.run_app(app, sock=sock, print=None, access_log=None)
