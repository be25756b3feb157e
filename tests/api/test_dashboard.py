"""GET /: the dashboard page and its files are served without a key, and only from here."""

import re

import pytest

from tests.api.apitest import api_client

pytestmark = pytest.mark.integration


async def test_the_page_and_its_files_need_no_key_and_load_nothing_from_elsewhere(
    database_url: str,
) -> None:
    async with api_client(database_url) as (client, _):
        page = await client.get("/")
        references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        files = {ref: await client.get(ref) for ref in references if ref.startswith("/dashboard/")}
        missing = await client.get("/dashboard/secrets.txt")
        data = await client.get("/v1/programs")
        spec = (await client.get("/openapi.json")).json()
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Tally" in page.text and 'id="key-form"' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    # Every script and style sheet is one of ours, served without a key.
    assert set(files) == {"/dashboard/app.js", "/dashboard/style.css"}
    assert all(answer.status_code == 200 for answer in files.values())
    assert files["/dashboard/app.js"].headers["content-type"].startswith("text/javascript")
    assert files["/dashboard/style.css"].headers["content-type"].startswith("text/css")
    assert all(not ref.startswith(("http:", "https:", "//")) for ref in references), references
    for answer in files.values():
        assert "https://" not in answer.text and "@import" not in answer.text
    assert "Authorization" in files["/dashboard/app.js"].text
    assert "sessionStorage" in files["/dashboard/app.js"].text
    assert missing.status_code == 404
    # The page is open; the data behind it is not.
    assert data.status_code == 401
    assert "/" not in spec["paths"]
