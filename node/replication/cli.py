"""``onestop sync ...`` and the sync parts of ``onestop node ...``.

- ``onestop sync push|status|catalog --data DIR``; ``onestop sync relay add|list``;
- ``onestop node rotate-key|checkpoint|keygen --data DIR`` (:func:`register_node_commands`,
  called by node/cli.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from node import config as cfgm
from node import db as dbm
from node import signer as signerm
from node.replication import catalog_fetch, relay
from node.replication import status as statusm
from node.replication.client import HubError, HubUnreachable, PushClient, PushReport, backlog
from node.rotation import rotate_key
from node.signer import open_node_db
from onestop.errors import ApiError, CliError
from sync.keys import KeyFileError, generate_keypair, load_public, public_key_id


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sync = sub.add_parser("sync", help="replication of the signed log to the hub")
    ssub = sync.add_subparsers(dest="sync_command", metavar="COMMAND")

    p = ssub.add_parser("push", help="push once to the hub and report")
    p.add_argument("--data", required=True, metavar="DIR", help="node data directory")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_push)

    p = ssub.add_parser("status", help="where the hub stands, backlog, errors, rejections")
    p.add_argument("--data", required=True, metavar="DIR", help="node data directory")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=cmd_status)

    p = ssub.add_parser("catalog", help="fetch the hub's signed catalog once and import it")
    p.add_argument("--data", required=True, metavar="DIR", help="node data directory")
    p.set_defaults(func=cmd_catalog)

    rel = ssub.add_parser("relay", help="townships this (county/city) node relays for")
    rsub = rel.add_subparsers(dest="relay_command", metavar="ACTION")
    p = rsub.add_parser("add", help="accept and forward the records of node CODE")
    p.add_argument("--data", required=True, metavar="DIR", help="node data directory")
    p.add_argument("--code", required=True, help="division code of the relayed node")
    p.add_argument(
        "--pubkey",
        required=True,
        metavar="FILE",
        help="the relayed node's node.pub (the key of its first record)",
    )
    p.set_defaults(func=cmd_relay_add)
    p = rsub.add_parser("list", help="relayed nodes and how far the hub holds them")
    p.add_argument("--data", required=True, metavar="DIR", help="node data directory")
    p.set_defaults(func=cmd_relay_list)


def register_node_commands(nsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``onestop node rotate-key|checkpoint|keygen``."""
    p = nsub.add_parser("rotate-key", help="switch to a new signing key (announced in the log)")
    p.add_argument("--data", required=True, metavar="DIR", help="node data directory")
    p.set_defaults(func=cmd_rotate_key)
    p = nsub.add_parser("checkpoint", help="sign a checkpoint of the whole log now")
    p.add_argument("--data", required=True, metavar="DIR", help="node data directory")
    p.set_defaults(func=cmd_checkpoint)
    p = nsub.add_parser("keygen", help="give a node created before signing its key pair")
    p.add_argument("--data", required=True, metavar="DIR", help="node data directory")
    p.add_argument(
        "--key-passphrase-file",
        default="",
        metavar="FILE",
        help="encrypt node.key with the passphrase in FILE",
    )
    p.set_defaults(func=cmd_keygen)


def _open(data: str) -> tuple[Any, Any]:

    try:
        cfg = cfgm.load(data)
        return cfg, open_node_db(cfg)
    except cfgm.ConfigError as exc:
        raise CliError(str(exc)) from None


def cmd_push(args: argparse.Namespace) -> int:

    cfg, db = _open(args.data)
    if not cfg.hub_url:
        raise CliError(
            f"no hub configured for {args.data}",
            hint=f"set hub_url (and copy the hub's key to {args.data}/hub.pub)",
        )

    async def run() -> PushReport:
        client = PushClient(cfg, db)
        try:
            return await client.push_once()
        finally:
            await client.close()

    try:
        report = asyncio.run(run())
    except HubUnreachable as exc:
        raise CliError(
            f"{exc}; {backlog(db)} records wait and are sent when the hub is back",
            hint=f"check the network and hub_url in {args.data}/node.toml; "
            f"onestop sync status --data {args.data}",
        ) from None
    except HubError as exc:
        raise CliError(str(exc), hint=exc.hint) from None
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        print(
            f"sent {report.sent}, acked {report.acked} (hub at seq {report.ack_seq}), "
            f"relayed {report.relayed}, rejected {report.rejected}, backlog {report.backlog}"
        )
        for e in report.errors:
            print(f"error: {e}")
        if report.alert:
            print(f"ALERT: {report.alert}: see onestop sync status --data {args.data}")
    return 1 if report.alert or report.errors else 0


def cmd_status(args: argparse.Namespace) -> int:

    cfg, db = _open(args.data)
    s = statusm.status(cfg, db)
    print(statusm.as_json(s) if args.json else statusm.format_text(s))
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:

    cfg, db = _open(args.data)
    try:
        res = asyncio.run(catalog_fetch.fetch(cfg, db))
    except HubUnreachable as exc:
        raise CliError(
            str(exc), hint="the node keeps its current catalog; try again later"
        ) from None
    except HubError as exc:
        raise CliError(str(exc), hint=exc.hint) from None
    if res.status == "refused":
        print(f"error: catalog refused: {res.message}")
        return 1
    print(
        f"catalog {res.status}"
        + (f": {res.version}" if res.version else "")
        + (f" ({res.message})" if res.message else "")
    )
    return 0


def cmd_relay_add(args: argparse.Namespace) -> int:

    _, db = _open(args.data)
    try:
        pub = load_public(Path(args.pubkey))
    except KeyFileError as exc:
        raise CliError(f"--pubkey: {exc}") from None
    try:
        relay.add_node(db, args.code, pub)
    except ApiError as exc:
        raise CliError(exc.message) from None
    print(
        f"relaying for node {args.code} (key {public_key_id(pub)}); its hub_url may now "
        "point to this node"
    )
    return 0


def cmd_relay_list(args: argparse.Namespace) -> int:

    _, db = _open(args.data)
    for r in relay.nodes(db):
        print(
            f"{r['code']}  holds {r['seq']}  hub at {r['hub_ack_seq']}  "
            f"last seen {r['last_seen'] or 'never'}"
            + (f"  ALERT {r['alert']}" if r["alert"] else "")
        )
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:

    cfg, db = _open(args.data)
    old, new, seq = rotate_key(cfg, db)
    print(
        f"key rotated at seq {seq}: {old} -> {new}; the old key is kept as "
        f"node-{old}.key. The hub learns the new key from the log."
    )
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:

    _, db = _open(args.data)
    with dbm.tx(db) as conn:
        cp = signerm.checkpoint(conn)
    if cp is None:
        raise CliError("the key for this log size is not available")
    print(f"checkpoint: {cp['tree_size']} records, root {cp['root']}, key {cp['key_id']}")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:

    try:
        cfg = cfgm.load(args.data)
    except cfgm.ConfigError as exc:
        raise CliError(str(exc)) from None
    data = Path(args.data)
    if (data / "node.key").exists():
        raise CliError(
            f"{data / 'node.key'} already exists", hint=f"onestop node rotate-key --data {data}"
        )
    passphrase = (
        signerm.read_passphrase_file(Path(args.key_passphrase_file))
        if args.key_passphrase_file
        else signerm.passphrase_from_env()
    )
    generate_keypair(data, signerm.KEY_NAME, passphrase)
    db = dbm.connect(cfg.db_path)
    dbm.migrate(db)
    key = signerm.load_key_file(data / "node.key", passphrase)
    signerm.attach(db, cfg.code, key, data)
    print(f"node key {data / 'node.key'} created; {signerm.log_size(db)} events signed")
    return 0
