"""Sealed boxes to the hub: personal data only the hub can open (relays can't).

:func:`seal` (used by nodes) encrypts to the hub's X25519 public key: a fresh ephemeral X25519
key pair, ``HKDF-SHA256(shared secret, salt = ephemeral public || hub public,
info = "onestop-seal-v1")`` gives a 256-bit AES-GCM key, a random 96-bit nonce encrypts with
associated data ``"onestop-seal-v1"``.  The sealed value is one string::

    base64( 0x01 || ephemeral public (32) || nonce (12) || ciphertext + tag (16) )

(standard base64 with padding).  :func:`unseal` (hub) reverses it with the hub's private key.

Key files: ``DIR/hub-seal.key`` (PKCS8 PEM, mode 0600) and ``DIR/hub-seal.pub``
(SubjectPublicKeyInfo PEM, what nodes are given).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sync.canonical import b64decode, b64encode
from sync.keys import KeyFileError, load_private_pem, load_public_pem, write_new

__all__ = [
    "SealError",
    "X25519PrivateKey",
    "X25519PublicKey",
    "generate_seal_keypair",
    "load_seal_private",
    "load_seal_public",
    "seal",
    "unseal",
]

VERSION = 1
CONTEXT = b"onestop-seal-v1"
_HEADER = 1 + 32 + 12
_TAG = 16


class SealError(ValueError):
    """A sealed value is malformed or cannot be opened with this key."""


def _raw(pub: X25519PublicKey) -> bytes:
    return pub.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)


def _kdf(shared: bytes, epk: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=epk + recipient, info=CONTEXT).derive(
        shared
    )


def load_seal_public(source: X25519PublicKey | bytes | str | os.PathLike[str]) -> X25519PublicKey:
    """An X25519 public key from a key object, PEM bytes/text, 32 raw bytes or a ``.pub`` path."""
    if isinstance(source, X25519PublicKey):
        return source
    if isinstance(source, bytes) and len(source) == 32:
        return X25519PublicKey.from_public_bytes(source)
    try:
        return load_public_pem(source, X25519PublicKey, "sealing public key")  # type: ignore[type-abstract]  # key classes are abstract
    except KeyFileError as exc:
        raise SealError(str(exc)) from None


def load_seal_private(path: str | os.PathLike[str]) -> X25519PrivateKey:
    """Load ``hub-seal.key``, refusing a file that group or others can access."""
    try:
        return load_private_pem(path, X25519PrivateKey, what="sealing key")  # type: ignore[type-abstract]  # key classes are abstract
    except KeyFileError as exc:
        raise SealError(str(exc)) from None


def generate_seal_keypair(dir: Path, name: str = "hub-seal") -> tuple[Path, Path]:
    """Create ``dir/<name>.key`` (0600) and ``dir/<name>.pub``; refuse to overwrite."""
    priv_path, pub_path = Path(dir) / f"{name}.key", Path(dir) / f"{name}.pub"
    for p in (priv_path, pub_path):
        if p.exists() or p.is_symlink():
            raise SealError(f"{p} already exists; refusing to overwrite a key")
    key = X25519PrivateKey.generate()
    pem = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    write_new(priv_path, pem, 0o600)
    pub = key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    write_new(pub_path, pub, 0o644)
    return priv_path, pub_path


def seal(hub_x25519_pub: X25519PublicKey | bytes | str, plaintext: str | bytes) -> str:
    """Encrypt ``plaintext`` so only the holder of the hub's X25519 private key can read it."""
    recipient = load_seal_public(hub_x25519_pub)
    data = plaintext.encode("utf-8") if isinstance(plaintext, str) else bytes(plaintext)
    eph = X25519PrivateKey.generate()
    epk, rpk = _raw(eph.public_key()), _raw(recipient)
    key = _kdf(eph.exchange(recipient), epk, rpk)
    nonce = os.urandom(12)
    ct = AESGCM(key).encrypt(nonce, data, CONTEXT)
    return b64encode(bytes([VERSION]) + epk + nonce + ct)


def unseal(private_key: X25519PrivateKey, sealed: object) -> bytes:
    """Open a value made by :func:`seal`; raise :class:`SealError` if it can't be opened."""
    try:
        raw = b64decode(sealed)
    except ValueError as e:
        raise SealError(f"sealed value is not base64: {e}") from None
    if len(raw) < _HEADER + _TAG or raw[0] != VERSION:
        raise SealError("sealed value is truncated or of an unknown version")
    epk, nonce, ct = raw[1:33], raw[33:45], raw[45:]
    try:
        peer = X25519PublicKey.from_public_bytes(epk)
        shared = private_key.exchange(peer)
    except ValueError as e:
        raise SealError(f"bad ephemeral key: {e}") from None
    key = _kdf(shared, epk, _raw(private_key.public_key()))
    try:
        return AESGCM(key).decrypt(nonce, ct, CONTEXT)
    except InvalidTag:
        raise SealError(
            "sealed value does not open with this hub's key (altered or wrong key)"
        ) from None
