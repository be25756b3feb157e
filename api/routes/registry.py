"""/v1/apps, /v1/enterprises, /v1/users, /v1/developers, /v1/subscriptions: the registries.

Each resource has the same four routes: ``PUT /{key}`` creates or updates one record
(operator; one audit entry with the record), ``POST`` registers up to 10,000 at once
(operator; all or none, one audit entry with the count and the body's SHA-256),
``GET`` lists in key order and ``GET /{key}`` fetches one (auditor).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel

from api.deps import AuditorCaller, OperatorCaller, Store
from api.registry_schemas import (
    AppOut,
    BulkOut,
    DeveloperOut,
    EnterpriseOut,
    Items,
    Page,
    SubscriptionOut,
    UserOut,
)
from collector.registry.models import MODELS, RESOURCES, Record, Resource
from collector.store import registry

router = APIRouter(prefix="/v1", tags=["registry"])

OUT: dict[Resource, type[BaseModel]] = {
    "apps": AppOut,
    "enterprises": EnterpriseOut,
    "users": UserOut,
    "developers": DeveloperOut,
    "subscriptions": SubscriptionOut,
}

KeyPath = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^\S+$")]


def _unprocessable(exc: registry.RegistryError) -> HTTPException:
    detail: dict[str, Any] = {"msg": str(exc)}
    if exc.index is not None:
        detail["index"] = exc.index
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [detail])


def _typed(endpoint: Callable[..., Any], **annotations: Any) -> Callable[..., Any]:
    # FastAPI reads the body type from the signature: give each resource's copy its model.
    endpoint.__annotations__ = {**endpoint.__annotations__, **annotations}
    return endpoint


def _routes(resource: Resource) -> None:
    model = MODELS[resource]
    out = OUT[resource]
    singular = resource.removesuffix("s")

    async def put_one(
        key: KeyPath, record: Any, response: Response, conn: Store, caller: OperatorCaller
    ) -> dict[str, Any]:
        if record.key != key:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"the body's key {record.key!r} is not the key {key!r} in the path",
            )
        try:
            result = await registry.register_one(conn, f"key:{caller.prefix}", resource, record)
        except registry.RegistryError as exc:
            raise _unprocessable(exc) from None
        if result.created:
            response.status_code = status.HTTP_201_CREATED
        stored = await registry.fetch(conn, resource, key)
        assert stored is not None
        return stored

    async def post_many(
        body: Any, request: Request, conn: Store, caller: OperatorCaller
    ) -> BulkOut:
        raw = await request.body()
        digest = hashlib.sha256(raw).hexdigest()
        records: list[Record] = body.items
        try:
            result = await registry.register_many(
                conn, f"key:{caller.prefix}", resource, records, source="http", sha256=digest
            )
        except registry.RegistryError as exc:
            raise _unprocessable(exc) from None
        return BulkOut(
            resource=resource,
            records=len(records),
            created=result.created,
            updated=result.updated,
            sha256=digest,
        )

    async def list_all(
        conn: Store,
        caller: AuditorCaller,
        after: Annotated[str | None, Query(description="Continue after this key.")] = None,
        limit: Annotated[int, Query(ge=1, le=registry.MAX_LIST)] = 100,
    ) -> dict[str, Any]:
        rows = await registry.listing(conn, resource, after=after, limit=limit)
        return {"items": rows, "next_after": rows[-1]["key"] if len(rows) == limit else None}

    async def get_one(key: KeyPath, conn: Store, caller: AuditorCaller) -> dict[str, Any]:
        row = await registry.fetch(conn, resource, key)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {singular} with key {key!r}")
        return row

    path = f"/{resource}"
    router.add_api_route(
        path + "/{key}",
        _typed(put_one, record=model),
        methods=["PUT"],
        response_model=out,
        summary=f"Create or update one {singular}",
        description=f"Create (201) or update (200) the {singular} with this key; audited.",
        name=f"put_{singular}",
    )
    router.add_api_route(
        path,
        _typed(post_many, body=Items[model]),  # type: ignore[valid-type]
        methods=["POST"],
        response_model=BulkOut,
        summary=f"Register many {resource}",
        description=(
            f"Create or update up to 10,000 {resource} in one transaction, all or none; "
            "one audit entry records the count and the SHA-256 of the body."
        ),
        name=f"post_{resource}",
    )
    router.add_api_route(
        path,
        list_all,
        methods=["GET"],
        response_model=Page[out],  # type: ignore[valid-type]
        summary=f"List {resource}",
        name=f"list_{resource}",
    )
    router.add_api_route(
        path + "/{key}",
        get_one,
        methods=["GET"],
        response_model=out,
        summary=f"Fetch one {singular}",
        name=f"get_{singular}",
    )


for _resource in RESOURCES:
    _routes(_resource)
