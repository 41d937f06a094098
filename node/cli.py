"""``onestop node ...``: init, serve, users, windows, catalog, keys."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import sqlite_utils

from node import (
    bundle,
    catalog,
    catalog_cli,
    litestream,
    rebuild,
    recovery,
    restore,
    signer,
    users,
    windows,
)
from node import config as cfgm
from node import db as dbm
from node import pii as piim
from node.app import create_app
from node.replication import cli as replication_cli
from node.signer import open_node_db
from onestop import logs
from onestop.commands import serve
from onestop.errors import ApiError, CliError
from onestop.passwords import read_password
from schemas.catalog import load_catalog, seed_path

log = logging.getLogger("onestop.node")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    node = sub.add_parser("node", help="a service center node")
    nsub = node.add_subparsers(dest="node_command", metavar="COMMAND")

    p = nsub.add_parser("init", help="create a node: config, database, secret, seeded catalog")
    p.add_argument("--data", required=True, help="data directory of the node")
    p.add_argument("--code", required=True, help="division code, e.g. 370102001")
    p.add_argument("--name", required=True, help="the center's name")
    p.add_argument("--level", required=True, choices=cfgm.LEVELS)
    p.add_argument("--parent", default="", help="division code of the parent center")
    p.add_argument("--port", type=int, default=8080, help="port to serve on (default 8080)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on")
    p.add_argument("--hub-url", default="", help="provincial hub (or relay) URL")
    p.add_argument("--hub-pubkey", default="", help="hub public key file")
    p.add_argument(
        "--hub-seal-pubkey",
        default="",
        metavar="FILE",
        help="the hub's X25519 sealing key (hub-seal.pub)",
    )
    p.add_argument(
        "--key-passphrase-file",
        default="",
        metavar="FILE",
        help="encrypt node.key with the passphrase in FILE (or set ONESTOP_KEY_PASSPHRASE)",
    )
    p.add_argument("--no-seed", action="store_true", help="do not load the shipped catalog")
    p.set_defaults(func=cmd_init)

    p = nsub.add_parser("serve", help="run the node's web server")
    p.add_argument("--data", required=True, help="data directory of the node")
    p.add_argument("--host", default=None, help="override the configured address")
    p.add_argument(
        "--port", type=int, default=None, help="override the configured port (0: any free port)"
    )
    p.set_defaults(func=cmd_serve)

    user = nsub.add_parser("user", help="staff accounts")
    usub = user.add_subparsers(dest="user_command", metavar="COMMAND")
    p = usub.add_parser("add", help="add a staff account (password from stdin or prompt)")
    p.add_argument("--data", required=True, help="data directory of the node")
    p.add_argument("--username", required=True)
    p.add_argument("--role", required=True, choices=("admin", "window", "reviewer"))
    p.add_argument("--window", type=int, default=None, help="window number the user works at")
    p.add_argument("--department", default=None, help="department code (reviewers)")
    p.set_defaults(func=cmd_user_add)

    win = nsub.add_parser("window", help="service windows")
    wsub = win.add_subparsers(dest="window_command", metavar="COMMAND")
    p = wsub.add_parser("add", help="add a window serving some queues, or all (*)")
    p.add_argument("--data", required=True, help="data directory of the node")
    p.add_argument("--number", type=int, required=True, help="window number shown to citizens")
    p.add_argument("--name", default=None, help="window name, e.g. 综合窗口")
    p.add_argument(
        "--queues",
        required=True,
        help="comma-separated queue codes (dept:edu,area:agri) or * for all",
    )
    p.set_defaults(func=cmd_window_add)
    p = wsub.add_parser("list", help="list windows")
    p.add_argument("--data", required=True, help="data directory of the node")
    p.set_defaults(func=cmd_window_list)

    catalog_cli.register_catalog(nsub)
    rebuild.register(nsub)
    restore.register_restore(nsub)  # replicate, replica-config, restore (litestream)
    replication_cli.register_node_commands(nsub)  # rotate-key, checkpoint, keygen
    bundle.register_keys(nsub)  # keys export, keys import


def open_db(data: str) -> tuple[cfgm.NodeConfig, sqlite_utils.Database]:
    try:
        cfg = cfgm.load(data)
    except cfgm.ConfigError as exc:
        raise CliError(str(exc)) from None
    return cfg, open_node_db(cfg)


def cmd_init(args: argparse.Namespace) -> int:
    data = Path(args.data)
    if (data / "node.toml").exists():
        raise CliError(f"{data} already holds a node", hint=f"onestop node serve --data {data}")
    cfg = cfgm.NodeConfig(
        data_dir=data,
        code=args.code,
        name=args.name,
        level=args.level,
        parent_code=args.parent,
        port=args.port,
        host=args.host,
        hub_url=args.hub_url,
        hub_pubkey=str(Path(args.hub_pubkey).resolve()) if args.hub_pubkey else "",
    )
    try:
        cfg.validate()
    except cfgm.ConfigError as exc:
        raise CliError(f"--{exc.field.replace('_', '-')}: {exc}") from None
    data.mkdir(parents=True, exist_ok=True)
    piim.create_secret(data)
    if recovery.create(data):
        print(
            f"recovery key: {data / recovery.RECOVERY_PUB}; export it off this host: "
            f"onestop node keys export --data {data} --out FILE"
        )
    db = dbm.connect(cfg.db_path)
    dbm.migrate(db)
    with dbm.tx(db):
        for k in ("code", "name", "level", "parent_code"):
            dbm.set_meta(db, f"node.{k}", getattr(cfg, k))
    # The node key before the seed: it signs the first event.
    signer.init_keys(cfg, db, args.key_passphrase_file, args.hub_pubkey, args.hub_seal_pubkey)
    litestream.init_config(cfg.data_dir, cfg.db_path)
    if not args.no_seed:
        counts = catalog.import_catalog(db, load_catalog(seed_path()))
        print(f"catalog: {counts}")
    (data / "node.toml").write_text(cfgm.dump(cfg), encoding="utf-8")
    print(f"node {cfg.code} {cfg.name} ({cfg.level}) initialised in {data}")
    print(f"next: onestop node user add --data {data} --username admin --role admin")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:

    try:
        cfg = cfgm.load(args.data, host=args.host, port=args.port)
    except cfgm.ConfigError as exc:
        raise CliError(str(exc)) from None
    logs.configure(cfg.log_level, cfg.log_format)
    serve(create_app(cfg), cfg.host, cfg.port, f"onestop node {cfg.code}", log)
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    _, db = open_db(args.data)
    try:
        u = users.add(db, args.username, read_password(), args.role, args.window, args.department)
    except ApiError as exc:
        raise CliError(f"--{exc.field or 'value'}: {exc.message}") from None
    print(f"user {u['username']} ({u['role']}) added")
    return 0


def cmd_window_add(args: argparse.Namespace) -> int:
    _, db = open_db(args.data)
    queues = (
        ["*"]
        if args.queues.strip() == "*"
        else [q.strip() for q in args.queues.split(",") if q.strip()]
    )
    try:
        w = windows.create(db, args.number, args.name or f"{args.number}号窗口", queues)
    except ApiError as exc:
        raise CliError(f"--{exc.field or 'value'}: {exc.message}") from None
    print(f"window {w['number']} ({w['name']}) serves {', '.join(w['queues'])}")
    return 0


def cmd_window_list(args: argparse.Namespace) -> int:
    _, db = open_db(args.data)
    for w in windows.all_windows(db):
        print(f"{w['number']:>3}  {w['status']:<7} {w['name']}  {','.join(w['queues'])}")
    return 0
