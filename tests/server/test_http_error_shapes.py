"""Bugs found by the framework work (issue 16), each checked where a client would notice it:
REST requests no longer count as `message_too_large`, unknown paths and methods answer in the
server's error shape, a bad upload's message names no Python object, and an API key offered as
the only subprotocol is never echoed back."""

from __future__ import annotations

import httpx
from websockets.asyncio.client import connect

from model.audio import wav_bytes

KEY = "secret-key"


def test_a_good_rest_request_counts_no_error(serve, scripted, speak):
    live = serve(scripted())
    answer = httpx.post(f"{live.url}/v1/speech-to-speech",
                        content=wav_bytes(speak("hello"), 16_000), timeout=30)
    assert answer.status_code == 200
    metrics = httpx.get(f"{live.url}/metrics", timeout=10).text
    assert 'icot_errors_total{code="message_too_large"}' not in metrics


def test_unknown_paths_and_methods_answer_in_the_error_shape(serve, scripted):
    live = serve(scripted())
    missing = httpx.get(f"{live.url}/v1/nothing-here", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = httpx.get(f"{live.url}/v1/speech-to-speech", timeout=10)
    assert wrong.status_code == 405 and "POST" in wrong.headers["allow"]
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_undecodable_audio_is_described_without_python_reprs(serve, scripted):
    live = serve(scripted())
    answer = httpx.post(f"{live.url}/v1/speech-to-speech", content=b"RIFF not a wav at all",
                        timeout=10)
    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert answer.json()["error"]["code"] == "invalid_audio"
    assert "object at 0x" not in message and "BytesIO" not in message


async def test_a_key_offered_as_the_only_subprotocol_is_not_echoed(serve, scripted):
    live = serve(scripted(), api_key=KEY)
    async with connect(live.ws_url, subprotocols=[f"openai-insecure-api-key.{KEY}"]) as ws:
        assert ws.subprotocol is None
        assert KEY not in str(ws.response.headers)
    async with connect(live.ws_url, subprotocols=["realtime",
                                                  f"openai-insecure-api-key.{KEY}"]) as ws:
        assert ws.subprotocol == "realtime"
