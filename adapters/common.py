"""Configuration fields shared by every protocol's device declaration."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_INDUSTRY = re.compile(r"^[A-T](\d{2}(\d{1,2})?)?$")
_REGION = re.compile(r"^\d{6}$")


class DeviceDeclaration(BaseModel):
    """Identity and classification of one declared device, whatever its protocol."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:/@-]+$")
    name: str | None = None
    type: str | None = Field(None, description="Device type label (设备种类).")
    industry: str | None = Field(None, description="GB/T 4754-2017 code, e.g. C26 or C2614.")
    region: str | None = Field(None, description="GB/T 2260 six-digit administrative code.")
    park: str | None = None
    enterprise: str | None = None
    enabled: bool = True

    @field_validator("industry")
    @classmethod
    def _industry_code(cls, value: str | None) -> str | None:
        if value is not None and not _INDUSTRY.match(value):
            raise ValueError("expected a GB/T 4754-2017 code such as 'C26' or 'C2614'")
        return value

    @field_validator("region")
    @classmethod
    def _region_code(cls, value: str | None) -> str | None:
        if value is not None and not _REGION.match(value):
            raise ValueError("expected a six-digit GB/T 2260 code such as '360100'")
        return value
