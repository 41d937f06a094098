"""At-rest protection of personal data on the node.

Full ID and phone numbers are kept Fernet-encrypted with the node's local secret (so staff can
verify identity at intake and SMS can reach the citizen) and as a keyed hash (HMAC-SHA256) so
cases of the same person can be linked without the digits.  Everything else sees masks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet

SECRET_FILE = "secret.key"


class Pii:
    def __init__(self, secret: bytes) -> None:
        if len(secret) != 64:
            raise ValueError("secret must be 64 bytes")
        self._fernet = Fernet(base64.urlsafe_b64encode(secret[:32]))
        self._hmac_key = secret[32:]
        self.session_key = hashlib.sha256(b"session" + secret).digest()

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode()).decode()

    def keyed_hash(self, value: str) -> str:
        return hmac.new(self._hmac_key, value.encode(), hashlib.sha256).hexdigest()


def create_secret(data_dir: Path) -> Path:
    path = data_dir / SECRET_FILE
    if path.exists():
        return path
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(os.urandom(64))
    return path


def load(data_dir: Path) -> Pii:
    return Pii((data_dir / SECRET_FILE).read_bytes())
