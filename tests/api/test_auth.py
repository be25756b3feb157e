from datetime import UTC, datetime

import pytest

from api.auth import (
    KeyRejected,
    Role,
    check_key,
    generate_key,
    hash_key,
    key_prefix,
)
from collector.store.queries import ApiKeyRow


def _row(token: str, prefix: str, role: str = "auditor", revoked: bool = False) -> ApiKeyRow:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    return ApiKeyRow(1, prefix, hash_key(token), role, None, now, now if revoked else None, None)


def test_generated_keys_are_distinct_well_formed_and_hashed() -> None:
    a, b = generate_key(), generate_key()
    assert a.token != b.token and a.prefix != b.prefix
    assert a.token.startswith(f"tly_{a.prefix}_")
    assert len(a.token) > 50
    assert key_prefix(a.token) == a.prefix
    assert a.secret_hash == hash_key(a.token) and len(a.secret_hash) == 32


@pytest.mark.parametrize(
    "token",
    ["", "tly_", "abc", "tly_1234567_x", "tly_zzzzzzzz_x", "key_12345678_x", "tly_12345678_"],
)
def test_malformed_keys_are_rejected(token: str) -> None:
    with pytest.raises(KeyRejected, match="malformed"):
        key_prefix(token)


def test_check_key_accepts_the_right_secret_only() -> None:
    new = generate_key()
    caller = check_key(new.token, _row(new.token, new.prefix, "operator"))
    assert caller.role is Role.OPERATOR and caller.prefix == new.prefix
    forged = new.token[:-2] + ("AA" if not new.token.endswith("AA") else "BB")
    with pytest.raises(KeyRejected, match="unknown"):
        check_key(forged, _row(new.token, new.prefix))
    with pytest.raises(KeyRejected, match="unknown"):
        check_key(new.token, None)
    with pytest.raises(KeyRejected, match="revoked"):
        check_key(new.token, _row(new.token, new.prefix, revoked=True))


def test_roles_include_the_ones_below() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.ADMIN.allows(Role.AUDITOR)
    assert Role.OPERATOR.allows(Role.AUDITOR) and not Role.OPERATOR.allows(Role.ADMIN)
    assert Role.AUDITOR.allows(Role.AUDITOR) and not Role.AUDITOR.allows(Role.OPERATOR)
