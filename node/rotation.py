"""Key rotation: a new node key announced in a ``key.rotated`` event signed with the old one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlite_utils

from node import events
from node.signer import (
    KEY_NAME,
    NEXT_KEY_NAME,
    SignerError,
    _finish_rotation,
    _key_is_encrypted,
    attach,
    checkpoint,
    current_signer,
    load_key_file,
    log_size,
    passphrase_from_env,
)
from onestop import db as dbm
from sync.chain import ROTATION_KIND, rotation_body
from sync.keys import generate_keypair, public_key_id


def rotate_key(
    cfg: Any, db: sqlite_utils.Database, passphrase: bytes | None = None
) -> tuple[str, str, int]:
    """Announce a new key in a ``key.rotated`` event signed with the old one, then switch.

    The old pair is kept as ``node-<old key id>.key``/``.pub``.  Returns (old id, new id, seq).
    """
    data = Path(cfg.data_dir)
    signer = current_signer(db)
    if signer is None:
        raise SignerError("this database has no signer")
    old_id = signer.key_id
    if passphrase is None and _key_is_encrypted(data / f"{KEY_NAME}.key"):
        passphrase = passphrase_from_env()
    for p in (data / f"{NEXT_KEY_NAME}.key", data / f"{NEXT_KEY_NAME}.pub"):
        p.unlink(missing_ok=True)  # left over from a rotation that never reached the log
    generate_keypair(data, NEXT_KEY_NAME, passphrase)
    new = load_key_file(data / f"{NEXT_KEY_NAME}.key", passphrase)
    with dbm.tx(db) as conn:
        if log_size(conn):
            checkpoint(conn)  # the last checkpoint under the old key
        seq = events.append(conn, ROTATION_KIND, "node", cfg.code, rotation_body(new.public_key()))
    _finish_rotation(data, new)
    attach(db, signer.node_code, new, data)
    return old_id, public_key_id(new.public_key()), seq
