"""Bearer tokens this CPMS issues (operators' tokens, roaming partners' credentials tokens): 256
random bits, shown once, stored only as their SHA-256. A slow hash protects guessable secrets, and
these are not guessable; a lookup by hash leaks nothing about the token through its timing."""
from __future__ import annotations

import hashlib


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
