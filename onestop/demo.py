"""``onestop demo``: a demo center on localhost with the seeded catalog, windows and logins."""

from __future__ import annotations

import argparse
from pathlib import Path

DEMO_NODE = {"code": "370102001", "name": "济南市历下区解放路街道便民服务中心",
             "level": "township", "parent": "370102"}
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


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run a demo center on localhost with the seeded catalog")
    p.add_argument("--data", default="demo-data", help="directory for the demo's data")
    p.add_argument("--port", type=int, default=8080, help="port of the demo node")
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(func=cmd_demo)


def prepare(data: Path, port: int, host: str = "127.0.0.1") -> Path:
    """Create the demo node once; later runs reuse it."""
    from node import config as cfgm
    from node import db as dbm
    from node import users, windows
    from onestop.cli import main

    node_dir = data / "node"
    if not (node_dir / "node.toml").exists():
        rc = main(["node", "init", "--data", str(node_dir), "--code", DEMO_NODE["code"],
                   "--name", DEMO_NODE["name"], "--level", DEMO_NODE["level"],
                   "--parent", DEMO_NODE["parent"], "--port", str(port), "--host", host])
        if rc:
            raise SystemExit(rc)
        cfg = cfgm.load(node_dir)
        db = dbm.connect(cfg.db_path)
        known = {r["code"] for r in dbm.rows(db, "SELECT code FROM queues")}
        for number, name, queues in DEMO_WINDOWS:
            qs = [q for q in queues if q == "*" or q in known] or ["*"]
            windows.create(db, number, name, qs)
        for username, password, role, window, dept in DEMO_USERS:
            users.add(db, username, password, role, window, dept)
        db.conn.close()
    return node_dir


def cmd_demo(args: argparse.Namespace) -> int:
    from aiohttp import web

    from node import config as cfgm
    from node.app import create_app

    node_dir = prepare(Path(args.data), args.port, args.host)
    cfg = cfgm.load(node_dir, port=args.port, host=args.host)
    base = f"http://{cfg.host}:{cfg.port}"
    print(f"""
onestop demo — {cfg.name} ({cfg.code})

  kiosk    {base}/kiosk
  window   {base}/window        (window1 / onestop-window, window2 / onestop-window)
  display  {base}/display
  admin    {base}/admin         (admin / onestop-admin)
  review   {base}/inbox         (edu / onestop-review, civil / onestop-review)
  API      {base}/api/v1/openapi.json

data in {node_dir}; press Ctrl+C to stop.
""", flush=True)
    web.run_app(create_app(cfg), host=cfg.host, port=cfg.port, print=None)
    return 0
