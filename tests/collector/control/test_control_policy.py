"""The control policy without devices: tolerance, limits, rate limit, probe choice, defaults."""

from __future__ import annotations

import struct

import pytest
from pydantic import ValidationError

from adapters.limits import limit_violation, same_value
from collector.control.config import ControlConfig, PointLimit, Tolerance
from collector.control.policy import ControlPolicy, RateLimiter, values_match


def _float32(value: float) -> float:
    return float(struct.unpack(">f", struct.pack(">f", value))[0])


def test_the_defaults_are_the_safe_ones() -> None:
    config = ControlConfig()
    assert config.probe.enabled is False
    assert config.rate_limit.operations == 6 and config.rate_limit.period == 60
    assert config.limits == []
    refusal = ControlPolicy(config).point_refusal("d", "p", writable=False)
    assert refusal is not None and "not writable" in refusal


@pytest.mark.parametrize(
    ("requested", "read_back", "verified"),
    [
        (101.3, _float32(101.3), True),  # a float32 register holds 101.30000305...
        (7.5, 750 * 0.01, True),  # scaled integer
        (60, 600 * 0.1, True),  # 60.00000000000001
        (1500, 1500, True),
        (1500, 1501, False),
        (7.5, 7.51, False),
        (0.0, 1e-10, True),  # the absolute bound
        (0.0, 1e-6, False),
        (True, True, True),
        (True, 1, False),  # a boolean is never confirmed by a number
        (1, True, False),
        ("auto", "auto", True),
        ("auto", "manual", False),
        (1.0, None, False),
        (float("nan"), float("nan"), False),
    ],
)
def test_read_backs_are_compared_within_the_tolerance(
    requested: object, read_back: object, verified: bool
) -> None:
    assert values_match(requested, read_back, Tolerance()) is verified  # type: ignore[arg-type]


def test_the_rate_limit_is_a_sliding_window_per_device() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 60.0, clock=lambda: now[0])
    assert limiter.acquire("a") is None
    now[0] = 30.0
    assert limiter.acquire("a") is None
    refusal = limiter.acquire("a")
    assert refusal is not None and "try again in 30.0 s" in refusal
    assert limiter.acquire("b") is None  # another device has its own window
    now[0] = 60.0  # the first operation left the window
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") is not None


def test_limits_deny_bound_and_restrict_matching_points() -> None:
    policy = ControlPolicy(
        ControlConfig(
            limits=[
                PointLimit(device="line-*", point="*_setpoint", min=0, max=250),
                PointLimit(device="line-2", point="*_setpoint", max=100),
                PointLimit(device="*", point="emergency_*", deny=True),
                PointLimit(device="*", point="mode", allowed=["auto", "manual"]),
            ]
        )
    )
    assert policy.value_refusal("line-1", "temp_setpoint", 200) is None
    high = policy.value_refusal("line-2", "temp_setpoint", 200)
    assert high is not None and "above the maximum 100" in high  # every matching rule applies
    low = policy.value_refusal("line-1", "temp_setpoint", -1)
    assert low is not None and "below the minimum 0" in low
    word = policy.value_refusal("line-1", "temp_setpoint", "hot")
    assert word is not None and "not a number" in word
    assert policy.value_refusal("other", "temp_setpoint", 999) is None
    denied = policy.point_refusal("x", "emergency_stop", writable=True)
    assert denied is not None and "denied by control.limits" in denied
    assert policy.value_refusal("x", "mode", "manual") is None
    assert policy.value_refusal("x", "mode", "off") is not None
    off = ControlPolicy(ControlConfig(enabled=False)).point_refusal("x", "y", writable=True)
    assert off is not None and "control.enabled: false" in off


def test_the_probe_covers_opted_in_devices_and_prefers_points_in_order() -> None:
    config = ControlConfig.model_validate(
        {
            "limits": [{"point": "speed", "deny": True}],
            "probe": {"devices": ["line-*"], "exclude": ["line-9"], "points": ["*_enable", "*"]},
        }
    )
    policy = ControlPolicy(config)
    assert policy.probes("line-1") and not policy.probes("line-9") and not policy.probes("x")
    order = policy.probe_order("line-1", ["speed", "b_setpoint", "cycle_enable", "a_mode"])
    assert order == ["cycle_enable", "a_mode", "b_setpoint"]  # speed is denied


def test_bad_limits_are_config_errors() -> None:
    with pytest.raises(ValidationError, match=r"min 5\.0 is greater than max 1\.0"):
        PointLimit(min=5, max=1)
    with pytest.raises(ValidationError):
        PointLimit(allowed=[])
    with pytest.raises(ValidationError):
        ControlConfig.model_validate({"rate_limit": {"operations": 0}})


def test_limit_violations_and_value_identity() -> None:
    assert limit_violation(5, 0, 10) is None
    assert limit_violation(True, allowed=[True]) is None
    refused = limit_violation(1, allowed=[True, False])
    assert refused is not None and "not one of the allowed values" in refused
    assert same_value(1, 1.0) and not same_value(True, 1) and not same_value("1", 1)
    assert limit_violation(float("nan"), 0, 10) is not None
