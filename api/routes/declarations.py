"""/v1/declarations: operators declare what telemetry cannot show; every version is kept."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from api.deps import AuditorCaller, OperatorCaller, Store
from api.schemas_criteria import DeclarationIn, DeclarationOut
from collector.store import declarations
from collector.store.declarations import KEY_PATTERN, DeclarationDraft, DeclarationError

router = APIRouter(prefix="/v1/declarations", tags=["declarations"])

DeclarationKey = Annotated[
    str,
    Path(
        pattern=KEY_PATTERN,
        description="What is declared: a figure (staff, device_inventory) or a rule id.",
    ),
]


def declaration_out(row: declarations.StoredDeclaration) -> DeclarationOut:
    """Describe one stored version."""
    return DeclarationOut(
        id=row.id,
        key=row.key,
        version=row.version,
        current=row.current,
        program=row.program,
        tier=row.tier,
        rule=row.rule,
        clause=row.clause,
        metric=row.metric,
        value=row.value,
        not_applicable=row.not_applicable,
        evidence_ref=row.evidence_ref,
        declared_by=row.declared_by,
        declared_at=row.declared_at,
        note=row.note,
        superseded_at=row.superseded_at,
        superseded_by=row.superseded_by,
    )


@router.put("/{key}", response_model=DeclarationOut)
async def put_declaration(
    key: DeclarationKey, body: DeclarationIn, conn: Store, caller: OperatorCaller
) -> DeclarationOut:
    """Declare a new version under `key`; the previous version is superseded, never changed."""
    draft = DeclarationDraft(**body.model_dump())
    actor = f"key:{caller.prefix} ({caller.role.value})"
    try:
        stored = await declarations.put(conn, key, draft, actor)
    except DeclarationError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return declaration_out(stored)


@router.get("", response_model=list[DeclarationOut])
async def list_declarations(
    conn: Store,
    caller: AuditorCaller,
    all: Annotated[
        bool, Query(description="Every version, superseded ones too (default: those in force).")
    ] = False,
) -> list[DeclarationOut]:
    """List the declarations in force, or their whole history, by key and version."""
    rows = await declarations.history(conn, all_versions=all)
    return [declaration_out(r) for r in rows]


@router.get("/{key}", response_model=list[DeclarationOut])
async def declaration_history(
    key: DeclarationKey, conn: Store, caller: AuditorCaller
) -> list[DeclarationOut]:
    """Every version of one declaration, oldest first."""
    rows = await declarations.history(conn, all_versions=True, key=key)
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"nothing has been declared under {key!r}")
    return [declaration_out(r) for r in rows]
