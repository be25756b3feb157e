"""/v1/keys: create, list and revoke API keys (admin only; secrets are shown once)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from api.auth import Role, create_key, revoke_key
from api.deps import AdminCaller, Store
from api.schemas import KeyCreatedOut, KeyCreateIn, KeyOut
from collector.store import queries

router = APIRouter(prefix="/v1/keys", tags=["keys"])


def key_out(row: queries.ApiKeyRow) -> KeyOut:
    """Describe a stored key without its hash."""
    return KeyOut(
        id=row.id,
        prefix=row.prefix,
        role=Role(row.role),
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


@router.post("", response_model=KeyCreatedOut, status_code=status.HTTP_201_CREATED)
async def create(body: KeyCreateIn, conn: Store, caller: AdminCaller) -> KeyCreatedOut:
    """Create a key; the response carries the key itself, which is never shown again."""
    new, row = await create_key(conn, body.role, body.label, actor=f"key:{caller.prefix}")
    return KeyCreatedOut(**key_out(row).model_dump(), key=new.token)


@router.get("", response_model=list[KeyOut])
async def list_keys(conn: Store, caller: AdminCaller) -> list[KeyOut]:
    """Every key, oldest first, without secrets."""
    return [key_out(r) for r in await queries.list_api_keys(conn)]


@router.delete("/{prefix}", response_model=KeyOut)
async def revoke(
    prefix: Annotated[str, Path(pattern=r"^[0-9a-f]{8}$")], conn: Store, caller: AdminCaller
) -> KeyOut:
    """Revoke a key by its prefix; it stops working at once."""
    row = await revoke_key(conn, prefix, actor=f"key:{caller.prefix}")
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no API key with prefix {prefix}")
    return key_out(row)
