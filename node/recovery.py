"""The node's recovery key: personal data that survives the loss of the node.

Events never carry a full ID or phone number (:mod:`node.events`).  So that a node rebuilt
from its log (a restore from the hub, :mod:`node.restore`; a rebuild, :mod:`node.rebuild`)
gets its citizens' numbers back, the events that take them in carry them sealed
(:func:`sync.sealing.seal`, X25519 like the hub's seal) to the node's **recovery key**:
``id_recovery`` and ``phone_recovery`` beside the masks and keyed hashes.

- ``DIR/recovery.pub``: the public half, on the node; every sealed value is made with it.
- ``DIR/recovery.key``: the private half, written by ``onestop node init`` and kept only
  until ``onestop node keys export`` has put it in the passphrase-encrypted key bundle
  (:mod:`node.bundle`), which the rollout keeps off the host; export then removes it from
  the node (``--keep-recovery-key`` keeps it).  The hub never holds it.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

from onestop.db import database_file
from sync import sealing

RECOVERY_PUB = "recovery.pub"
RECOVERY_KEY = "recovery.key"


def create(data_dir: Path) -> bool:
    """Make the recovery key pair in ``data_dir`` unless it has one; True if made."""
    if (data_dir / RECOVERY_PUB).exists():
        return False
    priv, pub = sealing.generate_seal_keypair(data_dir, "recovery")
    del priv, pub
    return True


def public_key(data_dir: Path) -> sealing.X25519PublicKey | None:
    path = data_dir / RECOVERY_PUB
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    return _load_public(str(path), stamp)


@functools.lru_cache(maxsize=64)
def _load_public(path: str, stamp: int) -> sealing.X25519PublicKey:
    return sealing.load_seal_public(Path(path))


def private_key(data_dir: Path) -> sealing.X25519PrivateKey | None:
    """The private half if it is still on the node (not yet exported), else None."""
    path = data_dir / RECOVERY_KEY
    return sealing.load_seal_private(path) if path.exists() else None


def seal(data_dir: Path | str | None, value: str) -> str | None:
    """``value`` sealed to the node's recovery key; None when the node has none (a bare
    database of no node, in unit tests of other modules)."""
    if data_dir is None or not value:
        return None
    pub = public_key(Path(data_dir))
    return sealing.seal(pub, value) if pub is not None else None


def seal_in(conn: sqlite3.Connection, value: str) -> str | None:
    """:func:`seal` with the recovery key of the node whose database ``conn`` is."""
    path = database_file(conn)
    return seal(path.parent if path is not None else None, value)
