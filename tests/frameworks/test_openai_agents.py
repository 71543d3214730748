"""openai-agents (`RealtimeRunner` / `RealtimeSession`) holds a conversation with `icot serve`.

The snippet of docs/integrations.md: a `RealtimeRunner` whose model config points `url` at the
server; the session is driven with its own calls (`send_audio`, `send_message`) and its raw model
events are checked against the openai SDK's types. The agent's defaults stay as they are
(`semantic_vad`, input transcription with an OpenAI model name): the server maps both.
"""

from __future__ import annotations

import asyncio

import pytest
from agents.realtime import RealtimeAgent, RealtimeRunner
from agents.realtime.model_inputs import RealtimeModelSendRawMessage
from framework_server import API_KEY, silence_pcm
from session_log import ErrorRecords, ServerEvents, audio_bytes, reply_transcript

pytestmark = pytest.mark.frameworks
CHUNK_BYTES = 4_800  # 100 ms of 24 kHz PCM16, as a microphone would send it
BARGE_IN_ATTEMPTS = 3


async def start_session(url: str):
    """The integration snippet: a RealtimeRunner pointed at the server."""
    agent = RealtimeAgent(name="assistant", instructions="You answer short questions.")
    runner = RealtimeRunner(agent)
    return await runner.run(model_config={"url": url, "api_key": API_KEY})


async def speak(session, pcm: bytes) -> None:
    for start in range(0, len(pcm), CHUNK_BYTES):
        await session.send_audio(pcm[start:start + CHUNK_BYTES])


async def test_openai_agents_greets_answers_speech_and_text_and_is_interrupted(
        icot_server, speech_pcm):
    events = ServerEvents("ga")
    failures: list[object] = []
    with ErrorRecords("openai.agents") as logged:
        session = await start_session(icot_server.ws_url)
        async with session:

            async def consume() -> None:
                async for event in session:
                    if event.type == "raw_model_event" and event.data.type == "raw_server_event":
                        events.add(event.data.data)
                    elif event.type == "error":
                        failures.append(event.error)

            reader = asyncio.create_task(consume())
            await events.next("session.updated")

            # A greeting before any audio: response.create answers from the conversation
            # (the text-in chain; the demo v1 bundle never learned text chat, so the words may
            # be poor and the reply may stop before speaking: the protocol path is what counts)
            await session.model.send_event(
                RealtimeModelSendRawMessage(message={"type": "response.create"}))
            greeting = await events.until_done()
            assert greeting[-1]["response"]["status"] == "completed"

            # A spoken question; server VAD ends the turn and answers.
            await speak(session, speech_pcm("what is two plus three") + silence_pcm(1.0))
            spoken = await events.until_done()
            assert spoken[-1]["response"]["status"] == "completed"
            assert audio_bytes(spoken) > 0 and reply_transcript(spoken[-1])
            heard = await events.next("conversation.item.input_audio_transcription.completed")
            assert "plus" in heard["transcript"].lower()

            # A typed question.
            await session.send_message("what is four plus one")
            typed = await events.until_done()
            assert typed[-1]["response"]["status"] == "completed"
            assert typed[-1]["response"]["usage"]["input_tokens"] > 0

            # Barge-in: speech while the reply streams cancels it (turn_detected).
            for _ in range(BARGE_IN_ATTEMPTS):
                await speak(session, speech_pcm("what is three plus three") + silence_pcm(1.0))
                await events.next("response.created")
                await speak(session, speech_pcm("count from one to three") + silence_pcm(1.0))
                first = await events.next("response.done")
                if first["response"]["status"] == "cancelled":
                    break
                await events.next("response.done")  # the interruption's own answer
            assert first["response"]["status"] == "cancelled"
            assert first["response"]["status_details"]["reason"] == "turn_detected"
            after = await events.next("response.done")
            assert after["response"]["status"] == "completed"
            await asyncio.sleep(0.5)  # the truncate / retrieve the barge-in made are answered
            reader.cancel()

    assert events.invalid == []
    assert events.errors() == []
    assert failures == []
    assert logged.messages() == []
    assert icot_server.logged_errors() == []
