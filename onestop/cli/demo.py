"""``onestop demo``: a provincial hub and two centers on localhost, with the seeded catalog,
windows, staff logins and replication running — everything in one process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from hub import cli as hub_cli
from hub import config as hubcfg
from hub.app import create_app as create_hub
from node import cli as node_cli
from node import config as nodecfg
from node.app import create_app as create_node
from onestop import commands
from onestop.errors import CliError


@dataclass(frozen=True)
class DemoNode:
    code: str
    name: str
    level: str
    parent: str


DEMO_NODES = [
    DemoNode("370102001", "济南市历下区解放路街道便民服务中心", "township", "370102"),
    DemoNode("370202001", "青岛市市南区八大关街道便民服务中心", "township", "370202"),
]
DEMO_USERS = [  # username, password, role, window, department
    ("admin", "onestop-admin", "admin", None, None),
    ("window1", "onestop-window", "window", 1, None),
    ("window2", "onestop-window", "window", 2, None),
    ("edu", "onestop-review", "reviewer", None, "edu"),
    ("civil", "onestop-review", "reviewer", None, "civil"),
]
DEMO_WINDOWS = [  # number, name, queues
    (1, "综合窗口", ["*"]),
    (2, "教育民政窗口", ["dept:edu", "dept:civil"]),
    (3, "农林牧渔窗口", ["area:agri"]),
    (4, "市场准入窗口", ["area:market"]),
]
HUB_USERS = [  # username, password, role, scope
    ("province", "onestop-hub", "official", "37"),
    ("jinan", "onestop-hub", "official", "3701"),
]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run a demo hub and two centers on localhost")
    p.add_argument("--data", default="demo-data", help="directory for the demo's data")
    p.add_argument(
        "--port",
        type=int,
        default=8080,
        help="port of the first center; the second gets +1, the hub +10",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to serve on")
    p.set_defaults(func=cmd_demo)


def _run(*args: str, stdin: str | None = None) -> None:
    """Run one ``onestop node|hub ...`` command in this process, as a user would type it."""
    parser = commands.build_parser([node_cli, hub_cli])
    old = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin + "\n")
    try:
        rc = commands.run(parser, list(args))
    finally:
        sys.stdin = old
    if rc:
        raise CliError(f"demo setup failed at: onestop {' '.join(args)}")


def prepare(data: Path, port: int, host: str = "127.0.0.1") -> tuple[Path, list[Path]]:
    """Create the demo hub and nodes once; later runs reuse them."""
    hub_dir = data / "hub"
    hub_port = port + 10
    if not (hub_dir / "hub.toml").exists():
        _run(
            "hub",
            "init",
            "--data",
            str(hub_dir),
            "--name",
            "山东省政务服务数据枢纽",
            "--host",
            host,
            "--port",
            str(hub_port),
        )
        for username, password, role, scope in HUB_USERS:
            _run(
                "hub",
                "user",
                "add",
                "--data",
                str(hub_dir),
                "--username",
                username,
                "--role",
                role,
                "--scope",
                scope,
                stdin=password,
            )
    node_dirs = []
    for i, n in enumerate(DEMO_NODES):
        node_dir = data / n.code
        node_dirs.append(node_dir)
        if (node_dir / "node.toml").exists():
            continue
        _run(
            "node",
            "init",
            "--data",
            str(node_dir),
            "--code",
            n.code,
            "--name",
            n.name,
            "--level",
            n.level,
            "--parent",
            n.parent,
            "--host",
            host,
            "--port",
            str(port + i),
            "--hub-url",
            f"http://{host}:{hub_port}",
            "--hub-pubkey",
            str(hub_dir / "hub.pub"),
            "--hub-seal-pubkey",
            str(hub_dir / "hub-seal.pub"),
        )
        _run(
            "hub",
            "enroll",
            "--data",
            str(hub_dir),
            "--code",
            n.code,
            "--pubkey",
            str(node_dir / "node.pub"),
            "--name",
            n.name,
            "--level",
            n.level,
            "--parent",
            n.parent,
        )
        for number, name, queues in DEMO_WINDOWS:
            _run(
                "node",
                "window",
                "add",
                "--data",
                str(node_dir),
                "--number",
                str(number),
                "--name",
                name,
                "--queues",
                ",".join(queues),
            )
        for username, password, role, window, dept in DEMO_USERS:
            extra = (["--window", str(window)] if window else []) + (
                ["--department", dept] if dept else []
            )
            _run(
                "node",
                "user",
                "add",
                "--data",
                str(node_dir),
                "--username",
                username,
                "--role",
                role,
                *extra,
                stdin=password,
            )
    return hub_dir, node_dirs


async def _serve(hub_dir: Path, node_dirs: list[Path]) -> None:

    runners = []
    hcfg = hubcfg.load(hub_dir)
    apps = [(create_hub(hcfg), hcfg.host, hcfg.port)]
    for d in node_dirs:
        ncfg = nodecfg.load(d)
        apps.append((create_node(ncfg), ncfg.host, ncfg.port))
    try:
        for app, host, port in apps:
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
            runners.append(runner)
        await asyncio.Event().wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def cmd_demo(args: argparse.Namespace) -> int:

    hub_dir, node_dirs = prepare(Path(args.data), args.port, args.host)
    hcfg = hubcfg.load(hub_dir)
    hub_url = f"http://{hcfg.host}:{hcfg.port}"
    lines = [f"\nonestop demo — a provincial hub and {len(node_dirs)} centers\n"]
    for d in node_dirs:
        cfg = nodecfg.load(d)
        base = f"http://{cfg.host}:{cfg.port}"
        lines += [
            f"{cfg.name} ({cfg.code})",
            f"  kiosk    {base}/kiosk",
            f"  window   {base}/window     window1 / onestop-window, window2 / onestop-window",
            f"  display  {base}/display",
            f"  admin    {base}/admin      admin / onestop-admin",
            f"  review   {base}/inbox      edu / onestop-review, civil / onestop-review",
            f"  sync     {base}/sync",
            f"  API      {base}/api/v1/openapi.json",
            "",
        ]
    lines += [
        f"provincial hub {hub_url}",
        f"  dashboard {hub_url}/dash     province / onestop-hub (all), jinan / onestop-hub (济南市)",
        "",
        f"data in {args.data}; press Ctrl+C to stop.",
    ]
    print("\n".join(lines), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(hub_dir, node_dirs))
    return 0
