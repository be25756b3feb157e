"""Collector pipeline: bounded queue → batcher → store writer, with a durable spool.

Adapters put Samples and DeviceEvents into `Pipeline` (their Sink); the batcher
flushes on size or age; the forwarder writes each batch to the store, spools it
to disk while the store is unreachable and replays the spool in order when it
comes back.
"""

from collector.pipeline.batcher import Batcher
from collector.pipeline.codec import (
    FORMAT_VERSION,
    SpoolFormatError,
    UnencodableRecord,
    decode_batch,
    encode_batch,
)
from collector.pipeline.forwarder import BatchStore, Forwarder, ForwarderStats
from collector.pipeline.pipeline import Pipeline, ShutdownReport
from collector.pipeline.queue import PipelineClosed, RecordQueue
from collector.pipeline.spool import Spool, SpoolCorrupt, SpoolEntry, SpoolFull, SpoolScan

__all__ = [
    "FORMAT_VERSION",
    "BatchStore",
    "Batcher",
    "Forwarder",
    "ForwarderStats",
    "Pipeline",
    "PipelineClosed",
    "RecordQueue",
    "ShutdownReport",
    "Spool",
    "SpoolCorrupt",
    "SpoolEntry",
    "SpoolFormatError",
    "SpoolFull",
    "SpoolScan",
    "UnencodableRecord",
    "decode_batch",
    "encode_batch",
]
