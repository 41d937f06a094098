"""``onestop hub ...``: init, serve, enroll, revoke, rekey, catalog publish, user, rollups; and
the hub's half of ``onestop verify`` (:func:`verify_hub_copy`)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import sqlite_utils
from cryptography.hazmat.primitives import serialization as ser

from hub import catalog as catalogm
from hub import config as cfgm
from hub import db as hubdb
from hub import identity, rekeys, rollups, users
from hub.app import create_app
from hub.identity import IdentityError
from hub.ingest.readback import verify_stored
from onestop import logs
from onestop.clock import utcnow
from onestop.commands import serve
from onestop.divisions import DivisionError
from onestop.errors import ApiError, CliError
from onestop.passwords import read_password
from schemas.catalog import CatalogError, load_catalog
from sync.chain import GENESIS
from sync.keys import KeyFileError, load_public, public_key_id, public_raw_b64

log = logging.getLogger("onestop.hub")

LEVELS = ("province", "city", "county", "township")
CODE_LENGTHS = (2, 4, 6, 9, 12)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    hub = sub.add_parser("hub", help="the provincial hub")
    hub.set_defaults(func=lambda args: _usage(hub))
    hsub = hub.add_subparsers(dest="hub_command", metavar="COMMAND")

    p = hsub.add_parser("init", help="create a hub: config, database, signing/sealing/link keys")
    p.add_argument("--data", required=True, metavar="DIR", help="data directory of the hub")
    p.add_argument("--name", default=None, help="the hub's name shown on its pages")
    p.add_argument("--host", default=None, help="address to serve on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port to serve on (default 8090)")
    p.set_defaults(func=cmd_init)

    p = hsub.add_parser("serve", help="run the hub's web server")
    p.add_argument("--data", required=True, metavar="DIR", help="data directory of the hub")
    p.add_argument("--host", default=None, help="override the configured address")
    p.add_argument(
        "--port", type=int, default=None, help="override the configured port (0: any free port)"
    )
    p.set_defaults(func=cmd_serve)

    p = hsub.add_parser("enroll", help="enroll a node's public key (or update its details)")
    p.add_argument("--data", required=True, metavar="DIR", help="data directory of the hub")
    p.add_argument("--code", required=True, help="the node's division code, e.g. 370102001")
    p.add_argument("--pubkey", required=True, metavar="FILE",
                   help="the node's Ed25519 public key (its DIR/node.pub)")  # fmt: skip
    p.add_argument("--name", default=None, help="the center's name")
    p.add_argument("--level", default=None, choices=LEVELS)
    p.add_argument("--parent", default=None, metavar="CODE",
                   help="division code of the center it reports through: its relay, the only "
                   "node that may forward its batches")  # fmt: skip
    p.set_defaults(func=cmd_enroll)

    p = hsub.add_parser("revoke", help="revoke a node's key: its pushes are refused from now on")
    p.add_argument("--data", required=True, metavar="DIR", help="data directory of the hub")
    p.add_argument("--code", required=True, help="the node's division code")
    p.set_defaults(func=cmd_revoke)

    p = hsub.add_parser(
        "rekey", help="authorise a new key for a node whose key is lost (hub-signed)"
    )
    p.add_argument("--data", required=True, metavar="DIR", help="data directory of the hub")
    p.add_argument("--node", required=True, metavar="CODE", help="the node's division code")
    p.add_argument("--pubkey", required=True, metavar="FILE",
                   help="the new key: node.pub of the node set up again under the same code")  # fmt: skip
    p.add_argument("--by", required=True, metavar="NAME",
                   help="who authorises it (kept in the signed authorisation)")  # fmt: skip
    p.add_argument("--reason", default="", metavar="TEXT", help="why, for the record")
    p.set_defaults(func=cmd_rekey)

    cat = hsub.add_parser("catalog", help="signed service catalog versions for the nodes")
    cat.set_defaults(func=lambda args: _usage(cat))
    csub = cat.add_subparsers(dest="catalog_command", metavar="ACTION")
    p = csub.add_parser("publish", help="validate FILE, sign it and store it as a new version")
    p.add_argument("file", metavar="FILE", help="catalog JSON file")
    p.add_argument("--data", required=True, metavar="DIR", help="data directory of the hub")
    p.set_defaults(func=cmd_catalog_publish)

    usr = hsub.add_parser("user", help="hub accounts for the dashboards")
    usr.set_defaults(func=lambda args: _usage(usr))
    usub = usr.add_subparsers(dest="user_command", metavar="ACTION")
    p = usub.add_parser("add", help="add an account (password from stdin or prompt)")
    p.add_argument("--data", required=True, metavar="DIR", help="data directory of the hub")
    p.add_argument("--username", required=True)
    p.add_argument("--role", required=True, choices=("admin", "official"))
    p.add_argument(
        "--scope",
        required=True,
        metavar="CODE",
        help="division the user may read: 37 the province, 3701 a city, ...",
    )
    p.set_defaults(func=cmd_user_add)
    p = usub.add_parser("list", help="list accounts")
    p.add_argument("--data", required=True, metavar="DIR", help="data directory of the hub")
    p.set_defaults(func=cmd_user_list)

    rol = hsub.add_parser("rollups", help="dashboard rollups")
    rol.set_defaults(func=lambda args: _usage(rol))
    rsub = rol.add_subparsers(dest="rollups_command", metavar="ACTION")
    p = rsub.add_parser("rebuild", help="recompute every dashboard rollup from the records")
    p.add_argument("--data", required=True, metavar="DIR", help="data directory of the hub")
    p.set_defaults(func=cmd_rollups_rebuild)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _check_code(code: str, option: str) -> None:
    if not code.isdigit() or len(code) not in CODE_LENGTHS:
        raise CliError(f"{option}: division code must be 2, 4, 6, 9 or 12 digits, got {code!r}")


def open_hub(data: str) -> tuple[cfgm.HubConfig, sqlite_utils.Database]:
    try:
        cfg = cfgm.load(data)
    except cfgm.ConfigError as exc:
        raise CliError(str(exc)) from None
    return cfg, hubdb.open_db(cfg.db_path)


# -- init / serve --------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:

    data = Path(args.data)
    if (data / "hub.toml").exists():
        raise CliError(f"{data} already holds a hub", hint=f"onestop hub serve --data {data}")
    overrides = {k: getattr(args, k) for k in ("name", "host", "port")
                 if getattr(args, k) is not None}  # fmt: skip
    cfg = cfgm.HubConfig(data_dir=data, **overrides)
    try:
        cfg.validate()
    except cfgm.ConfigError as exc:
        raise CliError(f"--{exc.field.replace('_', '-')}: {exc}") from None
    try:
        identity.create(cfg)
    except (identity.IdentityError, OSError, ValueError) as exc:
        raise CliError(str(exc)) from None
    ident = identity.load(cfg)
    db = hubdb.open_db(cfg.db_path)
    with hubdb.tx(db):
        hubdb.set_meta(db, "hub.key_id", ident.key_id)
        hubdb.set_meta(db, "hub.seal_pub", ident.seal_public_pem())
        hubdb.set_meta(db, "hub.created_at", utcnow())
    db.conn.close()
    (data / "hub.toml").write_text(cfgm.dump(cfg), encoding="utf-8")
    print(f"hub initialised in {data} (signing key id {ident.key_id})")
    print(f"give every node {cfg.pub_path.name} (receipts, catalog) and "
          f"{cfg.seal_pub_path.name} (sealing ID numbers)")  # fmt: skip
    print(f"next: onestop hub enroll --data {data} --code CODE --pubkey NODE_DIR/node.pub")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:

    try:
        cfg = cfgm.load(args.data, host=args.host, port=args.port)
    except cfgm.ConfigError as exc:
        raise CliError(str(exc)) from None
    logs.configure(cfg.log_level, cfg.log_format)
    try:
        app = create_app(cfg)
    except IdentityError as exc:
        raise CliError(str(exc)) from None
    serve(app, cfg.host, cfg.port, "onestop hub", log)
    return 0


# -- enroll / revoke -------------------------------------------------------------------------------


def cmd_enroll(args: argparse.Namespace) -> int:

    _check_code(args.code, "--code")
    if args.parent:
        _check_code(args.parent, "--parent")
    try:
        key = load_public(args.pubkey)
    except KeyFileError as exc:
        raise CliError(f"--pubkey: {exc}") from None
    kid, raw = public_key_id(key), public_raw_b64(key)
    pem = key.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo).decode()
    _, db = open_hub(args.data)
    now = utcnow()
    with hubdb.tx(db):
        node = hubdb.one(db, "SELECT * FROM nodes WHERE code = ?", [args.code])
        if node is None:
            db.execute(
                "INSERT INTO nodes (code, name, level, parent, pubkey, key_id, cur_key, status, "
                "enrolled_at, ack_seq, ack_hash) VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, 0, ?)",
                [args.code, args.name or "", args.level or "", args.parent or "", pem, kid, raw,
                 now, GENESIS],
            )  # fmt: skip
            db.execute(
                "INSERT INTO node_keys (node, key_id, pubkey, from_seq, source, added_at) "
                "VALUES (?, ?, ?, 0, 'enrolled', ?)",
                [args.code, kid, raw, now],
            )
            print(f"node {args.code} enrolled with key {kid}")
            return 0
        if node["status"] != "active":
            raise CliError(
                f"node {args.code}'s key was revoked at {node['revoked_at']}; "
                "re-enrolling a revoked node is not supported yet"
            )
        known = {r["key_id"] for r in hubdb.rows(
            db, "SELECT key_id FROM node_keys WHERE node = ?", [args.code])}  # fmt: skip
        if kid not in known:
            raise CliError(
                f"node {args.code} is enrolled with key {node['key_id']}, not {kid}",
                hint="a node changes keys with a key.rotated record in its log, signed by the "
                "old key; the hub follows it",
            )
        for col in ("name", "level", "parent"):
            value = getattr(args, col)
            if value is not None:
                db.execute(f"UPDATE nodes SET {col} = ? WHERE code = ?", [value, args.code])
    print(f"node {args.code} already enrolled (key {node['key_id']}); details updated")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    _, db = open_hub(args.data)
    now = utcnow()
    with hubdb.tx(db):
        node = hubdb.one(db, "SELECT * FROM nodes WHERE code = ?", [args.code])
        if node is None:
            raise CliError(f"node {args.code} is not enrolled at this hub")
        if node["status"] == "revoked":
            print(f"node {args.code}'s key {node['key_id']} was already revoked "
                  f"at {node['revoked_at']}")  # fmt: skip
            return 0
        db.execute(
            "UPDATE nodes SET status = 'revoked', revoked_at = ? WHERE code = ?", [now, args.code]
        )
        db.execute(
            "UPDATE node_keys SET revoked_at = ? WHERE node = ? AND revoked_at IS NULL",
            [now, args.code],
        )
    print(f"node {args.code}: key {node['key_id']} revoked; its pushes are refused from now on "
          f"(the {node['ack_seq']} records already verified are kept)")  # fmt: skip
    return 0


def cmd_rekey(args: argparse.Namespace) -> int:
    _check_code(args.node, "--node")
    try:
        key = load_public(args.pubkey)
    except KeyFileError as exc:
        raise CliError(f"--pubkey: {exc}") from None
    if not args.by.strip():
        raise CliError("--by: say who authorises the new key")
    cfg, db = open_hub(args.data)
    try:
        ident = identity.load(cfg)
    except identity.IdentityError as exc:
        raise CliError(str(exc)) from None
    try:
        done = rekeys.authorise(db, ident, args.node, key, args.by.strip(), args.reason, utcnow())
    except rekeys.RekeyError as exc:
        raise CliError(f"--node {args.node}: {exc}", hint=exc.hint) from None
    auth = done.auth
    if done.superseded:
        print(f"the earlier pending re-key of node {args.node} is superseded")
    if done.reactivated:
        print(f"node {args.node} was revoked; it is active again with the new key")
    print(f"node {args.node}: key {auth.old_key_id} replaced by {auth.new_key_id} from seq "
          f"{auth.from_seq} (after {auth.prev[:16]}…), authorised by {auth.by}, signed by hub key "
          f"{auth.hub}")  # fmt: skip
    print("the hub now accepts only the new key for this node's requests and records; the new "
          "node adopts the hub's copy of its log and continues it with a node.rekeyed record")  # fmt: skip
    return 0


# -- catalog -----------------------------------------------------------------------------------------


def cmd_catalog_publish(args: argparse.Namespace) -> int:
    cfg, db = open_hub(args.data)
    try:
        data = load_catalog(Path(args.file))
    except CatalogError as exc:
        for path, message in exc.errors[:20]:
            print(f"error: {path}: {message}", file=sys.stderr)
        raise CliError(f"{args.file} is not a valid catalog; nothing published") from None
    try:
        ident = identity.load(cfg)
    except identity.IdentityError as exc:
        raise CliError(str(exc)) from None
    doc, created = catalogm.publish(db, ident.signing_key, data, timezone=cfg.timezone)
    if created:
        print(f"catalog version {doc['version']} published (signed by {doc['key_id']})")
    else:
        print(f"catalog unchanged: version {doc['version']} is still the latest")
    return 0


# -- users, rollups ----------------------------------------------------------------------------------


def cmd_user_add(args: argparse.Namespace) -> int:

    _, db = open_hub(args.data)
    password = read_password()
    try:
        user = users.add(db, args.username, password, args.role, args.scope)
    except ApiError as exc:
        raise CliError(f"--{exc.field or 'username'}: {exc.message}") from None
    except DivisionError as exc:
        raise CliError(f"division data: {exc}") from None
    print(f"user {user['username']} added: {user['role']}, scope {user['scope']}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:

    _, db = open_hub(args.data)
    for u in users.all_users(db):
        flag = " (disabled)" if u["disabled"] else ""
        print(f"{u['username']}\t{u['role']}\t{u['scope']}{flag}")
    return 0


def cmd_rollups_rebuild(args: argparse.Namespace) -> int:

    cfg, db = open_hub(args.data)
    t0 = time.perf_counter()
    n = rollups.rebuild(db, cfg.timezone)
    print(f"rollups rebuilt from {n} records in {time.perf_counter() - t0:.1f} s "
          f"(time zone {cfg.timezone})")  # fmt: skip
    return 0


# -- verify (``onestop verify --hub DIR --code CODE``) ------------------------------------------


def verify_hub_copy(data: str, code: str) -> int:

    cfg, db = open_hub(data)
    try:
        hub_key = load_public(cfg.pub_path)
    except KeyFileError as exc:
        raise CliError(f"the hub's key: {exc}") from None
    try:
        node, report = verify_stored(db, code, hub_key)
    except LookupError as exc:
        raise CliError(str(exc)) from None
    name = f" {node['name']}" if node["name"] else ""
    print(f"node {code}{name}: {report.records} records, {report.checkpoints} checkpoints, "
          f"hub position seq {node['ack_seq']}, key {node['key_id']} ({node['status']})")  # fmt: skip
    if report.ok:
        print("OK: every record, hash link, signature, key rotation and checkpoint verifies")
        return 0
    print(f"FAILED: {len(report.problems)} problem(s):")
    for p in report.problems:
        print(f"  {p}")
    return 1
