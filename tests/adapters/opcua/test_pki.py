from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509

from adapters.opcua.config import TrustMode
from adapters.opcua.pki import ServerNotTrusted, TrustStore, ensure_client_certificate


def test_client_certificate_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = ensure_client_certificate(tmp_path, "urn:tally:test")
    cert = x509.load_der_x509_certificate(first.cert_der)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "urn:tally:test" in san.get_values_for_type(x509.UniformResourceIdentifier)
    assert (first.key_path.stat().st_mode & 0o777) == 0o600
    again = ensure_client_certificate(tmp_path, "urn:tally:test")
    assert again.cert_der == first.cert_der


def test_changed_application_uri_gets_a_new_certificate(tmp_path: Path) -> None:
    first = ensure_client_certificate(tmp_path, "urn:tally:one")
    second = ensure_client_certificate(tmp_path, "urn:tally:two")
    assert second.cert_der != first.cert_der


def _der(tmp_path: Path, name: str) -> bytes:
    return ensure_client_certificate(tmp_path / name, f"urn:{name}").cert_der


def test_tofu_pins_the_first_certificate_and_refuses_another(tmp_path: Path) -> None:
    first, other = _der(tmp_path, "a"), _der(tmp_path, "b")
    store = TrustStore(tmp_path / "pki", TrustMode.TOFU)
    store.check("opc.tcp://h:4840", "urn:server", first)
    store.check("opc.tcp://h:4840", "urn:server", first)
    with pytest.raises(ServerNotTrusted, match="differs from the certificate pinned") as caught:
        store.check("opc.tcp://h:4840", "urn:server", other)
    assert "urn:server" in str(caught.value)
    assert [p.read_bytes() for p in (tmp_path / "pki" / "rejected").iterdir()] == [other]


def test_list_mode_trusts_only_placed_certificates(tmp_path: Path) -> None:
    cert = _der(tmp_path, "a")
    store = TrustStore(tmp_path / "pki", TrustMode.LIST)
    with pytest.raises(ServerNotTrusted, match="not in the trust list"):
        store.check("opc.tcp://h:4840", "urn:server", cert)
    trusted = tmp_path / "pki" / "trusted"
    trusted.mkdir()
    (trusted / "operator-added.der").write_bytes(cert)
    store.check("opc.tcp://h:4840", "urn:server", cert)
    assert "only server certificates placed in" in store.describe()


def test_refusal_names_the_server_and_the_remedy(tmp_path: Path) -> None:
    store = TrustStore(tmp_path / "pki", TrustMode.TOFU)
    store.check("opc.tcp://h:1", "urn:a", _der(tmp_path, "a"))
    with pytest.raises(ServerNotTrusted, match=r"opc\.tcp://h:1 \(urn:a\).*delete .*urn_a\.der"):
        store.check("opc.tcp://h:1", "urn:a", _der(tmp_path, "b"))


def test_connections_starting_together_share_one_certificate(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=5) as pool:
        made = list(
            pool.map(lambda _: ensure_client_certificate(tmp_path, "urn:tally:c"), range(5))
        )
    assert len({c.cert_der for c in made}) == 1
    assert made[0].cert_path.read_bytes() == made[0].cert_der
    assert sorted(p.name for p in (tmp_path / "own").iterdir()) == ["cert.der", "key.pem"]
