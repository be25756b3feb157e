"""Response models of /v1/drilldowns: the devices, points and apps behind every figure."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas import Out, WindowOut
from collector.store.drilldowns import DrillAppRow, DrillDeviceRow, DrillPointRow


class DrillDeviceOut(Out):
    """A counted device with its activity in the window."""

    id: int
    key: str
    name: str | None
    protocol: str
    device_type: str | None
    industry: str | None = Field(description="GB/T 4754-2017 code (device's, else enterprise's).")
    region: str | None = Field(description="GB/T 2260 code (device's, else enterprise's).")
    park: str | None
    enterprise: str | None
    simulated: bool
    managed: bool = Field(description="A verified control operation was requested in the window.")
    samples: int = Field(description="Live samples in the window.")
    good_samples: int = Field(description="Good-quality live samples in the window.")
    first_sample: datetime | None = Field(description="First live sample in the window.")
    last_sample: datetime | None = Field(description="Last live sample in the window.")
    first_good_sample: datetime | None
    last_good_sample: datetime | None

    @classmethod
    def of(cls, row: DrillDeviceRow) -> DrillDeviceOut:
        """Describe a stored row."""
        return cls(
            id=row.id,
            key=row.key,
            name=row.name,
            protocol=row.protocol,
            device_type=row.device_type,
            industry=row.industry,
            region=row.region,
            park=row.park,
            enterprise=row.enterprise,
            simulated=row.simulated,
            managed=row.managed,
            samples=row.samples,
            good_samples=row.good_samples,
            first_sample=row.first_sample,
            last_sample=row.last_sample,
            first_good_sample=row.first_good_sample,
            last_good_sample=row.last_good_sample,
        )


class DrillPointOut(Out):
    """A counted data collection point (a good live sample in the window) and its device."""

    id: int
    key: str
    address: str
    data_type: str
    unit: str | None
    device_id: int
    device_key: str
    protocol: str
    device_type: str | None
    industry: str | None
    region: str | None
    park: str | None
    simulated: bool
    good_hours: int = Field(description="UTC hours of the window with a good live sample.")
    last_seen: datetime | None = Field(description="Last live sample ever.")

    @classmethod
    def of(cls, row: DrillPointRow) -> DrillPointOut:
        """Describe a stored row."""
        return cls(**row.__dict__)


class DrillAppOut(Out):
    """A registered model, algorithm, APP, cloud software or dev tool and its monthly calls."""

    id: int
    key: str
    name: str
    kind: str
    category: str | None
    industry: str | None
    domain: str | None
    cross_platform: bool
    total_calls: int = Field(description="Calls in the full calendar months of the window.")
    calls: dict[str, int] = Field(description="Calls per full calendar month, YYYY-MM.")

    @classmethod
    def of(cls, row: DrillAppRow) -> DrillAppOut:
        """Describe a stored row."""
        return cls(**row.__dict__, total_calls=row.total_calls)


class _Page(Out):
    total: int = Field(description="Rows matching the filters over all pages: the figure.")
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page, or null at the end.")
    window: WindowOut
    definition: str = Field(description="Which figure this list explains, and how it is counted.")


class DrillDevicePage(_Page):
    """One page of the devices behind a connected or managed figure."""

    items: list[DrillDeviceOut]
    include_simulated: bool


class DrillPointPage(_Page):
    """One page of the points behind a points or process points figure."""

    items: list[DrillPointOut]
    include_simulated: bool


class DrillAppPage(_Page):
    """One page of the apps behind a registry figure, with their monthly calls."""

    items: list[DrillAppOut]
    months: list[str] = Field(description="The full calendar months of the window.")
    zone: str = Field(description="The zone whose calendar months are counted.")
