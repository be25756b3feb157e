import pytest

from adapters.base import Quality
from adapters.opcua.errors import WriteError
from adapters.opcua.nodes import join_path, normalize_for_write, quality_of, split_path


@pytest.mark.parametrize(
    ("status", "quality"),
    [
        (0x00000000, Quality.GOOD),  # Good
        (0x00A80000, Quality.GOOD),  # GoodMoreData
        (0x40900000, Quality.UNCERTAIN),  # UncertainLastUsableValue
        (0x80340000, Quality.BAD),  # BadNodeIdUnknown
        (0x808A0000, Quality.BAD),  # BadWaitingForInitialData
    ],
)
def test_status_code_severity_maps_to_quality(status: int, quality: Quality) -> None:
    assert quality_of(status) is quality


def test_paths_round_trip_names_with_separators() -> None:
    names = ["Objects", "Line 1/2", r"back\slash", "Press"]
    path = join_path(names)
    assert path == r"Objects/Line 1\/2/back\\slash/Press"
    assert split_path(path) == names


@pytest.mark.parametrize(
    ("value", "data_type", "expected"),
    [
        (True, "bool", True),
        (0, "bool", False),
        (12, "int16", 12),
        (12.0, "uint8", 12),
        (3, "float32", 3.0),
        ("auto", "string", "auto"),
    ],
)
def test_values_fit_for_writing(value: object, data_type: str, expected: object) -> None:
    result = normalize_for_write(value, data_type, "device 'd' point 'p'")  # type: ignore[arg-type]
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "data_type", "message"),
    [
        (2, "bool", "expected a boolean"),
        (1.5, "int32", "expected an integer"),
        (70000, "int16", r"outside the int16 range -32768\.\.32767"),
        (-1, "uint32", "outside the uint32 range"),
        ("12", "float64", "expected a number"),
        (True, "float64", "expected a number"),
        (5, "string", "expected a string"),
        (5, "datetime", "not supported"),
    ],
)
def test_unfit_values_are_refused_naming_device_and_point(
    value: object, data_type: str, message: str
) -> None:
    with pytest.raises(WriteError, match=message) as caught:
        normalize_for_write(value, data_type, "device 'd' point 'p'")  # type: ignore[arg-type]
    assert "device 'd' point 'p'" in str(caught.value)
