"""The records of the registries, as the API, `tally import` and the workload simulator give them.

Records refer to each other by key (an app names its developer's key, a subscription its
app's and subscriber's keys); the store resolves keys to ids and refuses unknown ones.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

AppKind = Literal["mechanism_model", "algorithm", "industrial_app", "cloud_software", "dev_tool"]
APP_KINDS: tuple[AppKind, ...] = (
    "mechanism_model",
    "algorithm",
    "industrial_app",
    "cloud_software",
    "dev_tool",
)
Domain = Literal["研发设计", "供应链", "生产制造", "运营管理", "企业管理", "仓储物流", "产品服务"]
DOMAINS: tuple[Domain, ...] = (
    "研发设计",
    "供应链",
    "生产制造",
    "运营管理",
    "企业管理",
    "仓储物流",
    "产品服务",
)

Key = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^\S+$")
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
IndustryCode = Annotated[
    str,
    BeforeValidator(lambda v: v.strip().upper() if isinstance(v, str) else v),
    StringConstraints(pattern=r"^[A-T](\d{2}(\d{1,2})?)?$"),
]
RegionCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{6}$")]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Key = Field(
        description="Stable identity chosen by the operator; registering it again updates."
    )


class AppRecord(_Record):
    """A mechanism model, data-analysis algorithm, industrial APP, cloud software or dev tool."""

    name: Text
    kind: AppKind = Field(description="What it is: model, algorithm, APP, cloud software, tool.")
    category: Label | None = Field(None, description="Category (类) within its kind.")
    industry: IndustryCode | None = Field(None, description="GB/T 4754-2017 code it serves.")
    domain: Domain | None = Field(None, description="Business domain it serves.")
    provider: Text | None = Field(None, description="Who provides it.")
    developer: Key | None = Field(None, description="Key of its registered developer.")
    cross_platform: bool = Field(False, description="Usable on other platforms (跨平台).")


class EnterpriseRecord(_Record):
    """An enterprise that uses the platform."""

    name: Text
    kind: Label | None = Field(None, description="e.g. large, sme, park operator.")
    industry: IndustryCode | None = None
    region: RegionCode | None = Field(None, description="GB/T 2260 administrative code.")
    park: Text | None = None
    device_inventory: int | None = Field(None, ge=0)


class UserRecord(_Record):
    """A user of the platform."""

    kind: Label = Field(description="e.g. enterprise staff, individual, developer.")
    enterprise: Key | None = Field(None, description="Key of the user's enterprise.")


class DeveloperRecord(_Record):
    """A developer building on the platform: third-party or the platform's own."""

    name: Text
    third_party: bool
    languages: tuple[Label, ...] = Field((), description="Development languages used.")
    enterprise: Key | None = None


class SubscriptionRecord(_Record):
    """An enterprise's or user's subscription to an app."""

    app: Key
    enterprise: Key | None = None
    user: Key | None = None
    subscribed_at: AwareDatetime | None = Field(None, description="Default: when registered.")
    ended_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _subscriber(self) -> SubscriptionRecord:
        if self.enterprise is None and self.user is None:
            raise ValueError("a subscription needs an enterprise or a user (or both)")
        if (
            self.ended_at is not None
            and self.subscribed_at is not None
            and self.ended_at < self.subscribed_at
        ):
            raise ValueError("ended_at is before subscribed_at")
        return self


Record = AppRecord | EnterpriseRecord | UserRecord | DeveloperRecord | SubscriptionRecord
Resource = Literal["apps", "enterprises", "users", "developers", "subscriptions"]
RESOURCES: tuple[Resource, ...] = ("enterprises", "developers", "users", "apps", "subscriptions")
"""Every resource, in an order where each record's references come before it."""

MODELS: dict[Resource, type[Record]] = {
    "apps": AppRecord,
    "enterprises": EnterpriseRecord,
    "users": UserRecord,
    "developers": DeveloperRecord,
    "subscriptions": SubscriptionRecord,
}
