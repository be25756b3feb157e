"""/v1/audit-log: walk the hash-chained audit log and say whether it is intact."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AuditorCaller, Store
from collector.store import audit

router = APIRouter(prefix="/v1/audit-log", tags=["audit"])


class ChainVerdictOut(BaseModel):
    """The result of verifying the audit chain."""

    model_config = ConfigDict(frozen=True)

    ok: bool = Field(description="True when every entry's hash and link check out.")
    entries: int = Field(description="Entries verified before the first broken one (or all).")
    head: str | None = Field(
        description="Hex SHA-256 of the last verified entry; publish it to detect truncation."
    )
    broken_seq: int | None = Field(description="Sequence number of the first broken entry.")
    reason: str | None


@router.get("/verify", response_model=ChainVerdictOut)
async def verify(conn: Store, caller: AuditorCaller) -> ChainVerdictOut:
    """Recompute every entry's hash in order and name the first entry that does not match."""
    verdict = await audit.verify(conn)
    return ChainVerdictOut(
        ok=verdict.ok,
        entries=verdict.entries,
        head=verdict.head,
        broken_seq=verdict.broken_seq,
        reason=verdict.reason,
    )
