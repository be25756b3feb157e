"""Check that a connection's TLS files load: a bad one fails the configuration, not a session."""

from __future__ import annotations

import ssl
from pathlib import Path

from adapters.mqtt.connect_errors import error_text


def _missing(what: str, path: Path | None) -> str | None:
    if path is None or path.is_file():
        return None
    return f"{what} {path}: no such file" if not path.exists() else f"{what} {path}: not a file"


def tls_files_problem(
    ca_file: Path | None, cert_file: Path | None, key_file: Path | None
) -> str | None:
    """Return what is wrong with the CA bundle or the client certificate and key, or None."""
    if (cert_file is None) != (key_file is None):
        return "cert_file and key_file go together (client certificate and key)"
    for what, path in (("ca_file", ca_file), ("cert_file", cert_file), ("key_file", key_file)):
        problem = _missing(what, path)
        if problem is not None:
            return problem
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as err:
            return f"ca_file {ca_file}: not a PEM bundle of CA certificates ({error_text(err)})"
    if cert_file is not None and key_file is not None:
        try:
            # An empty password: an encrypted key fails here instead of prompting on a tty.
            context.load_cert_chain(str(cert_file), str(key_file), password="")
        except ssl.SSLError as err:
            if getattr(err, "reason", None) == "KEY_VALUES_MISMATCH":
                return f"key_file {key_file} is not the private key of cert_file {cert_file}"
            return (
                f"cert_file {cert_file} with key_file {key_file}: cannot be loaded "
                f"({error_text(err)}); both must be PEM, the key unencrypted"
            )
        except OSError as err:
            return f"cert_file {cert_file} with key_file {key_file}: {error_text(err)}"
    return None
