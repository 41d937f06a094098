"""The node's signing key, per database: signs every event, checkpoints and hub requests.

:func:`attach` registers the signer (node code + Ed25519 private key) for a database file;
:func:`node.events.append` looks it up with :func:`signer_for` inside the state change's
transaction.  :func:`open_node_db` (connect, migrate, attach) is the one way the node's app
and CLI open their database.  A connection opened some other way to a node's database finds
the key next to the database file (``DIR/node.key``); a node database without a key fails
loudly.  Only a bare database that belongs to no node (no ``node.toml``, no key, no node code)
gets unsigned events; they are signed ("adopted") when a key is attached later.

Key files in the data directory: ``node.key`` (0600, optionally passphrase-encrypted; the
passphrase comes from ``ONESTOP_KEY_PASSPHRASE`` or the file named by
``ONESTOP_KEY_PASSPHRASE_FILE``), ``node.pub``; after a rotation the old pair is kept as
``node-<key id>.key``/``.pub``; a node that adopted the hub's log under a new key after losing
its old one (:mod:`node.replication.rekey`) keeps the old public halves as
``node-<key id>.pub``.  ``hub.pub`` (the hub's Ed25519 key: receipts, catalogs) and
``hub-seal.pub`` (the hub's X25519 key for sealed ID numbers) are copied in at init.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from node import config as cfgm
from node import db as dbm
from onestop.errors import CliError
from sync import sealing
from sync.chain import GENESIS, ROTATION_KIND, make_record
from sync.checkpoint import make_checkpoint
from sync.keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    KeyFileError,
    generate_keypair,
    load_private,
    load_public,
    public_key_id,
)
from sync.merkle import MerkleTree, record_leaf

log = logging.getLogger("onestop.sync")

KEY_NAME = "node"
NEXT_KEY_NAME = "node-next"
HUB_PUB = "hub.pub"
HUB_SEAL_PUB = "hub-seal.pub"
PASSPHRASE_ENV = "ONESTOP_KEY_PASSPHRASE"
PASSPHRASE_FILE_ENV = "ONESTOP_KEY_PASSPHRASE_FILE"

Conn = sqlite3.Connection
DbLike = sqlite_utils.Database | sqlite3.Connection


class SignerError(CliError):
    """The node cannot sign: no key, the wrong key, or an unreadable key. ``hint`` says what to do.

    A :class:`onestop.cli.CliError`, so every command that opens the node says so plainly.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)


@dataclass
class Signer:
    node_code: str
    key: Ed25519PrivateKey
    data_dir: Path | None = None
    conn: Conn | None = None  # only for in-memory databases (keyed by connection)
    # (key, its id): asked on every event written, computed once per key.
    _kid: tuple[Ed25519PrivateKey, str] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def key_id(self) -> str:
        cached = self._kid
        if cached is None or cached[0] is not self.key:
            cached = self._kid = (self.key, public_key_id(self.key.public_key()))
        return cached[1]

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.key.public_key()


_registry: dict[str, Signer] = {}
_lock = threading.Lock()


def _conn(db: DbLike) -> Conn:
    return db.conn if isinstance(db, sqlite_utils.Database) else db


def _reg_key(conn: Conn) -> str:
    path = dbm.database_file(conn)
    return str(path) if path else f"memory:{id(conn)}"


# --------------------------------------------------------------------------- keys on disk


def passphrase_from_env() -> bytes | None:
    """The key passphrase from ``ONESTOP_KEY_PASSPHRASE`` or ``ONESTOP_KEY_PASSPHRASE_FILE``."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value.encode()
    file = os.environ.get(PASSPHRASE_FILE_ENV)
    if file:
        return read_passphrase_file(Path(file))
    return None


def read_passphrase_file(path: Path) -> bytes:
    try:
        text = path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise SignerError(f"cannot read passphrase file {path}: {exc.strerror}") from None
    if not text:
        raise SignerError(f"passphrase file {path} is empty")
    return text


def _key_is_encrypted(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return b"ENCRYPTED" in path.read_bytes()[:64]
    return False


def load_key_file(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    if passphrase is None and _key_is_encrypted(path):
        passphrase = passphrase_from_env()
        if passphrase is None:
            raise SignerError(
                f"{path} is encrypted",
                hint=f"set {PASSPHRASE_ENV} or {PASSPHRASE_FILE_ENV} to unlock the node key",
            )
    elif not _key_is_encrypted(path):
        passphrase = None
    try:
        return load_private(path, passphrase)
    except KeyFileError as exc:
        raise SignerError(str(exc)) from None


def load_node_key(
    data_dir: Path, key_id: str | None = None, passphrase: bytes | None = None
) -> Ed25519PrivateKey | None:
    """``DIR/node.key``, or the kept key with id ``key_id`` (None when no such file)."""
    candidates = [data_dir / f"{KEY_NAME}.key"]
    if key_id:
        candidates += [data_dir / f"{KEY_NAME}-{key_id}.key", data_dir / f"{NEXT_KEY_NAME}.key"]
    for path in candidates:
        if not path.exists():
            continue
        key = load_key_file(path, passphrase)
        if key_id is None or public_key_id(key.public_key()) == key_id:
            if path.name == f"{NEXT_KEY_NAME}.key":
                _finish_rotation(data_dir, key)
            return key
    return None


def known_public_keys(data_dir: Path) -> dict[str, Ed25519PublicKey]:
    """Every node public key in DIR (current and kept after rotations), by key id."""
    out: dict[str, Ed25519PublicKey] = {}
    for path in sorted(data_dir.glob(f"{KEY_NAME}*.pub")):
        with contextlib.suppress(KeyFileError):
            pub = load_public(path)
            out[public_key_id(pub)] = pub
    return out


# --------------------------------------------------------------------------- the registry


def attach(
    db: DbLike, node_code: str, private_key: Ed25519PrivateKey, data_dir: Path | None = None
) -> Signer:
    """Sign this database's events as ``node_code`` with ``private_key`` from now on.

    Unsigned events already in the log (written before the node had a key) are signed now,
    in one transaction.
    """
    conn = _conn(db)
    path = dbm.database_file(conn)
    signer = Signer(
        node_code, private_key, data_dir or (path.parent if path else None), None if path else conn
    )
    with _lock:
        _registry[_reg_key(conn)] = signer
    if _has_unsigned(conn):
        with dbm.tx(conn):
            adopt_unsigned(conn, signer)
    return signer


def _is_node_database(conn: Conn, path: Path | None) -> bool:
    if path is not None and (
        (path.parent / "node.toml").exists() or (path.parent / f"{KEY_NAME}.key").exists()
    ):
        return True
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'node.code'").fetchone()
    except sqlite3.OperationalError:
        return False
    return bool(row and row[0])


def _node_code_of(conn: Conn, data_dir: Path) -> str:
    with contextlib.suppress(sqlite3.OperationalError):
        row = conn.execute("SELECT value FROM meta WHERE key = 'node.code'").fetchone()
        if row and row[0]:
            return str(row[0])
    try:
        return cfgm.load(data_dir).code
    except cfgm.ConfigError as exc:
        raise SignerError(f"cannot tell this node's code: {exc}") from None


def signer_for(db: DbLike) -> Signer | None:
    """The signer of this database; finds ``node.key`` next to the file when none is attached.

    Raises :class:`SignerError` for a node's database without a usable key; returns None only
    for a bare database that belongs to no node.
    """
    conn = _conn(db)
    path = dbm.database_file(conn)
    key = str(path) if path else f"memory:{id(conn)}"
    signer = _registry.get(key)
    if signer is not None and (signer.conn is None or signer.conn is conn):
        return signer
    if path is not None and (path.parent / f"{KEY_NAME}.key").exists():
        private = load_node_key(path.parent)
        assert private is not None
        return attach(conn, _node_code_of(conn, path.parent), private, path.parent)
    if _is_node_database(conn, path):
        where = path.parent if path else "this database"
        raise SignerError(
            f"no signing key for the node in {where}: events cannot be written unsigned",
            hint="open the database with node.signer.open_node_db, or restore DIR/node.key",
        )
    return None


def expected_key_id(conn: Conn) -> str | None:
    """The key the next record must be signed with, from the log itself (None: empty log).

    After ``key.rotated`` it is the key the rotation announces; after any other record the
    key that signed it, which for ``node.rekeyed`` (signed with the key the hub authorised,
    :mod:`sync.rekey`) is the new key."""
    row = conn.execute(
        "SELECT kind, key_id, body FROM events WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    if row[0] == ROTATION_KIND:
        return str(json.loads(row[2]).get("key_id"))
    return str(row[1])


def current_signer(db: DbLike) -> Signer | None:
    """:func:`signer_for`, checked against the key the log expects next.

    After ``onestop node rotate-key`` ran in another process the new key is loaded from
    ``DIR/node.key``; a key that does not match the log is refused.
    """
    conn = _conn(db)
    signer = signer_for(conn)
    if signer is None:
        return None
    want = expected_key_id(conn)
    if want is None or want == signer.key_id:
        return signer
    fresh = load_node_key(signer.data_dir, want) if signer.data_dir else None
    if fresh is None:
        raise SignerError(
            f"the log continues with key {want} but this node holds key {signer.key_id}",
            hint="restore the node key matching the log (DIR/node.key)",
        )
    return attach(conn, signer.node_code, fresh, signer.data_dir)


# --------------------------------------------------------------------------- signing events


def _has_unsigned(conn: Conn) -> bool:
    """Unsigned events are only ever a prefix of the log: look at the last one."""
    with contextlib.suppress(sqlite3.OperationalError):
        row = conn.execute("SELECT hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return row is not None and row[0] is None
    return False


def event_of_row(row: Any) -> dict[str, Any]:
    return {
        "at": row["at"],
        "kind": row["kind"],
        "entity": row["entity"],
        "entity_id": row["entity_id"],
        "body": json.loads(row["body"]),
    }


def body_text(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def sign_next(conn: Conn, signer: Signer, event: dict[str, Any]) -> dict[str, Any]:
    """The signed record for the next event (``at``, ``kind``, ``entity``, ``entity_id``,
    ``body``); call inside the write transaction that inserts it."""
    last = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    if last is not None and last[1] is None:
        adopt_unsigned(conn, signer)
        last = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (int(last[0]) + 1, str(last[1])) if last else (1, GENESIS)
    return make_record(signer.node_code, {**event, "seq": seq}, prev, signer.key)


def adopt_unsigned(conn: Conn, signer: Signer) -> int:
    """Sign events written before the node had a key (inside the caller's transaction)."""
    conn_rf = conn.row_factory
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(
            "SELECT seq, at, kind, entity, entity_id, body FROM events WHERE hash IS NULL "
            "ORDER BY seq"
        ).fetchall()
        if not rows:
            return 0
        before = conn.execute(
            "SELECT hash FROM events WHERE seq < ? ORDER BY seq DESC LIMIT 1", [rows[0]["seq"]]
        ).fetchone()
        prev = before["hash"] if before else GENESIS
        trigger = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'events_no_update'"
        ).fetchone()
        if trigger:
            conn.execute("DROP TRIGGER events_no_update")
        for row in rows:
            rec = make_record(
                signer.node_code, {**event_of_row(row), "seq": row["seq"]}, prev, signer.key
            )
            conn.execute(
                "UPDATE events SET body = ?, prev = ?, hash = ?, sig = ?, key_id = ? WHERE seq = ?",
                [
                    body_text(rec["event"]["body"]),
                    rec["prev"],
                    rec["hash"],
                    rec["sig"],
                    rec["key_id"],
                    row["seq"],
                ],
            )
            prev = rec["hash"]
        if trigger:
            conn.execute(trigger["sql"])
    finally:
        conn.row_factory = conn_rf
    log.info("signed %d events written before the node had a key", len(rows))
    return len(rows)


# --------------------------------------------------------------------------- opening


def open_node_db(cfg: Any, passphrase: bytes | None = None) -> sqlite_utils.Database:
    """Connect to the node's database, migrate it and attach the node's signer."""
    db = dbm.connect(cfg.db_path)
    dbm.migrate(db)
    data_dir = Path(cfg.data_dir)
    conn = db.conn
    want = expected_key_id(conn)
    key = load_node_key(data_dir, want, passphrase)
    if key is None:
        if want is not None:
            raise SignerError(
                f"the log of {data_dir} continues with key {want}, which is not in {data_dir}",
                hint="restore the node key matching the log (DIR/node.key)",
            )
        raise SignerError(
            f"{data_dir / (KEY_NAME + '.key')} not found: the node cannot sign its log",
            hint=f"onestop node keygen --data {data_dir}",
        )
    attach(db, cfg.code, key, data_dir)
    return db


def node_code(db: DbLike) -> str:
    signer = signer_for(db)
    if signer is not None:
        return signer.node_code
    row = _conn(db).execute("SELECT value FROM meta WHERE key = 'node.code'").fetchone()
    return str(row[0]) if row else ""


# --------------------------------------------------------------------------- records


def record_of_row(code: str, row: Any) -> dict[str, Any]:
    return {
        "node": code,
        "seq": row["seq"],
        "prev": row["prev"],
        "event": event_of_row(row),
        "hash": row["hash"],
        "sig": row["sig"],
        "key_id": row["key_id"],
    }


def load_records(
    db: DbLike, after: int = 0, limit: int | None = None, code: str | None = None
) -> list[dict[str, Any]]:
    """Signed records with seq > ``after`` (in seq order), as sent to the hub."""
    conn = _conn(db)
    code = code or node_code(conn)
    sql = (
        "SELECT seq, at, kind, entity, entity_id, body, prev, hash, sig, key_id FROM events "
        "WHERE seq > ? ORDER BY seq"
    )
    params: list[Any] = [after]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    old = conn.row_factory
    conn.row_factory = sqlite3.Row
    try:
        return [record_of_row(code, r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.row_factory = old


def log_size(db: DbLike) -> int:
    row = _conn(db).execute("SELECT max(seq) FROM events").fetchone()
    return int(row[0] or 0)


def hash_at(db: DbLike, seq: int) -> str | None:
    if seq == 0:
        return GENESIS
    row = _conn(db).execute("SELECT hash FROM events WHERE seq = ?", [seq]).fetchone()
    return str(row[0]) if row and row[0] else None


# --------------------------------------------------------------------------- checkpoints

_trees: dict[str, tuple[MerkleTree, str]] = {}


def merkle_tree(db: DbLike) -> MerkleTree:
    """The Merkle tree over the log's record hashes (cached per database, extended as it grows)."""
    conn = _conn(db)
    key = _reg_key(conn)
    tree, last = _trees.get(key, (MerkleTree(), GENESIS))
    if len(tree) and hash_at(conn, len(tree)) != last:
        tree, last = MerkleTree(), GENESIS  # the database changed under us: rebuild
    for seq, h in conn.execute(
        "SELECT seq, hash FROM events WHERE seq > ? ORDER BY seq", [len(tree)]
    ).fetchall():
        if h is None or seq != len(tree) + 1:
            break
        tree.append(record_leaf(h))
        last = h
    _trees[key] = (tree, last)
    return tree


def _key_for_size(conn: Conn, tree_size: int) -> str | None:
    """Key id that must sign a checkpoint of the first ``tree_size`` records."""
    if tree_size == 0:
        row = conn.execute("SELECT key_id FROM events WHERE seq = 1").fetchone()
        return str(row[0]) if row and row[0] else None
    row = conn.execute(
        "SELECT kind, key_id, body FROM events WHERE seq = ?", [tree_size]
    ).fetchone()
    if row is None:
        return None
    if row[0] == ROTATION_KIND:
        return str(json.loads(row[2]).get("key_id"))
    return str(row[1])


def checkpoint_row(cp: dict[str, Any]) -> dict[str, Any]:
    return {k: cp[k] for k in ("tree_size", "root", "at", "sig", "key_id")}


def stored_checkpoint(db: DbLike, tree_size: int, code: str | None = None) -> dict[str, Any] | None:
    conn = _conn(db)
    row = conn.execute(
        "SELECT tree_size, root, at, sig, key_id FROM checkpoints WHERE tree_size = ?", [tree_size]
    ).fetchone()
    if row is None:
        return None
    return {
        "node": code or node_code(conn),
        "tree_size": row[0],
        "root": row[1],
        "at": row[2],
        "key_id": row[4],
        "sig": row[3],
    }


def checkpoint(db: DbLike, tree_size: int | None = None) -> dict[str, Any] | None:
    """The signed checkpoint of the first ``tree_size`` records (default: the whole log).

    Reuses a stored one of that size, else signs (with the key current at that size: a kept
    old key for sizes before a rotation) and stores it.  None when that key is gone.
    """
    conn = _conn(db)
    signer = current_signer(conn)
    if signer is None:
        raise SignerError("a bare database has no checkpoints")
    size = log_size(conn) if tree_size is None else tree_size
    old = stored_checkpoint(conn, size, signer.node_code)
    if old is not None:
        return old
    want = _key_for_size(conn, size) or signer.key_id
    key = (
        signer.key
        if want == signer.key_id
        else (load_node_key(signer.data_dir, want) if signer.data_dir else None)
    )
    if key is None:
        return None
    tree = merkle_tree(conn)
    if len(tree) < size:
        raise SignerError(f"the log holds only {len(tree)} signed records, not {size}")
    cp = make_checkpoint(signer.node_code, size, tree.root(size), key)
    conn.execute(
        "INSERT OR IGNORE INTO checkpoints (tree_size, root, at, sig, key_id) "
        "VALUES (:tree_size, :root, :at, :sig, :key_id)",
        checkpoint_row(cp),
    )
    return stored_checkpoint(conn, size, signer.node_code)


def all_checkpoints(db: DbLike, code: str | None = None) -> list[dict[str, Any]]:
    conn = _conn(db)
    code = code or node_code(conn)
    return [
        {"node": code, "tree_size": r[0], "root": r[1], "at": r[2], "key_id": r[4], "sig": r[3]}
        for r in conn.execute(
            "SELECT tree_size, root, at, sig, key_id FROM checkpoints ORDER BY tree_size"
        ).fetchall()
    ]


# --------------------------------------------------------------------------- init


def init_keys(
    cfg: cfgm.NodeConfig,
    db: sqlite_utils.Database,
    passphrase_file: str = "",
    hub_pub: str = "",
    seal_pub: str = "",
) -> None:
    """``onestop node init``: the node's key pair, the hub's keys (copied into DIR), and the
    signer attached to ``db``."""
    data = Path(cfg.data_dir)
    passphrase: bytes | None
    if passphrase_file:
        passphrase = read_passphrase_file(Path(passphrase_file))
    else:
        passphrase = passphrase_from_env()
    priv = data / f"{KEY_NAME}.key"
    if priv.exists():  # a half-finished earlier init: keep its key
        key = load_key_file(priv, passphrase)
        print(f"node key: kept {priv} ({public_key_id(key.public_key())})")
    else:
        try:
            generate_keypair(data, KEY_NAME, passphrase)
        except (KeyFileError, ValueError) as exc:
            raise SignerError(str(exc)) from None
        key = load_key_file(priv, passphrase)
        enc = ", passphrase-encrypted" if passphrase else ""
        print(
            f"node key: {priv} ({public_key_id(key.public_key())}{enc}); "
            f"public key {data / (KEY_NAME + '.pub')}"
        )
    if hub_pub:
        try:
            load_public(Path(hub_pub))
        except KeyFileError as exc:
            raise SignerError(f"--hub-pubkey: {exc}") from None
        if Path(hub_pub).resolve() != (data / HUB_PUB).resolve():
            shutil.copyfile(hub_pub, data / HUB_PUB)
        print(f"hub key: {data / HUB_PUB}")
    if seal_pub:
        try:
            sealing.load_seal_public(Path(seal_pub))
        except ValueError as exc:
            raise SignerError(f"--hub-seal-pubkey: {exc}") from None
        if Path(seal_pub).resolve() != (data / HUB_SEAL_PUB).resolve():
            shutil.copyfile(seal_pub, data / HUB_SEAL_PUB)
        print(f"hub sealing key: {data / HUB_SEAL_PUB}")
    attach(db, cfg.code, key, data)


def _finish_rotation(data: Path, new: Ed25519PrivateKey) -> None:
    """Keep the old pair as node-<id>.*, make node-next.* the current node.*."""
    cur = data / f"{KEY_NAME}.key"
    nxt = data / f"{NEXT_KEY_NAME}.key"
    if not nxt.exists():
        return
    if cur.exists():
        old_pub = (
            load_public(data / f"{KEY_NAME}.pub") if (data / f"{KEY_NAME}.pub").exists() else None
        )
        kid = public_key_id(old_pub) if old_pub else "old"
        if kid != public_key_id(new.public_key()):
            os.replace(cur, data / f"{KEY_NAME}-{kid}.key")
            if old_pub:
                os.replace(data / f"{KEY_NAME}.pub", data / f"{KEY_NAME}-{kid}.pub")
    os.replace(nxt, cur)
    os.replace(data / f"{NEXT_KEY_NAME}.pub", data / f"{KEY_NAME}.pub")


# --------------------------------------------------------------------------- hub keys


def hub_public_key(cfg: Any) -> Ed25519PublicKey | None:
    """The hub's Ed25519 key: ``DIR/hub.pub``, else the file named by ``hub_pubkey``."""
    for path in (Path(cfg.data_dir) / HUB_PUB, Path(cfg.hub_pubkey) if cfg.hub_pubkey else None):
        if path is not None and path.exists():
            try:
                return load_public(path)
            except KeyFileError as exc:
                log.warning("hub key unusable: %s", exc)
    return None


def seal_for_hub(cfg: Any, id_number: str) -> str | None:
    """``id_number`` sealed to the hub's X25519 key (``DIR/hub-seal.pub``) so only the hub can
    read it (relays cannot); None when the node has no hub sealing key."""
    path = Path(cfg.data_dir) / HUB_SEAL_PUB
    if not path.exists():
        return None
    return sealing.seal(sealing.load_seal_public(path), id_number)
