"""The ``onestop`` command: ``onestop node ...``, ``onestop hub ...``, ``onestop sync ...``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

# Each part adds its subcommands through ``register(subparsers)`` in these modules.
PARTS = ("node.cli", "hub.cli", "sync.cli", "onestop.demo", "onestop.ansible_cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onestop",
        description="Government affairs service center software: node, hub and sync.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in PARTS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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


def read_password(prompt: str = "password: ") -> str:
    """A new password: prompted twice on a terminal, else one line of stdin."""
    import getpass

    if sys.stdin.isatty():
        pw = getpass.getpass(prompt)
        if pw != getpass.getpass("again: "):
            raise CliError("the passwords differ")
        return pw
    return sys.stdin.readline().rstrip("\n")


def run_server(app: Any, host: str, port: int, name: str) -> None:
    """Serve ``app`` until stopped, after printing ``{name} serving on http://HOST:PORT/``.

    ``port`` 0 binds a port the system picks and the line names that port (tests and
    scripts start servers that way and read the line, so no two servers race for a port)."""
    from aiohttp import web

    if port != 0:
        print(f"{name} serving on http://{host}:{port}/", flush=True)
        web.run_app(app, host=host, port=port, print=None)
        return
    import socket

    family, kind, proto, _, addr = socket.getaddrinfo(
        host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(addr)
    print(f"{name} serving on http://{host}:{sock.getsockname()[1]}/", flush=True)
    web.run_app(app, sock=sock, print=None)


class CliError(Exception):
    """A command failed in a way the user can fix; ``hint`` is the next command to run."""

    def __init__(self, message: str, hint: str | None = None, code: int = 1) -> None:
        super().__init__(message)
        self.hint = hint
        self.code = code


if __name__ == "__main__":
    # Run through the imported module so CliError raised elsewhere is the same class.
    from onestop.cli import main as _main

    sys.exit(_main())
