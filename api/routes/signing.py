"""GET /v1/keys/signing: the public key that signs report bundles."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import Field

from api.deps import AuditorCaller, SettingsDep, Store
from api.reporting import signing_key
from api.schemas import Out
from collector.bundles.signing import ALGORITHM, SigningKeyError

router = APIRouter(prefix="/v1/keys/signing", tags=["keys"])


class SigningKeyOut(Out):
    """The report-signing public key."""

    algorithm: str = Field(ALGORITHM)
    public_key_pem: str
    fingerprint_sha256: str = Field(
        description="SHA-256 of the DER public key: "
        "`openssl pkey -pubin -in key.pem -outform DER | sha256sum`."
    )


@router.get("", response_model=SigningKeyOut)
async def get_signing_key(
    conn: Store, caller: AuditorCaller, settings: SettingsDep
) -> SigningKeyOut:
    """Return the public key bundles are signed with (created on first use, and audited).

    Save it somewhere the operator cannot change, then `tally verify --public-key FILE`
    proves a bundle came from this collector.
    """
    try:
        key = await signing_key(conn, settings, f"key:{caller.prefix}")
    except SigningKeyError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc)) from None
    return SigningKeyOut(
        public_key_pem=key.public_key_pem.decode("ascii"), fingerprint_sha256=key.fingerprint
    )
