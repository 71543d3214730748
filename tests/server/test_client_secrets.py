"""Ephemeral client secrets against a live server: minting with the key, OpenAI's answer shape,
the secret opening /v1/realtime (bearer and browser subprotocol) until it expires and nothing
else, the page's own mint endpoint, and the page itself at `/`."""

from __future__ import annotations

import time

import httpx
import pytest
from realtime_client import Client
from websockets.exceptions import InvalidStatus

from server.client_secrets import MAX_TTL_S, ClientSecretStore

KEY = "s3cret-server-key"
BEARER = {"Authorization": f"Bearer {KEY}"}


def mint(live, headers=BEARER, **body) -> httpx.Response:
    return httpx.post(f"{live.url}/v1/realtime/client_secrets", json=body, headers=headers,
                      timeout=10)


async def opens_realtime(live, **connect) -> bool:
    """Whether a WebSocket with these credentials gets its `session.created`."""
    try:
        client = await Client.open(live.ws_url, **connect)
    except InvalidStatus as refused:
        assert refused.response.status_code == 401
        return False
    try:
        return (await client.recv())["type"] == "session.created"
    finally:
        await client.close()


@pytest.fixture
def keyed(serve, scripted):
    return serve(scripted(), api_key=KEY)


def test_minting_needs_the_server_key(keyed):
    assert mint(keyed, headers={}).status_code == 401
    wrong = mint(keyed, headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "unauthorized")


def test_a_secret_has_openai_s_shape_and_lifetime(keyed):
    before = time.time()
    default = mint(keyed)
    assert default.status_code == 200, default.text
    body = default.json()
    assert body["value"].startswith("ek_") and len(body["value"]) > 20
    assert before + 600 - 1 <= body["expires_at"] <= time.time() + 600
    assert body["session"] == {"type": "realtime", "model": "icot"}
    short = mint(keyed, expires_after={"anchor": "created_at", "seconds": 30},
                 session={"type": "realtime", "instructions": "be brief"}).json()
    assert short["expires_at"] <= time.time() + 30
    assert short["session"]["instructions"] == "be brief"
    assert short["value"] != body["value"]


@pytest.mark.parametrize("body, code", [
    ({"expires_after": {"seconds": 5}}, "invalid_value"),
    ({"expires_after": {"seconds": MAX_TTL_S + 1}}, "invalid_value"),
    ({"expires_after": {"anchor": "now", "seconds": 60}}, "invalid_value"),
    ({"surprise": 1}, "invalid_value"),
])
def test_a_bad_request_is_refused_with_a_code(keyed, body, code):
    answer = mint(keyed, **body)
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, code)


async def test_the_secret_opens_realtime_by_bearer_and_subprotocol(keyed):
    secret = mint(keyed).json()["value"]
    assert await opens_realtime(keyed, additional_headers={"Authorization": f"Bearer {secret}"})
    assert await opens_realtime(keyed, subprotocols=["realtime",
                                                     f"openai-insecure-api-key.{secret}"])
    assert not await opens_realtime(keyed, additional_headers={"Authorization": "Bearer ek_x"})
    assert not await opens_realtime(keyed)


async def test_the_secret_opens_nothing_else(keyed, speak):
    secret = mint(keyed).json()["value"]
    as_secret = {"Authorization": f"Bearer {secret}"}
    assert mint(keyed, headers=as_secret).status_code == 401  # cannot mint more
    rest = httpx.post(f"{keyed.url}/v1/speech-to-speech", headers=as_secret, timeout=10,
                      content=b"RIFF")
    assert rest.status_code == 401


async def test_an_expired_secret_is_refused(keyed):
    secret = mint(keyed, expires_after={"seconds": 10}).json()["value"]
    store = keyed.state.auth.secrets
    assert await opens_realtime(keyed, additional_headers={"Authorization": f"Bearer {secret}"})
    store.clock = lambda: time.time() + 11
    assert not await opens_realtime(keyed,
                                    additional_headers={"Authorization": f"Bearer {secret}"})
    assert len(store) == 0  # forgotten once expired


def test_the_store_keeps_a_secret_until_its_expiry():
    now = [1000.0]
    store = ClientSecretStore(clock=lambda: now[0])
    minted = store.mint(60)
    assert minted.expires_at == 1060 and store.valid(minted.value)
    assert not store.valid(minted.value[:-1]) and not store.valid("not-a-secret")
    now[0] = 1059.9
    assert store.valid(minted.value)
    now[0] = 1060.0
    assert not store.valid(minted.value)
    with pytest.raises(ValueError):
        store.mint(MAX_TTL_S + 1)


async def test_the_page_gets_a_secret_only_when_the_server_offers_it(serve, scripted):
    open_server = serve(scripted())
    answer = httpx.post(f"{open_server.url}/web/client-secret", timeout=10)
    assert answer.json() == {"value": None}  # no key: the page connects without one

    closed = serve(scripted(), api_key=KEY)
    same_origin = {"Origin": closed.url}
    assert httpx.post(f"{closed.url}/web/client-secret", headers=same_origin,
                      timeout=10).status_code == 403

    offering = serve(scripted(), api_key=KEY, page_client_secrets=True,
                     allowed_origins=("https://app.example",))
    url = f"{offering.url}/web/client-secret"
    for origin in (offering.url, "https://app.example"):
        body = httpx.post(url, headers={"Origin": origin}, timeout=10).json()
        assert body["value"].startswith("ek_") and body["expires_at"] <= time.time() + 60
    secret = body["value"]
    assert await opens_realtime(offering, subprotocols=[f"openai-insecure-api-key.{secret}"])
    assert httpx.post(url, headers={"Origin": "https://other.example"}, timeout=10
                      ).status_code == 403
    assert httpx.post(url, timeout=10).status_code == 403  # no Origin: not a page load


def test_the_page_is_served_at_the_root(serve, scripted):
    live = serve(scripted(), api_key=KEY)  # the page itself needs no key
    page = httpx.get(f"{live.url}/", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script type="module" src="web/app.js">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "realtime.js", "audio.js", "capture-worklet.js",
                 "playback-worklet.js"):
        script = httpx.get(f"{live.url}/web/{name}", timeout=10)
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert httpx.get(f"{live.url}/web/missing.js", timeout=10).status_code == 404
