"""Ed25519 node keys: generation, loading with safety checks, key ids and raw encodings.

Files: ``<name>.key`` holds the PKCS8 PEM private key (mode 0600 from the moment it is
created, optionally passphrase-encrypted); ``<name>.pub`` holds the SubjectPublicKeyInfo PEM.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from sync.canonical import b64decode, b64encode

K = TypeVar("K", Ed25519PrivateKey, X25519PrivateKey)
P = TypeVar("P", Ed25519PublicKey, X25519PublicKey)

__all__ = [
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "KeyFileError",
    "generate_keypair",
    "load_private",
    "load_public",
    "public_key_fingerprint",
    "public_key_id",
    "public_raw_b64",
    "public_from_raw_b64",
]


class KeyFileError(Exception):
    """A key file is missing, unsafe, undecryptable or of the wrong type; the message says what to do."""


def _raw(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)


def public_key_fingerprint(pub: Ed25519PublicKey) -> str:
    """Full hex SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(_raw(pub)).hexdigest()


def public_key_id(pub: Ed25519PublicKey) -> str:
    """Short key id: the first 16 hex characters of :func:`public_key_fingerprint`."""
    return public_key_fingerprint(pub)[:16]


def public_raw_b64(pub: Ed25519PublicKey) -> str:
    return b64encode(_raw(pub))


def public_from_raw_b64(s: str) -> Ed25519PublicKey:
    """Inverse of :func:`public_raw_b64`; raises ``ValueError`` on bad input."""
    raw = b64decode(s)
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` exclusively with exactly ``mode`` (never overwrite, never follow links)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, mode)  # created with `mode` (minus umask) atomically
    except FileExistsError:
        raise KeyFileError(
            f"{path} already exists; refusing to overwrite a key. Move it away or pick another name."
        ) from None
    with os.fdopen(fd, "wb") as f:
        if hasattr(os, "fchmod"):
            os.fchmod(f.fileno(), mode)  # exact mode whatever the umask; never wider than `mode`
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def generate_keypair(dir: Path, name: str, passphrase: bytes | None = None) -> tuple[Path, Path]:
    """Create ``dir/<name>.key`` (0600) and ``dir/<name>.pub``; return their paths."""
    if not name or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise ValueError(f"bad key name {name!r}: use a plain file name without slashes")
    if passphrase is not None and not passphrase:
        raise ValueError("empty passphrase: pass None for an unencrypted key")
    directory = Path(dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    priv_path, pub_path = directory / f"{name}.key", directory / f"{name}.pub"
    for p in (priv_path, pub_path):
        if p.exists() or p.is_symlink():
            raise KeyFileError(
                f"{p} already exists; refusing to overwrite a key. Move it away or pick another name."
            )
    key = Ed25519PrivateKey.generate()
    enc: ser.KeySerializationEncryption = (
        ser.BestAvailableEncryption(passphrase) if passphrase else ser.NoEncryption()
    )
    write_new(priv_path, key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, enc), 0o600)
    pub_pem = key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    write_new(pub_path, pub_pem, 0o644)
    return priv_path, pub_path


def read_secret_file(path: str | os.PathLike[str], what: str = "private key") -> bytes:
    """The bytes of a secret file, refusing one that group or others can access."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if os.name == "posix" and mode & 0o077:
                raise KeyFileError(
                    f"{what} {p} has mode {oct(mode & 0o777)}: group/other may access it. "
                    f"Restrict it with: chmod 600 {p}"
                )
            return f.read()
    except FileNotFoundError:
        raise KeyFileError(f"{what} {p} not found: check the path or generate a key pair") from None
    except PermissionError:
        raise KeyFileError(f"cannot read {what} {p}: run as the user that owns it") from None


def load_private_pem(
    path: str | os.PathLike[str],
    cls: type[K],
    passphrase: bytes | None = None,
    what: str = "private key",
) -> K:
    """A PEM private key of type ``cls`` from a file only its owner can read."""
    p = Path(path)
    data = read_secret_file(p, what)
    try:
        key = ser.load_pem_private_key(data, password=passphrase)
    except TypeError:
        if passphrase is None:
            raise KeyFileError(f"{what} {p} is encrypted: supply its passphrase") from None
        raise KeyFileError(f"{what} {p} is not encrypted: load it without a passphrase") from None
    except ValueError:
        if passphrase is not None:
            raise KeyFileError(
                f"cannot decrypt {what} {p}: wrong passphrase (or the file is corrupt)"
            ) from None
        raise KeyFileError(f"{p} is not a valid PEM private key") from None
    if not isinstance(key, cls):
        raise KeyFileError(f"{p} holds a {type(key).__name__}; an {cls.__name__} is required")
    return key


def load_public_pem(
    source: str | os.PathLike[str] | bytes, cls: type[P], what: str = "public key"
) -> P:
    """A PEM public key of type ``cls`` from PEM bytes/text or from a ``.pub`` file path."""
    if isinstance(source, bytes):
        data, label = source, "PEM data"
    elif isinstance(source, str) and source.lstrip().startswith("-----BEGIN"):
        data, label = source.encode("ascii", "replace"), "PEM text"
    else:
        label = str(source)
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise KeyFileError(f"{what} {label} not found: check the path") from None
        except OSError as e:
            raise KeyFileError(f"cannot read {what} {label}: {e.strerror}") from None
    try:
        key = ser.load_pem_public_key(data)
    except ValueError:
        raise KeyFileError(f"{label} is not a valid PEM public key") from None
    if not isinstance(key, cls):
        raise KeyFileError(f"{label} holds a {type(key).__name__}; an {cls.__name__} is required")
    return key


def load_private(
    path: str | os.PathLike[str], passphrase: bytes | None = None
) -> Ed25519PrivateKey:
    """Load an Ed25519 private key, refusing files that group or others can access."""
    return load_private_pem(path, Ed25519PrivateKey, passphrase)  # type: ignore[type-abstract]  # key classes are abstract


def load_public(source: str | os.PathLike[str] | bytes) -> Ed25519PublicKey:
    """Load an Ed25519 public key from PEM bytes/text or from a ``.pub`` file path."""
    return load_public_pem(source, Ed25519PublicKey)  # type: ignore[type-abstract]  # key classes are abstract
