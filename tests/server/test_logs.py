"""Structured logs: JSON lines tagged with the session id, and never audio or keys."""

from __future__ import annotations

import io
import json
import logging

import pytest
from realtime_client import Client, pcm_b64

from server.logs import JsonFormatter, TextFormatter, _SessionFilter, session_id

KEY = "log-test-key-1234567890"


@pytest.fixture
def captured():
    """Everything logged while the test runs, formatted as `icot serve` formats it (JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_SessionFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


async def test_session_logs_carry_the_session_id_and_no_audio_or_key(serve, scripted, speak,
                                                                    captured):
    live = serve(scripted(), api_key=KEY, log_level="info")
    client = await Client.open(live.ws_url, additional_headers={"Authorization": f"Bearer {KEY}"})
    session = (await client.recv())["session"]["id"]
    await client.send(type="session.update", session={"turn_detection": None})
    audio = pcm_b64(speak("what is two plus three"))
    await client.send(type="input_audio_buffer.append", audio=audio)
    await client.send(type="input_audio_buffer.append", audio="not base64!")
    assert (await client.until("error"))[-1]["error"]["code"] == "invalid_base64"
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")
    events = await client.until("response.done")
    await client.close()
    live.wait(lambda: "session closed" in captured.getvalue())
    records = [json.loads(line) for line in captured.getvalue().splitlines()]
    mine = [r for r in records if r.get("session_id") == session]
    assert {"session opened", "client error", "response done", "session closed"} <= {
        r["msg"] for r in mine}
    error = next(r for r in mine if r["msg"] == "client error")
    assert error["code"] == "invalid_base64"
    text = captured.getvalue()
    reply_audio = next(e["delta"] for e in events if e["type"].endswith("audio.delta"))
    assert KEY not in text
    assert audio[:64] not in text and reply_audio[:64] not in text


def test_text_format_names_the_session():
    record = logging.makeLogRecord({"msg": "response done", "levelname": "INFO",
                                    "name": "icot.realtime", "status": "completed"})
    token = session_id.set("sess_abc")
    try:
        _SessionFilter().filter(record)
    finally:
        session_id.reset(token)
    line = TextFormatter().format(record)
    assert "[sess_abc] response done" in line and "status=completed" in line
