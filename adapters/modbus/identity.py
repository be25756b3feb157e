"""Read Device Identification objects as named identity fields, and the simulated mark."""

from __future__ import annotations

from collections.abc import Mapping

OBJECT_NAMES = {
    0x00: "vendor",
    0x01: "product_code",
    0x02: "revision",
    0x03: "vendor_url",
    0x04: "product_name",
    0x05: "model",
    0x06: "user_application",
}
SIMULATED_MARK = "(simulated)"
"""Vendor names ending with this mark identify devices served by a simulator."""


def identity_fields(objects: Mapping[int, bytes]) -> dict[str, str]:
    """Name the basic and regular identification objects (extended ones as object_0xNN)."""
    out: dict[str, str] = {}
    for object_id, raw in sorted(objects.items()):
        text = raw.decode("utf-8", errors="replace").strip("\x00 ").strip()
        if text:
            out[OBJECT_NAMES.get(object_id, f"object_0x{object_id:02x}")] = text
    return out


def is_simulated(identity: Mapping[str, str]) -> bool:
    """Tell whether the vendor name carries the simulated mark."""
    return identity.get("vendor", "").strip().lower().endswith(SIMULATED_MARK)
