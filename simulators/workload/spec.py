"""The workload spec: how many of each registry item, and how much call traffic per month.

A spec is a YAML file (see simulators/workload/specs/)::

    version: 1
    seed: 8
    enterprises: 3000
    models: {count: 200, categories: 4}
    calls: {months: [2026-01], per_month: 100000}

Every count is exact: the generator makes precisely that many records, and the
manifest states the figures the store must then report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from collector.registry.models import AppKind

_MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KindSpec(_Strict):
    """How many items of one app kind, in how many categories."""

    count: int = Field(ge=0)
    categories: int = Field(1, ge=1)


class CallSpec(_Strict):
    """Call traffic: which months, how many calls each, and what goes wrong on the way."""

    months: list[str] = Field(min_length=1, description="Calendar months YYYY-MM, in order.")
    per_month: int = Field(ge=0, description="Valid, distinct calls in each month.")
    duplicate_share: float = Field(0.02, ge=0, le=1, description="Share of calls sent twice.")
    bad_share: float = Field(0.001, ge=0, le=1, description="Extra invalid events, by share.")
    batch_size: int = Field(1000, ge=1, le=10_000)
    dev_tool_developer_share: float = Field(
        0.8, ge=0, le=1, description="Share of dev-tool calls naming a developer."
    )

    @field_validator("months")
    @classmethod
    def _months(cls, months: list[str]) -> list[str]:
        import re

        for month in months:
            if not re.match(_MONTH, month):
                raise ValueError(f"month {month!r} is not YYYY-MM")
        if months != sorted(set(months)):
            raise ValueError("months must be distinct and in order")
        return months


class WorkloadSpec(_Strict):
    """A whole workload."""

    version: Literal[1] = 1
    name: str = "workload"
    seed: int = 8
    zone: str = Field("Asia/Shanghai", description="Zone of the calendar months.")
    enterprises: int = Field(ge=1)
    enterprise_kinds: list[str] = Field(["large", "sme", "micro"], min_length=1)
    industries: list[str] = Field(["C26", "C34", "C39", "C36"], min_length=1)
    users: int = Field(0, ge=0)
    user_kinds: list[str] = Field(["staff", "individual", "developer"], min_length=1)
    developers: int = Field(1, ge=1)
    third_party_share: float = Field(0.6, ge=0, le=1)
    languages: list[str] = Field(["Python", "Java", "C++", "JavaScript"], min_length=1)
    mechanism_model: KindSpec = KindSpec(count=0)
    algorithm: KindSpec = KindSpec(count=0)
    industrial_app: KindSpec = KindSpec(count=0)
    cloud_software: KindSpec = KindSpec(count=0)
    dev_tool: KindSpec = KindSpec(count=0)
    cross_platform_share: float = Field(0.7, ge=0, le=1)
    subscriptions: int = Field(0, ge=0)
    ended_share: float = Field(
        0.1, ge=0, le=1, description="Share of subscriptions that ended before the first month."
    )
    calls: CallSpec

    def kind(self, kind: AppKind) -> KindSpec:
        """Return the spec of one app kind."""
        spec: KindSpec = getattr(self, kind)
        return spec


class WorkloadError(Exception):
    """A spec that cannot be used; the message names the bad key."""


def load_spec(path: Path) -> WorkloadSpec:
    """Read and validate a spec file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return WorkloadSpec.model_validate(raw)
    except OSError as exc:
        raise WorkloadError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise WorkloadError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise WorkloadError(f"{path}: {problems}") from None
