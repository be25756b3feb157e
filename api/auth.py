"""API keys: generation, hashing, parsing, verification and roles.

A key looks like `tly_<prefix>_<secret>`: the prefix (8 hex digits) names the key in
logs and listings, the secret is 32 random bytes. Only SHA-256 of the whole key is
stored; a fast hash is right here because the key is a high-entropy random token,
not a password. Hashes are compared in constant time.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation

from adapters.base import utcnow
from collector.store import audit, queries

KEY_SCHEME = "tly"
PREFIX_BYTES = 4
SECRET_BYTES = 32
CREATE_ATTEMPTS = 3
# last_used_at is written at most once per key per this interval, so hot keys cost no writes.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class Role(enum.StrEnum):
    """What a key may do; each role includes the ones before it."""

    AUDITOR = "auditor"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Position in the hierarchy auditor < operator < admin."""
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """Tell whether a key of this role may do what `needed` may do."""
        return self.rank >= needed.rank


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: the full token (shown once), its prefix and hash."""

    token: str
    prefix: str
    secret_hash: bytes


@dataclass(frozen=True)
class Caller:
    """The verified key behind a request."""

    key_id: int
    prefix: str
    role: Role
    label: str | None


class KeyRejected(Exception):
    """A presented key that does not authenticate; the message is safe to return."""


def hash_key(token: str) -> bytes:
    """SHA-256 of the whole key token."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def generate_key() -> NewKey:
    """Create a random key `tly_<prefix>_<secret>`."""
    prefix = secrets.token_hex(PREFIX_BYTES)
    token = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return NewKey(token, prefix, hash_key(token))


def key_prefix(token: str) -> str:
    """Return the prefix of a well-formed key; raise KeyRejected otherwise."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME or not parts[2]:
        raise KeyRejected("malformed API key; expected tly_<prefix>_<secret>")
    prefix = parts[1]
    if len(prefix) != 2 * PREFIX_BYTES or any(c not in "0123456789abcdef" for c in prefix):
        raise KeyRejected("malformed API key; expected tly_<prefix>_<secret>")
    return prefix


def check_key(token: str, stored: queries.ApiKeyRow | None) -> Caller:
    """Verify a token against its stored row; raise KeyRejected when it does not match."""
    presented = hash_key(token)
    if stored is None:
        # Same work as a real comparison, so unknown prefixes do not answer faster.
        hmac.compare_digest(presented, presented)
        raise KeyRejected("unknown API key")
    if not hmac.compare_digest(presented, bytes(stored.secret_hash)):
        raise KeyRejected("unknown API key")
    if stored.revoked_at is not None:
        raise KeyRejected(f"API key {stored.prefix} was revoked")
    return Caller(stored.id, stored.prefix, Role(stored.role), stored.label)


async def revoke_key(
    conn: AsyncConnection[Any], prefix: str, actor: str = "cli"
) -> queries.ApiKeyRow | None:
    """Revoke a key by prefix (and record it in the audit log); None when there is none."""
    async with conn.transaction():
        row = await queries.revoke_api_key(conn, prefix)
        if row is not None:
            await audit.append(conn, actor, "key.revoked", f"key/{prefix}", {"role": row.role})
    return row


async def authenticate(conn: AsyncConnection[Any], token: str) -> Caller:
    """Look up and verify a presented key, recording its use; raise KeyRejected if bad."""
    prefix = key_prefix(token)
    stored = await queries.find_api_key(conn, prefix)
    caller = check_key(token, stored)
    last = stored.last_used_at if stored is not None else None
    if last is None or utcnow() - last >= LAST_USED_RESOLUTION:
        await queries.touch_api_key(conn, caller.key_id, LAST_USED_RESOLUTION)
    return caller


async def create_key(
    conn: AsyncConnection[Any], role: Role, label: str | None, actor: str = "cli"
) -> tuple[NewKey, queries.ApiKeyRow]:
    """Generate and store a key (and its audit entry); return the token and the stored row."""
    for _ in range(CREATE_ATTEMPTS):
        new = generate_key()
        try:
            async with conn.transaction():
                row = await queries.insert_api_key(
                    conn, new.prefix, new.secret_hash, role.value, label
                )
                await audit.append(
                    conn, actor, "key.created", f"key/{new.prefix}",
                    {"role": role.value, "label": label},
                )  # fmt: skip
        except UniqueViolation:
            continue  # prefix collision (1 in 4 billion): draw again
        return new, row
    raise RuntimeError(f"could not draw an unused key prefix in {CREATE_ATTEMPTS} attempts")
