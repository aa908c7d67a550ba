"""Charger secrets: salted scrypt hashes, verified in constant time off the event loop."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os

# 2**14 * 8 * 128 bytes = 16 MiB and tens of milliseconds per guess.
_N, _R, _P, _LEN = 2**14, 8, 1, 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_secret(secret: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# Checked against when the charger is unknown, so that answer costs the same time as a wrong secret.
DUMMY_HASH = hash_secret("no charger has this secret")


async def hash_secret_async(secret: str) -> str:
    return await asyncio.to_thread(hash_secret, secret)


async def verify_secret_async(secret: str, stored: str | None) -> bool:
    ok = await asyncio.to_thread(verify_secret, secret, stored or DUMMY_HASH)
    return ok and stored is not None
