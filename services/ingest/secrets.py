"""Charger secrets: salted scrypt hashes, verified in constant time off the event loop, and the
secrets a process has verified lately, so a reconnecting fleet costs a read each, not a scrypt."""
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
    async with _one_at_a_time():
        return await asyncio.to_thread(hash_secret, secret)


async def verify_secret_async(secret: str, stored: str | None) -> bool:
    async with _one_at_a_time():
        ok = await asyncio.to_thread(verify_secret, secret, stored or DUMMY_HASH)
    return ok and stored is not None


# One scrypt at a time per process (per event loop): a storm of handshakes this process cannot
# answer from memory, or a flood of wrong secrets, takes one core, not all of them, so the events
# of the chargers already connected keep flowing beside it.
_HASHING: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


def _one_at_a_time() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _HASHING:
        _HASHING.clear()  # a loop of the past (tests run several) holds nothing any more
        _HASHING[loop] = asyncio.Semaphore(1)
    return _HASHING[loop]


class VerifiedSecrets:
    """The secrets verified by scrypt lately, remembered as an HMAC of (charger id, stored hash,
    secret) under a key that exists only in memory, in `memory`: the workers of one `cpms run`
    share it (shared/workers.py), so a charger verified by one is known to all of them.

    The caller reads the charger's row on every handshake and passes its stored hash: a rotated
    secret has a new stored hash, so what was remembered no longer matches, and a deactivated
    charger is refused by its row; in every process, on its very next handshake. A reconnect
    storm of known chargers then costs one read and one HMAC each instead of one scrypt (tens of
    milliseconds of CPU). An unknown charger or a wrong secret still pays the full scrypt.

    The memory is a table of buckets of `WAYS` slots, each the charger's tag and the HMAC; a full
    bucket forgets one of its chargers. Workers write without locks: a slot read while another
    worker writes it does not match, and that handshake pays a scrypt. It never admits a secret
    that was not verified, since only the exact HMAC of this very secret matches."""

    WAYS, TAG, MAC = 4, 16, 32
    SLOT = TAG + MAC
    EMPTY = bytes(TAG)  # the tag of a slot never written

    @classmethod
    def bytes_for(cls, chargers: int) -> int:
        return -(-chargers // cls.WAYS) * cls.WAYS * cls.SLOT  # 0 remembers none: a scrypt every time

    def __init__(self, key: bytes, memory: memoryview) -> None:
        self._key, self._memory = key, memory
        self._buckets = len(memory) // (self.WAYS * self.SLOT)

    def _where(self, charge_point_id: str) -> tuple[int, bytes, int]:
        """(offset of the charger's bucket, its tag, the slot a full bucket gives up for it)."""
        digest = hmac.digest(self._key, b"charger\0" + charge_point_id.encode(), "sha256")
        bucket = int.from_bytes(digest[:8], "big") % self._buckets
        return bucket * self.WAYS * self.SLOT, digest[8:8 + self.TAG], digest[24] % self.WAYS

    def _mac(self, charge_point_id: str, stored: str, secret: str) -> bytes:
        return hmac.digest(self._key, b"\0".join((charge_point_id.encode(), stored.encode(), secret.encode())), "sha256")

    def _remembered(self, base: int, tag: bytes) -> int | None:
        for way in range(self.WAYS):
            slot = base + way * self.SLOT
            if self._memory[slot:slot + self.TAG] == tag:
                return slot
        return None

    async def verify(self, charge_point_id: str, secret: str, stored: str | None) -> bool:
        """Whether `secret` matches `stored` (None: no such charger), by memory when it can."""
        if not self._buckets:
            return await verify_secret_async(secret, stored)
        base, tag, victim = self._where(charge_point_id)
        if stored is not None:
            slot = self._remembered(base, tag)
            if slot is not None and hmac.compare_digest(
                    bytes(self._memory[slot + self.TAG:slot + self.SLOT]), self._mac(charge_point_id, stored, secret)):
                return True
        if not await verify_secret_async(secret, stored):
            return False
        slot = self._remembered(base, tag)
        if slot is None:
            slot = self._remembered(base, self.EMPTY)  # a free slot, else the one this charger displaces
        if slot is None:
            slot = base + victim * self.SLOT
        self._memory[slot:slot + self.TAG] = tag
        self._memory[slot + self.TAG:slot + self.SLOT] = self._mac(charge_point_id, stored, secret)
        return True
