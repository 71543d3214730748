"""LiveKit Agents' OpenAI `RealtimeModel` holds a conversation with `icot serve`.

The snippet of docs/integrations.md: `livekit.plugins.openai.realtime.RealtimeModel` with
`base_url` pointed at the server; its `RealtimeSession` is driven directly (no room, no media
transport): `generate_reply` for a greeting and for typed words added with `update_chat_ctx`,
`push_audio` for speech, and the `truncate` an `AgentSession` sends after a barge-in. The model's
defaults stay as they are (`semantic_vad`, input transcription with an OpenAI model name). Every
raw server event is checked against the openai SDK's types.
"""

from __future__ import annotations

import asyncio

import pytest
from framework_server import API_KEY, WIRE_RATE_HZ, silence_pcm
from livekit import rtc
from livekit.plugins.openai.realtime import RealtimeModel
from session_log import ErrorRecords, ServerEvents, audio_bytes, reply_transcript

pytestmark = pytest.mark.frameworks
FRAME_SAMPLES = 480  # 20 ms frames, as a room track delivers them
BARGE_IN_ATTEMPTS = 3
LOGGERS = ("livekit.agents", "livekit.plugins.openai", "asyncio")


def realtime_model(port: int) -> RealtimeModel:
    """The integration snippet: OpenAI's realtime model, served by icot."""
    return RealtimeModel(base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY)


def push_speech(session, pcm: bytes) -> None:
    step = 2 * FRAME_SAMPLES
    for start in range(0, len(pcm) - step + 1, step):
        session.push_audio(rtc.AudioFrame(pcm[start:start + step], WIRE_RATE_HZ, 1,
                                          FRAME_SAMPLES))


async def generate(session) -> None:
    """generate_reply, as an agent's `session.generate_reply()` calls it; drains the streams."""
    generation = await asyncio.wait_for(session.generate_reply(), 15)
    async for message in generation.message_stream:
        async for _ in message.audio_stream:
            pass


async def test_livekit_greets_answers_speech_and_text_and_is_interrupted(icot_server,
                                                                          speech_pcm):
    events = ServerEvents("ga")
    failures: list[object] = []
    with ErrorRecords(*LOGGERS) as logged:
        model = realtime_model(icot_server.port)
        session = model.session()
        session.on("openai_server_event_received", events.add)
        session.on("error", failures.append)
        try:
            await events.next("session.updated")

            # A greeting before any audio: generate_reply answers from the conversation.
            await generate(session)
            greeting = await events.next("response.done")
            assert greeting["response"]["metadata"]["client_event_id"].startswith(
                "response_create_")
            assert greeting["response"]["status"] == "completed"

            # A spoken question; server VAD ends the turn and answers.
            push_speech(session, speech_pcm("what is two plus three") + silence_pcm(1.0))
            spoken = await events.until_done()
            assert spoken[-1]["response"]["status"] == "completed"
            assert audio_bytes(spoken) > 0 and reply_transcript(spoken[-1])
            heard = await events.next("conversation.item.input_audio_transcription.completed")
            assert "plus" in heard["transcript"].lower()

            # Typed words: the agent adds a user message to its chat context and asks.
            chat = session.chat_ctx.copy()
            chat.add_message(role="user", content="what is four plus one")
            await session.update_chat_ctx(chat)
            await generate(session)
            typed = await events.next("response.done")
            assert typed["response"]["status"] == "completed"

            # Barge-in: speech over the reply cancels it; the agent truncates what was played.
            for _ in range(BARGE_IN_ATTEMPTS):
                push_speech(session, speech_pcm("what is three plus three") + silence_pcm(1.0))
                created = await events.next("response.created")
                push_speech(session, speech_pcm("count from one to three") + silence_pcm(1.0))
                first = await events.next("response.done")
                if first["response"]["status"] == "cancelled":
                    break
                await events.next("response.done")
            assert first["response"]["status_details"]["reason"] == "turn_detected"
            # as an AgentSession does: truncate to what was played (nothing: delete the reply)
            reply = first["response"]["output"][0]["id"]
            played_ms = 1000 * audio_bytes(
                [e for e in events.events if e.get("item_id") == reply]) // (2 * WIRE_RATE_HZ)
            session.truncate(message_id=reply, modalities=["audio"], audio_end_ms=played_ms)
            edited = await events.next(lambda e: e.get("type") in (
                "conversation.item.truncated", "conversation.item.deleted"))
            assert edited["item_id"] == reply
            after = await events.next("response.done")
            assert after["response"]["status"] == "completed"
            assert created["response"]["id"] == first["response"]["id"]
        finally:
            await session.aclose()
            await model.aclose()

    assert events.invalid == []
    assert events.errors() == []
    assert failures == []
    assert logged.messages() == []
    assert icot_server.logged_errors() == []
