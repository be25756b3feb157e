from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from adapters.opcua.config import OpcUaSource, SecurityMode, SecurityPolicy, TrustMode
from collector.config import ConfigError, parse_config

SAMPLE = Path(__file__).parents[3] / "adapters" / "opcua" / "sample.yaml"


def _entry(**fields: object) -> dict[str, object]:
    return {"protocol": "opcua", "id": "plc", "endpoint": "opc.tcp://127.0.0.1:4840", **fields}


def test_sample_loads_through_the_tally_config_with_every_default() -> None:
    config = parse_config(yaml.safe_load(SAMPLE.read_text()), str(SAMPLE), environ={})
    [entry] = config.devices
    assert isinstance(entry, OpcUaSource)
    defaults = OpcUaSource.model_validate(_entry())
    assert entry.security == defaults.security
    assert entry.discovery == defaults.discovery
    assert entry.data == defaults.data
    assert entry.trust.mode is TrustMode.TOFU
    assert entry.devices[0].node_id == "ns=2;s=Press7"


def test_environment_overrides_reach_the_password() -> None:
    raw = {"version": 1, "devices": [_entry(auth={"kind": "username", "username": "op"})]}
    config = parse_config(raw, "t", environ={"TALLY_DEVICES__0__AUTH__PASSWORD": "s3cret"})
    [entry] = config.devices
    assert isinstance(entry, OpcUaSource)
    assert entry.auth.password is not None
    assert entry.auth.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(entry)


def test_secure_endpoint_needs_a_signing_mode() -> None:
    good = OpcUaSource.model_validate(
        _entry(security={"policy": "Basic256Sha256", "mode": "SignAndEncrypt"})
    )
    assert good.security.policy is SecurityPolicy.BASIC256SHA256
    assert good.security.mode is SecurityMode.SIGN_AND_ENCRYPT
    with pytest.raises(ValidationError, match="policy None goes with mode None"):
        OpcUaSource.model_validate(_entry(security={"policy": "Basic256Sha256"}))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"auth": {"kind": "username", "username": "op"}}, "needs both 'username' and 'password'"),
        ({"auth": {"username": "op"}}, "only used with kind 'username'"),
        ({"discovery": {"root": "Plant"}}, "must start with 'Objects'"),
        ({"devices": [{"id": "x"}]}, "exactly one of 'node_id' or 'browse_path'"),
        ({"discovery": {"enabled": False}}, "nothing to collect"),
        ({"endpoint": "tcp://127.0.0.1:4840"}, "must start with opc.tcp://"),
        ({"industry": "26"}, "GB/T 4754-2017"),
        ({"reconnect": {"initial_delay": 5, "max_delay": 1}}, "max_delay"),
        ({"polling": True}, "Extra inputs are not permitted"),
    ],
)
def test_bad_entries_are_refused_with_the_reason(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OpcUaSource.model_validate(_entry(**fields))


def test_bad_key_is_reported_with_its_path() -> None:
    raw = {"version": 1, "devices": [_entry(data={"queue_size": 0})]}
    with pytest.raises(ConfigError, match=r"devices\[0\]\.data\.queue_size"):
        parse_config(raw, "tally.yaml", environ={})
