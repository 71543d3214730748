"""Browser origins against a live server: REST CORS headers and preflight for allowed origins
only, and the WebSocket `Origin` check (own origin, configured ones, `*`, non-browser clients)."""

from __future__ import annotations

import httpx
import pytest
from realtime_client import Client
from websockets.exceptions import InvalidStatus

from server.cors import check_origin
from server.settings import ServerSettings

APP = "https://app.example:8443"
OTHER = "https://evil.example"


def preflight(live, origin: str) -> httpx.Response:
    return httpx.options(f"{live.url}/v1/speech-to-speech", timeout=10, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})


@pytest.fixture
def live(serve, scripted):
    return serve(scripted(), allowed_origins=(APP,))


def test_rest_preflight_answers_allowed_origins_only(live):
    allowed = preflight(live, APP)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == APP
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    refused = preflight(live, OTHER)
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers


def test_rest_answers_carry_cors_headers_for_allowed_origins_only(live):
    url = f"{live.url}/v1/speech-to-speech"
    allowed = httpx.post(url, content=b"", headers={"Origin": APP}, timeout=10)
    assert allowed.headers["access-control-allow-origin"] == APP
    assert "retry-after" in allowed.headers["access-control-expose-headers"].lower()
    other = httpx.post(url, content=b"", headers={"Origin": OTHER}, timeout=10)
    assert "access-control-allow-origin" not in other.headers


async def handshake(live, origin: str | None) -> int:
    """101 when the WebSocket opens, else the HTTP status of the refusal."""
    try:
        client = await Client.open(live.ws_url, origin=origin)
    except InvalidStatus as refused:
        body = refused.response.body.decode()
        assert '"origin_not_allowed"' in body
        return refused.response.status_code
    assert (await client.recv())["type"] == "session.created"
    await client.close()
    return 101


async def test_websocket_origin_check(live):
    assert await handshake(live, APP) == 101
    assert await handshake(live, live.url) == 101  # the page this server serves
    assert await handshake(live, None) == 101  # not a browser: the API key guards it
    assert await handshake(live, OTHER) == 403
    assert await handshake(live, "null") == 403  # a file:// or sandboxed page
    refusals = httpx.get(f"{live.url}/metrics", timeout=10).text
    assert 'icot_errors_total{code="origin_not_allowed"} 2.0' in refusals


async def test_a_star_allows_every_origin(serve, scripted):
    live = serve(scripted(), allowed_origins=("*",))
    assert await handshake(live, OTHER) == 101
    assert preflight(live, OTHER).headers["access-control-allow-origin"] == "*"


def test_by_default_only_the_server_s_own_pages_may_script_it(serve, scripted):
    live = serve(scripted())
    assert preflight(live, APP).status_code == 400


@pytest.mark.parametrize("origin", ["app.example", "ftp://app.example", "https://app.example/x",
                                    "https://"])
def test_a_malformed_origin_is_refused_at_start_up(origin):
    with pytest.raises(ValueError, match="origin"):
        ServerSettings(allowed_origins=(origin,))
    with pytest.raises(ValueError):
        check_origin(origin)


def test_origins_are_compared_as_browsers_send_them():
    assert check_origin("HTTPS://App.Example:8443") == "https://app.example:8443"
    assert check_origin("http://localhost:3000/") == "http://localhost:3000"
