import io
import json
import logging

from collector.logs import configure


def test_json_lines_carry_device_and_point() -> None:
    out = io.StringIO()
    configure("INFO", "auto", stream=out)  # StringIO is not a terminal → JSON
    logging.getLogger("tally.test").warning(
        "device unavailable", extra={"device": "pump-1", "point": "flow"}
    )
    entry = json.loads(out.getvalue().strip())
    assert entry["msg"] == "device unavailable"
    assert entry["level"] == "WARNING"
    assert (entry["device"], entry["point"]) == ("pump-1", "flow")


def test_text_format_appends_context() -> None:
    out = io.StringIO()
    configure("DEBUG", "text", stream=out)
    logging.getLogger("tally.test").info("polled", extra={"device": "d1"})
    assert out.getvalue().rstrip().endswith("polled [device=d1]")
    configure("INFO", "text", stream=io.StringIO())
