"""Request and response models of the registry routes: records as stored, pages, bulk bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from collector.registry.models import (
    AppRecord,
    DeveloperRecord,
    EnterpriseRecord,
    SubscriptionRecord,
    UserRecord,
)

MAX_ITEMS = 10_000

R = TypeVar("R", bound=BaseModel)


class _Stored(BaseModel):
    """What the store adds to a record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    registered_at: datetime
    updated_at: datetime


class AppOut(AppRecord, _Stored):
    """A registered app."""


class EnterpriseOut(EnterpriseRecord, _Stored):
    """A registered enterprise."""


class UserOut(UserRecord, _Stored):
    """A registered user."""


class DeveloperOut(DeveloperRecord, _Stored):
    """A registered developer."""


class SubscriptionOut(SubscriptionRecord, _Stored):
    """A registered subscription."""


class Items(BaseModel, Generic[R]):
    """A bulk registration: up to 10,000 records of one resource, all or none."""

    model_config = ConfigDict(extra="forbid")

    items: list[R] = Field(min_length=1, max_length=MAX_ITEMS)


class Page(BaseModel, Generic[R]):
    """Records in key order; pass next_after as `after` for the next page."""

    items: list[R]
    next_after: str | None = Field(description="Key to continue after, or null at the end.")


class BulkOut(BaseModel):
    """What a bulk registration did."""

    resource: str
    records: int
    created: int
    updated: int
    sha256: str = Field(description="SHA-256 of the request body, as written to the audit log.")
