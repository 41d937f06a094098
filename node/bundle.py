"""The node's key bundle: one passphrase-encrypted file with everything a lost node needs.

``onestop node keys export --data DIR --out FILE`` writes it (mode 0600, never over an
existing file) and then removes ``DIR/recovery.key`` from the node (``--keep-recovery-key``
keeps it): the recovery key lives off the host, in the bundle (:mod:`node.recovery`).
``onestop node keys import --data DIR --bundle FILE`` writes the files back into a directory
that holds no ``node.db``, where ``onestop node restore`` can then run.

What it holds (:data:`FILES`, each if present; ``node.toml``, ``node.key``, ``node.pub`` and
``secret.key`` must be): ``node.toml`` (code, name, level, parent and every setting), the
signing key ``node.key``/``node.pub`` and the pairs kept after rotations
(``node-<key id>.key``/``.pub``), ``secret.key`` (the Fernet/HMAC secret of :mod:`node.pii`),
``recovery.key``/``recovery.pub``, and the hub's ``hub.pub`` and ``hub-seal.pub``.  A node key
encrypted with its own passphrase stays so inside the bundle.

Format (version 1): a UTF-8 JSON object ::

    {"format": "onestop-node-keys", "version": 1, "node": "370102001",
     "created_at": "2026-11-29T10:00:00.000Z",
     "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": "<base64, 16 bytes>"},
     "cipher": "AES-256-GCM", "nonce": "<base64, 12 bytes>",
     "ciphertext": "<base64>"}

The 32-byte key is scrypt(passphrase, salt, n, r, p); AES-256-GCM encrypts, with associated
data the RFC 8785 canonical JSON of every field but ``ciphertext`` (so the clear header cannot
be changed either), the canonical JSON of ::

    {"node": {"code", "name", "level", "parent"},
     "files": {"<name>": {"mode": 384, "data": "<base64>"}, ...}}

The passphrase comes from ``--passphrase-file FILE`` (its first line) or
``ONESTOP_BUNDLE_PASSPHRASE``; export wants at least :data:`MIN_PASSPHRASE` characters.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from node import config as cfgm
from node import recovery
from node.pii import SECRET_FILE
from node.signer import HUB_PUB, HUB_SEAL_PUB, KEY_NAME
from onestop.clock import utcnow
from onestop.errors import CliError
from sync.canonical import b64decode, b64encode, canonical
from sync.keys import KeyFileError, write_new

FORMAT = "onestop-node-keys"
VERSION = 1
PASSPHRASE_ENV = "ONESTOP_BUNDLE_PASSPHRASE"
MIN_PASSPHRASE = 12
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
# Bounds for the parameters a bundle names (what it may cost to open one).
MAX_N, MAX_R, MAX_P = 2**20, 32, 16
CONFIG_FILE = "node.toml"
REQUIRED = (CONFIG_FILE, f"{KEY_NAME}.key", f"{KEY_NAME}.pub", SECRET_FILE)
OPTIONAL = (recovery.RECOVERY_KEY, recovery.RECOVERY_PUB, HUB_PUB, HUB_SEAL_PUB)
#: The names a bundle may hold: the fixed ones, and node-<id>.key/.pub kept after rotations.
FILES = re.compile(
    rf"({'|'.join(re.escape(n) for n in REQUIRED + OPTIONAL)}|{KEY_NAME}-[A-Za-z0-9]+\.(key|pub))"
)
SECRET_MODE, PUBLIC_MODE = 0o600, 0o644
HINT = f"give the bundle's passphrase with --passphrase-file FILE or {PASSPHRASE_ENV}"


class BundleError(CliError):
    """A bundle cannot be written or opened; the message says why, ``hint`` what to do."""


@dataclass(frozen=True)
class Bundle:
    """An opened bundle: the node's details and its files (name -> (mode, bytes))."""

    code: str
    name: str
    level: str
    parent: str
    created_at: str
    files: dict[str, tuple[int, bytes]]


# ---- the format ----------------------------------------------------------------------------


def _key(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)


def seal(bundle: Bundle, passphrase: bytes) -> bytes:
    """The bundle file's bytes (see the module docstring)."""
    salt, nonce = os.urandom(16), os.urandom(12)
    header: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "node": bundle.code,
        "created_at": bundle.created_at,
        "kdf": {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
                "salt": b64encode(salt)},
        "cipher": "AES-256-GCM", "nonce": b64encode(nonce),
    }  # fmt: skip
    payload = {
        "node": {"code": bundle.code, "name": bundle.name, "level": bundle.level,
                 "parent": bundle.parent},
        "files": {name: {"mode": mode, "data": b64encode(data)}
                  for name, (mode, data) in sorted(bundle.files.items())},
    }  # fmt: skip
    key = _key(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    ciphertext = AESGCM(key).encrypt(nonce, canonical(payload), canonical(header))
    doc = {**header, "ciphertext": b64encode(ciphertext)}
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode()


def _bad(what: str) -> BundleError:
    return BundleError(f"not a onestop key bundle: {what}",
                       hint="give the file `onestop node keys export` wrote")  # fmt: skip


def open_bundle(data: bytes, passphrase: bytes) -> Bundle:
    """The bundle in ``data``; :class:`BundleError` for a wrong passphrase or a damaged file."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise _bad("the file is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _bad(f'no "format": "{FORMAT}"')
    if doc.get("version") != VERSION:
        raise BundleError(f"bundle version {doc.get('version')!r}; this onestop reads {VERSION}",
                          hint="open it with the onestop release that wrote it")  # fmt: skip
    header = {k: v for k, v in doc.items() if k != "ciphertext"}
    kdf = doc.get("kdf")
    try:
        if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
            raise ValueError("kdf must be scrypt")
        n, r, p = kdf["n"], kdf["r"], kdf["p"]
        if not all(type(v) is int for v in (n, r, p)):
            raise ValueError("scrypt parameters must be integers")
        if not (2 <= n <= MAX_N and n & (n - 1) == 0 and 1 <= r <= MAX_R and 1 <= p <= MAX_P):
            raise ValueError("scrypt parameters out of range")
        if doc.get("cipher") != "AES-256-GCM":
            raise ValueError("cipher must be AES-256-GCM")
        salt, nonce = b64decode(kdf["salt"]), b64decode(doc["nonce"])
        ciphertext = b64decode(doc["ciphertext"])
        if len(nonce) != 12 or not salt:
            raise ValueError("bad salt or nonce")
        aad = canonical(header)
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(str(exc)) from None
    try:
        plain = AESGCM(_key(passphrase, salt, n, r, p)).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise BundleError(
            "cannot open the bundle: wrong passphrase, or the file is damaged", hint=HINT
        ) from None
    try:
        payload = json.loads(plain)
        node = payload["node"]
        files: dict[str, tuple[int, bytes]] = {}
        for name, f in payload["files"].items():
            if not FILES.fullmatch(name):
                raise ValueError(f"unexpected file name {name!r}")
            mode = int(f["mode"]) & 0o777
            files[name] = (mode, b64decode(f["data"]))
        bundle = Bundle(str(node["code"]), str(node["name"]), str(node["level"]),
                        str(node["parent"]), str(doc.get("created_at", "")), files)  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _bad(f"its contents: {exc}") from None
    if bundle.code != doc.get("node"):
        raise _bad("the node named outside differs from the one inside")
    missing = [f for f in REQUIRED if f not in files]
    if missing:
        raise _bad(f"it lacks {', '.join(missing)}")
    return bundle


# ---- passphrases ---------------------------------------------------------------------------


def read_passphrase(path: str = "") -> bytes:
    """The passphrase: the first line of ``path``, else ``ONESTOP_BUNDLE_PASSPHRASE``."""
    if path:
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise BundleError(f"cannot read --passphrase-file {path}: {exc.strerror}") from None
        value = text.split(b"\n", 1)[0].rstrip(b"\r")
        where = f"--passphrase-file {path}"
    else:
        value = os.environ.get(PASSPHRASE_ENV, "").encode()
        where = PASSPHRASE_ENV
    if not value:
        raise BundleError(f"no passphrase: {where} is empty", hint=HINT)
    return value


def check_new_passphrase(passphrase: bytes) -> None:
    if len(passphrase.decode("utf-8", "replace")) < MIN_PASSPHRASE:
        raise BundleError(
            f"the passphrase is too short: at least {MIN_PASSPHRASE} characters",
            hint="use a long passphrase (several words); it alone protects the node's keys",
        )


# ---- export / import -----------------------------------------------------------------------


def collect(data: Path) -> Bundle:
    """The bundle of the node in ``data`` (its files read as they are)."""
    try:
        cfg = cfgm.load(data)
    except cfgm.ConfigError as exc:
        raise BundleError(str(exc)) from None
    names = [*REQUIRED, *OPTIONAL]
    names += sorted(
        p.name for p in data.glob(f"{KEY_NAME}-*.*") if FILES.fullmatch(p.name) and p.is_file()
    )
    files: dict[str, tuple[int, bytes]] = {}
    for name in names:
        path = data / name
        if not path.is_file():
            if name in REQUIRED:
                raise BundleError(f"{path} not found: the bundle needs it")
            continue
        secret = name.endswith(".key")
        files[name] = (SECRET_MODE if secret else PUBLIC_MODE, path.read_bytes())
    return Bundle(cfg.code, cfg.name, cfg.level, cfg.parent_code, utcnow(), files)


def export(data: Path, out: Path, passphrase: bytes, keep_recovery_key: bool = False) -> Bundle:
    """Write the bundle of the node in ``data`` to ``out`` (0600, never overwriting), check it
    opens, then remove ``data/recovery.key`` unless ``keep_recovery_key``."""
    check_new_passphrase(passphrase)
    if out.exists() or out.is_symlink():
        raise BundleError(f"{out} exists; refusing to overwrite it", hint="give another --out")
    bundle = collect(data)
    try:
        write_new(out, seal(bundle, passphrase), SECRET_MODE)
    except KeyFileError:
        raise BundleError(f"{out} exists; refusing to overwrite it") from None
    except OSError as exc:
        raise BundleError(f"cannot write {out}: {exc.strerror}") from None
    if open_bundle(out.read_bytes(), passphrase).files != bundle.files:
        raise BundleError(f"{out} does not read back as written; nothing was removed")
    if not keep_recovery_key and recovery.RECOVERY_KEY in bundle.files:
        (data / recovery.RECOVERY_KEY).unlink()
    return bundle


def import_bundle(data: Path, path: Path, passphrase: bytes) -> Bundle:
    """Write the files of the bundle at ``path`` into ``data`` (which holds no node.db)."""
    if (data / "node.db").exists():
        raise BundleError(
            f"{data / 'node.db'} exists: import writes keys only into a directory without a "
            "node database",
            hint="import into a new directory, then run onestop node restore there",
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read --bundle {path}: {exc.strerror}") from None
    bundle = open_bundle(raw, passphrase)
    there = sorted(n for n in bundle.files if (data / n).exists() or (data / n).is_symlink())
    if there:
        raise BundleError(f"{data} already holds {', '.join(there)}; refusing to overwrite",
                          hint="import into an empty directory")  # fmt: skip
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, (mode, content) in sorted(bundle.files.items()):
        write_new(data / name, content, mode)
    return bundle


# ---- CLI -----------------------------------------------------------------------------------


def register_keys(nsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``onestop node keys export|import``."""
    keys = nsub.add_parser("keys", help="the node's key bundle (export off the host, import)")
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    p = ksub.add_parser("export", help="write the passphrase-encrypted key bundle")
    p.add_argument("--data", required=True, metavar="DIR", help="data directory of the node")
    p.add_argument("--out", required=True, metavar="FILE", help="the bundle file to write")
    p.add_argument("--passphrase-file", default="", metavar="FILE",
                   help=f"the passphrase (first line); else {PASSPHRASE_ENV}")  # fmt: skip
    p.add_argument("--keep-recovery-key", action="store_true",
                   help="leave DIR/recovery.key on the node (it is removed by default)")  # fmt: skip
    p.set_defaults(func=cmd_export)
    p = ksub.add_parser("import", help="write a key bundle's files into a new data directory")
    p.add_argument("--data", required=True, metavar="DIR", help="where the node comes back")
    p.add_argument("--bundle", required=True, metavar="FILE", help="the bundle file")
    p.add_argument("--passphrase-file", default="", metavar="FILE",
                   help=f"the passphrase (first line); else {PASSPHRASE_ENV}")  # fmt: skip
    p.set_defaults(func=cmd_import)


def cmd_export(args: argparse.Namespace) -> int:
    data, out = Path(args.data), Path(args.out)
    bundle = export(data, out, read_passphrase(args.passphrase_file), args.keep_recovery_key)
    print(f"key bundle of node {bundle.code} written to {out} (mode 0600): "
          f"{', '.join(sorted(bundle.files))}")  # fmt: skip
    if recovery.RECOVERY_KEY not in bundle.files:
        print(f"warning: {data / recovery.RECOVERY_KEY} is not on the node (exported before?): "
              "this bundle holds no recovery key; keep the bundle that does")  # fmt: skip
    elif args.keep_recovery_key:
        print(f"kept {data / recovery.RECOVERY_KEY} on the node (--keep-recovery-key)")
    else:
        print(f"removed {data / recovery.RECOVERY_KEY} from the node: the bundle holds it now")
    print("keep the bundle off this host, and its passphrase apart from it")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    data = Path(args.data)
    bundle = import_bundle(data, Path(args.bundle), read_passphrase(args.passphrase_file))
    print(f"node {bundle.code} {bundle.name} ({bundle.level}): wrote "
          f"{', '.join(sorted(bundle.files))} into {data}")  # fmt: skip
    print(f"next: onestop node replica-config --data {data} [--replica-path DIR] "
          f"(where its replica is), then onestop node restore --data {data}")  # fmt: skip
    return 0
