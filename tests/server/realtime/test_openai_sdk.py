"""Stock clients unchanged: the openai SDK's realtime clients (GA and beta) against our server.

The SDK is pointed at the server with `websocket_base_url=ws://127.0.0.1:PORT/v1` (it appends
`/realtime?model=…`) and authenticates with its usual bearer header. Events arrive as the SDK's
own typed models. The runtime is the ScriptedRuntime test double (protocol-level check).
"""

from __future__ import annotations

import asyncio

import pytest
from openai import AsyncOpenAI
from openai.types.beta.realtime import ResponseAudioDeltaEvent as BetaAudioDelta
from openai.types.realtime import ResponseAudioDeltaEvent, ResponseDoneEvent
from realtime_client import pcm_b64
from websockets.exceptions import InvalidStatus

API_KEY = "sdk-key"
EVENT_TIMEOUT_S = 15.0


def _client(live) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=API_KEY, websocket_base_url=f"ws://127.0.0.1:{live.port}/v1",
                       base_url=f"http://127.0.0.1:{live.port}/v1")


async def _events_until_done(connection) -> list:
    events = []
    while True:
        event = await asyncio.wait_for(connection.recv(), EVENT_TIMEOUT_S)
        events.append(event)
        if event.type in ("response.done", "error"):
            return events


async def test_ga_realtime_client(serve, scripted, speak):
    runtime = scripted()
    live = serve(runtime, api_key=API_KEY)
    async with _client(live).realtime.connect(model="icot-demo") as connection:
        created = await asyncio.wait_for(connection.recv(), EVENT_TIMEOUT_S)
        assert created.type == "session.created"
        await connection.session.update(session={
            "type": "realtime", "audio": {"input": {"turn_detection": None}}})
        updated = await asyncio.wait_for(connection.recv(), EVENT_TIMEOUT_S)
        assert updated.type == "session.updated"
        await connection.input_audio_buffer.append(audio=pcm_b64(speak("what is two plus three")))
        await connection.input_audio_buffer.commit()
        await connection.response.create()
        events = await _events_until_done(connection)
    audio = [e for e in events if isinstance(e, ResponseAudioDeltaEvent)]
    assert audio and all(e.type == "response.output_audio.delta" for e in audio)
    done = events[-1]
    assert isinstance(done, ResponseDoneEvent) and done.response.status == "completed"
    transcript = [e.delta for e in events if e.type == "response.output_audio_transcript.delta"]
    assert "".join(transcript) == runtime.reply


async def test_beta_realtime_client(serve, scripted, speak):
    live = serve(scripted(), api_key=API_KEY)
    async with _client(live).beta.realtime.connect(model="gpt-4o-realtime-preview") as connection:
        created = await asyncio.wait_for(connection.recv(), EVENT_TIMEOUT_S)
        assert "input_audio_format" in created.session.model_dump(exclude_none=True)
        await connection.session.update(session={"turn_detection": None})
        await asyncio.wait_for(connection.recv(), EVENT_TIMEOUT_S)
        await connection.input_audio_buffer.append(audio=pcm_b64(speak("hello")))
        await connection.input_audio_buffer.commit()
        await connection.response.create()
        events = await _events_until_done(connection)
    assert any(isinstance(e, BetaAudioDelta) for e in events)
    assert events[-1].type == "response.done"
    assert events[-1].response.status == "completed"


async def test_sdk_without_the_key_is_refused(serve, scripted):
    live = serve(scripted(), api_key=API_KEY)
    client = AsyncOpenAI(api_key="wrong", websocket_base_url=f"ws://127.0.0.1:{live.port}/v1")
    with pytest.raises(InvalidStatus) as refused:
        async with client.realtime.connect(model="icot-demo") as connection:
            await connection.recv()
    assert refused.value.response.status_code == 401
