"""Password hashing with scrypt (hashlib), in a self-describing string."""

from __future__ import annotations

import asyncio
import base64
import functools
import getpass
import hashlib
import hmac
import os
import sys

from onestop.errors import CliError

N, R, P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt_b64, dk_b64 = stored.split("$")
    except ValueError:
        return False
    if algo != "scrypt":
        return False
    salt = base64.b64decode(salt_b64)
    want = base64.b64decode(dk_b64)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(want))
    return hmac.compare_digest(dk, want)


def check_strength(password: str) -> str | None:
    """A reason the password is too weak, or None."""
    if len(password) < 8:
        return "password must have at least 8 characters"
    return None


@functools.cache
def _dummy_hash() -> str:
    return hash_password("x" * 8)


async def verify_off_loop(password: str, stored: str | None) -> bool:
    """:func:`verify_password` on a worker thread, so a login (tens of milliseconds of scrypt)
    never stalls the event loop; with no stored hash it spends the same time and says no, so
    usernames can't be probed by timing."""
    ok = await asyncio.to_thread(verify_password, password, stored or _dummy_hash())
    return ok and stored is not None


def read_password(prompt: str = "password: ") -> str:
    """A new password: prompted twice on a terminal, else one line of stdin."""
    if sys.stdin.isatty():
        pw = getpass.getpass(prompt)
        if pw != getpass.getpass("again: "):
            raise CliError("the passwords differ")
        return pw
    return sys.stdin.readline().rstrip("\n")
