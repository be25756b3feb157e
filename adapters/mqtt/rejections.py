"""Why MQTT input was refused: reasons, counts and rate-limited log lines."""

from __future__ import annotations

import enum
import logging
import time
from collections import Counter
from collections.abc import Callable

log = logging.getLogger("adapters.mqtt")


class Reason(enum.StrEnum):
    """Every reason a message, a field or a metric is refused."""

    OVERSIZED_PAYLOAD = "oversized_payload"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    BAD_TIMESTAMP = "bad_timestamp"
    BAD_TOPIC = "bad_topic"
    BAD_DEVICE_ID = "bad_device_id"
    DEVICE_LIMIT = "device_limit"
    DISABLED_DEVICE = "disabled_device"
    POINT_LIMIT = "point_limit"
    UNDECODABLE_PROTOBUF = "undecodable_protobuf"
    BAD_BIRTH = "bad_birth"
    BEFORE_BIRTH = "before_birth"
    SEQUENCE_GAP = "sequence_gap"
    AWAITING_REBIRTH = "awaiting_rebirth"
    UNKNOWN_ALIAS = "unknown_alias"
    UNKNOWN_METRIC = "unknown_metric"
    UNSUPPORTED_DATATYPE = "unsupported_datatype"
    HANDOFF_FULL = "handoff_full"


class Rejections:
    """Counts refusals per reason and logs them, at most once per reason per interval."""

    def __init__(
        self,
        source: str,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.counts: Counter[str] = Counter()
        self._interval = interval
        self._clock = clock
        self._last_logged: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def reject(self, reason: Reason, topic: str | None, detail: str, n: int = 1) -> None:
        """Count `n` refusals for `reason` and log one line unless one was logged lately."""
        self.counts[reason.value] += n
        now = self._clock()
        last = self._last_logged.get(reason.value)
        if last is not None and now - last < self._interval:
            self._suppressed[reason.value] += n
            return
        self._last_logged[reason.value] = now
        more = self._suppressed.pop(reason.value, 0)
        tail = f" ({more} more since the last report)" if more else ""
        log.warning(
            "%s: refused MQTT input on topic %r: %s: %s%s",
            self.source,
            topic,
            reason.value,
            detail,
            tail,
        )
