"""Password hashing with argon2id, off the event loop, and the password rules."""

from __future__ import annotations

import asyncio
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from server.errors import Invalid

MIN_LENGTH = 8
MAX_LENGTH = 128

_hasher = PasswordHasher()

# Verifying against this keeps "no such account" as slow as "wrong password".
_DUMMY_HASH = _hasher.hash("an unguessable placeholder password")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords, from the list zxcvbn ships."""
    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password_rules(password: str, *, field: str = "password") -> None:
    """At least 8 and at most 128 characters, and not a common password.

    There are no composition rules: length and rarity are what make a password hard
    to guess, and composition rules mostly make it hard to remember.
    """
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise Invalid(
            "密码长度须为8到128个字符。",
            code="weak_password",
            details={field: f"{MIN_LENGTH} to {MAX_LENGTH} characters"},
        )
    if password.lower() in common_passwords():
        raise Invalid(
            "该密码过于常见，请换一个。",
            code="weak_password",
            details={field: "too common"},
        )


async def hash_password(password: str) -> str:
    """An argon2id hash of password (about 50 ms, in a worker thread)."""
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether password matches; with no hash, spend the same time and say no."""

    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return False

    matched = await asyncio.to_thread(check)
    return matched and password_hash is not None
