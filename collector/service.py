"""The collector at run time: adapters → pipeline → store, for one configuration."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import psycopg
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from adapters.registry import Adapter, AdapterConfigError, build_adapters
from collector import metrics
from collector.batch import Batch
from collector.config import ConfigError, TallyConfig
from collector.control.probe import ProbeSchedule
from collector.control.service import ControlService
from collector.pipeline import Pipeline, ShutdownReport
from collector.store.migrate import MigrationError, migrate
from collector.store.writer import SampleWriter, StoreUnavailable, WriteResult

log = logging.getLogger(__name__)


class SchemaGatedStore:
    """The writer behind a schema check: until the schema is migrated, batches wait.

    A collector may start while PostgreSQL is down; its batches are spooled and
    the schema is migrated the first time the store answers, before any write.
    """

    def __init__(self, config: TallyConfig, writer: SampleWriter) -> None:
        self._config = config
        self._writer = writer
        self._ready = False
        self._lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        """Report whether the schema has been checked (and migrated) on this store."""
        return self._ready

    async def ensure_schema(self) -> None:
        """Migrate the store once; raise StoreUnavailable while it cannot be reached."""
        async with self._lock:
            if self._ready:
                return
            try:
                result = await asyncio.to_thread(
                    migrate, self._config.store.dsn, self._config.store.timescale
                )
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(f"store unreachable: {exc}".strip()) from exc
            for name in result.applied:
                log.info("applied migration %s", name)
            self._ready = True

    async def write(self, batch: Batch, source: Any = "live") -> WriteResult:
        """Write one batch once the schema is in place."""
        await self.ensure_schema()
        return await self._writer.write(batch, source)

    async def write_many(self, batches: Sequence[Batch], source: Any = "live") -> list[WriteResult]:
        """Write several waiting batches in one transaction (group commit), each once."""
        await self.ensure_schema()
        return await self._writer.write_many(batches, source)


class MetricsObserver:
    """Turns adapters' operational signals into Prometheus metrics."""

    def connection_changed(self, protocol: str, endpoint: str, up: bool) -> None:
        """Set tally_adapter_connected for the endpoint."""
        metrics.adapter_connected.labels(protocol=protocol, endpoint=endpoint).set(1 if up else 0)

    def request_observed(self, protocol: str, kind: str, seconds: float) -> None:
        """Observe one request latency."""
        metrics.adapter_request_latency.labels(protocol=protocol, kind=kind).observe(seconds)


METRICS_OBSERVER = MetricsObserver()


class RejectionExporter(Collector):
    """Exports the adapters' own rejection counters as tally_adapter_rejections_total."""

    def __init__(self) -> None:
        self.adapters: list[Adapter] = []

    def collect(self) -> Iterator[CounterMetricFamily]:
        """Yield one counter family with a sample per protocol and reason."""
        family = CounterMetricFamily(
            "tally_adapter_rejections",
            "Messages or samples an adapter refused before the pipeline, by reason.",
            labels=["adapter", "reason"],
        )
        for adapter in self.adapters:
            counts: Mapping[str, int] = getattr(adapter, "rejections", Counter())
            for reason, count in sorted(counts.items()):
                family.add_metric([type(adapter).__name__, reason], count)
        yield family


_REJECTIONS = RejectionExporter()
metrics.REGISTRY.register(_REJECTIONS)


class CollectorService:
    """Runs the configured adapters into the pipeline and the store until stopped."""

    def __init__(self, config: TallyConfig, devices: Sequence[Any] | None = None) -> None:
        self.config = config
        self.devices = list(config.devices if devices is None else devices)
        self.writer = SampleWriter(config.store.dsn, connect_timeout=config.store.connect_timeout)
        self.store = SchemaGatedStore(config, self.writer)
        self.pipeline = Pipeline.from_config(config, self.store)
        try:
            self.adapters = build_adapters(
                self.devices, self.pipeline, data_dir=config.data_dir, observer=METRICS_OBSERVER
            )
        except AdapterConfigError as exc:
            raise ConfigError(str(exc)) from None
        self._tasks: dict[asyncio.Task[None], Adapter] = {}
        self.report: ShutdownReport | None = None
        self.control = ControlService(
            config.control,
            self.adapters,
            config.store.dsn,
            connect_timeout=config.store.connect_timeout,
            sink=self.pipeline,
        )
        """Verified control operations through these adapters (collector/control/)."""
        self.probe = ProbeSchedule(self.control)
        self._probe_stop = asyncio.Event()
        self._probe_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Check the schema (when reachable), open the spool and start every adapter."""
        try:
            await self.store.ensure_schema()
        except StoreUnavailable as exc:
            log.warning("%s; collecting into the spool until the store answers", exc)
        except MigrationError:
            raise
        scan = await self.pipeline.start()
        if scan.batches:
            log.info(
                "spool holds %d batch(es), %d sample(s) from an earlier run: replaying them first",
                scan.batches,
                scan.samples,
            )
        _REJECTIONS.adapters.extend(self.adapters)
        for adapter in self.adapters:
            task = asyncio.create_task(adapter.run(), name=f"tally-{type(adapter).__name__}")
            task.add_done_callback(self._adapter_ended)
            self._tasks[task] = adapter
        await self.control.start()
        if self.config.control.probe.enabled:
            self._probe_stop.clear()
            self._probe_task = asyncio.create_task(
                self.probe.run(self._probe_stop), name="tally-probe"
            )
        log.info(
            "collector started: %d device entr(y/ies), %d adapter(s), store %s",
            len(self.devices),
            len(self.adapters),
            "ready" if self.store.ready else "unreachable",
        )

    def _adapter_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        adapter = self._tasks.get(task)
        log.error(
            "adapter %s stopped with an error: %r", type(adapter).__name__, task.exception(),
            exc_info=task.exception(),
        )  # fmt: skip

    async def stop(self) -> ShutdownReport:
        """Stop the adapters, flush the pipeline (store or spool) and close the writer."""
        self._probe_stop.set()
        if self._probe_task is not None:
            try:
                await asyncio.wait_for(self._probe_task, timeout=10)
            except TimeoutError:
                log.warning("the probe schedule did not stop within 10 s; cancelled")
            except Exception:
                log.exception("the probe schedule ended with an error")
            self._probe_task = None
        await self.control.stop()
        for adapter in self._tasks.values():
            try:
                await adapter.stop()
            except Exception:
                log.exception("adapter %s did not stop cleanly", type(adapter).__name__)
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for adapter in self._tasks.values():
            if adapter in _REJECTIONS.adapters:
                _REJECTIONS.adapters.remove(adapter)
        self._tasks.clear()
        self.report = await self.pipeline.stop()
        await self.writer.close()
        return self.report

    async def __aenter__(self) -> CollectorService:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
