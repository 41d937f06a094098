"""The hub's own secrets: its Ed25519 signing key, X25519 sealing key and link key.

Files in the data directory (created by ``onestop hub init``):

- ``hub.key`` / ``hub.pub``: Ed25519 (:mod:`sync.keys`); signs receipts and catalog versions.
- ``hub-seal.key`` / ``hub-seal.pub``: X25519 (:mod:`sync.sealing`); nodes seal ID numbers to it.
- ``hub-link.key``: 32 random bytes; the HMAC key of the hub's own ID-number hashes.

Every private file is mode 0600 and refused if group or others can read it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization as ser

from hub.config import HubConfig
from sync.keys import (
    Ed25519PrivateKey,
    KeyFileError,
    generate_keypair,
    load_private,
    public_key_id,
    read_secret_file,
    write_new,
)
from sync.sealing import (
    SealError,
    X25519PrivateKey,
    generate_seal_keypair,
    load_seal_private,
)

LINK_KEY_BYTES = 32


class IdentityError(Exception):
    """A hub key file is missing or unsafe; the message says what to do."""


@dataclass(frozen=True)
class HubIdentity:
    signing_key: Ed25519PrivateKey
    seal_key: X25519PrivateKey
    link_key: bytes

    @property
    def key_id(self) -> str:
        return public_key_id(self.signing_key.public_key())

    def public_pem(self) -> str:
        return (
            self.signing_key.public_key()
            .public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
            .decode("ascii")
        )

    def seal_public_pem(self) -> str:
        return (
            self.seal_key.public_key()
            .public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
            .decode("ascii")
        )

    def link_hash(self, id_number: str) -> str:
        """HMAC-SHA256 of a normalised ID number under the hub's link key (hex)."""
        value = id_number.strip().upper().replace(" ", "")
        return hmac.new(self.link_key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def create(config: HubConfig) -> None:
    """Create every key file of a new hub (refusing to overwrite any)."""
    data = config.data_dir
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    for p in (config.key_path, config.pub_path, config.seal_key_path, config.seal_pub_path,
              config.link_key_path):  # fmt: skip
        if p.exists():
            raise IdentityError(f"{p} already exists; refusing to overwrite a hub key")
    generate_keypair(data, "hub")
    generate_seal_keypair(data, "hub-seal")
    write_new(config.link_key_path, os.urandom(LINK_KEY_BYTES), 0o600)


def load(config: HubConfig) -> HubIdentity:
    """Load the hub's keys, with the safety checks of :func:`sync.keys.load_private`."""

    try:
        signing = load_private(config.key_path)
        seal_key = load_seal_private(config.seal_key_path)
    except (KeyFileError, SealError) as exc:
        raise IdentityError(str(exc)) from None
    try:
        link = read_secret_file(config.link_key_path, "link key")
    except KeyFileError as exc:
        raise IdentityError(str(exc)) from None
    if len(link) != LINK_KEY_BYTES:
        raise IdentityError(f"{config.link_key_path} must hold {LINK_KEY_BYTES} bytes")
    return HubIdentity(signing, seal_key, link)
