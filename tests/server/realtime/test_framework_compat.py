"""What the voice-agent frameworks need from /v1/realtime (issue 16), over a real uvicorn with the
ScriptedRuntime test double: mapped and echoed session fields, usage and status reasons in
OpenAI's shapes (checked with the openai SDK's own types), metadata, typed and system items,
replies from the conversation alone, text-only replies, retrieval, deleting and truncating
replies, G.711, large appends, input transcription off the reply's path, and the listed bugs."""

from __future__ import annotations

import asyncio
import base64
import json
import warnings

import numpy as np
import pytest
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter
from realtime_client import Client, pcm_b64

from model.audio import resample

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # CPython's G.711, the reference the server's codec matches

GA_EVENTS = TypeAdapter(RealtimeServerEvent)
QUESTION = "what is two plus three"


async def session(live, **update) -> Client:
    client = await Client.open(f"{live.ws_url}?dialect=ga")
    assert (await client.recv())["type"] == "session.created"
    if update:
        await client.send(type="session.update", session={"type": "realtime", **update})
        await client.until("session.updated")
    return client


def strict(events: list[dict]) -> None:
    for event in events:
        clean = {k: v for k, v in event.items() if k != "_t"}
        assert GA_EVENTS.validate_python(clean).type == event["type"]


MANUAL = {"audio": {"input": {"turn_detection": None}}}


async def test_semantic_vad_maps_onto_server_vad_and_other_fields_are_echoed(serve, scripted):
    live = serve(scripted())
    client = await session(live)
    await client.send(type="session.update", session={
        "type": "realtime", "instructions": "be brief", "tools": [], "tool_choice": "auto",
        "max_output_tokens": "inf", "output_modalities": ["audio"],
        "audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "low"},
                            "transcription": {"model": "gpt-4o-mini-transcribe"}},
                  "output": {"voice": "marin"}}})
    updated = (await client.until("session.updated"))[-1]
    strict([updated])
    s = updated["session"]
    assert s["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert s["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 1000
    assert s["audio"]["input"]["transcription"]["model"] == "gpt-4o-mini-transcribe"
    assert (s["instructions"], s["audio"]["output"]["voice"], s["max_output_tokens"]) == (
        "be brief", "marin", "inf")


async def test_usage_reasons_and_metadata_in_openai_shapes(serve, scripted, speak):
    runtime = scripted(chunk_delay_s=0.1)
    live = serve(runtime)
    client = await session(live, **MANUAL)
    await client.append(speak(QUESTION))
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create", response={"metadata": {"client_event_id": "r1"}})
    created = (await client.until("response.created"))[-1]
    await client.until("response.output_audio.delta")
    await client.send(type="response.cancel")
    events = await client.until("response.done")
    strict([created, *events])
    done = events[-1]["response"]
    assert created["response"]["metadata"] == done["metadata"] == {"client_event_id": "r1"}
    assert (done["status"], done["status_details"]["reason"]) == ("cancelled",
                                                                  "client_cancelled")
    usage = done["usage"]  # a cancelled reply still reports what it used
    assert usage["output_tokens"] > 0 and usage["output_token_details"]["audio_tokens"] > 0
    assert usage["input_token_details"]["audio_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


async def test_cancel_with_nothing_active_speaks_openais_words(serve, scripted):
    client = await session(serve(scripted()))
    await client.send(type="response.cancel")
    error = (await client.until(lambda e: e["type"] == "error"))[-1]["error"]
    assert error["code"] == "response_cancel_not_active"
    assert error["message"].startswith("Cancellation failed")


@pytest.mark.parametrize("role", ["user", "system"])
async def test_typed_words_are_answered_with_the_text_in_chain(serve, scripted, role):
    runtime = scripted()
    client = await session(serve(runtime), **MANUAL)
    await client.send(type="conversation.item.create", previous_item_id="root", item={
        "type": "message", "role": role,
        "content": [{"type": "input_text", "text": "what is four plus one"}]})
    added = (await client.until("conversation.item.done"))[-1]
    await client.send(type="response.create")
    events = await client.until("response.done")
    strict([added, *events])
    assert runtime.record.typed == ["what is four plus one"]
    assert events[-1]["response"]["status"] == "completed"


async def test_a_reply_before_any_audio_answers_from_the_conversation(serve, scripted):
    runtime = scripted()
    client = await session(serve(runtime))
    await client.send(type="response.create")
    events = await client.until("response.done")
    assert runtime.record.typed == [""] and events[-1]["response"]["status"] == "completed"
    assert any(e["type"] == "response.output_audio.delta" for e in events)


async def test_text_only_replies_come_as_output_text(serve, scripted):
    client = await session(serve(scripted()), output_modalities=["text"])
    await client.send(type="response.create")
    events = await client.until("response.done")
    strict(events)
    kinds = {e["type"] for e in events}
    assert "response.output_text.delta" in kinds and "response.output_text.done" in kinds
    assert not any("audio" in kind for kind in kinds)
    assert events[-1]["response"]["output"][0]["content"][0]["type"] == "output_text"


async def test_retrieve_delete_and_truncate_replies(serve, scripted, speak):
    runtime = scripted()
    client = await session(serve(runtime), **MANUAL)
    await client.append(speak(QUESTION))
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")
    first = (await client.until("response.done"))[-1]["response"]["output"][0]["id"]
    await client.send(type="conversation.item.retrieve", item_id=first)
    retrieved = (await client.until("conversation.item.retrieved"))[-1]
    strict([retrieved])
    assert retrieved["item"]["role"] == "assistant"
    await client.send(type="conversation.item.delete", item_id=first)
    await client.until("conversation.item.deleted")
    assert runtime.record.forgotten == [0]  # the reply left the model's history


async def test_truncating_a_reply_after_vad_started_the_next_response(serve, scripted, speak):
    # was refused (item_not_editable): only the newest reply could be truncated
    runtime = scripted(chunk_delay_s=0.1)
    client = await session(serve(runtime), **MANUAL)
    await client.append(speak(QUESTION))
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")
    first = (await client.until("response.done"))[-1]["response"]["output"][0]["id"]
    await client.append(speak("hello"))
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")
    await client.until("response.created")
    await client.send(type="conversation.item.truncate", item_id=first, content_index=0,
                      audio_end_ms=100)
    truncated = (await client.until("conversation.item.truncated"))[-1]
    assert truncated["item_id"] == first and runtime.record.truncations == [100]


async def test_manual_commit_under_server_vad_commits_everything_appended(serve, scripted):
    # was: only the 300 ms prefix padding (audio VAD heard no speech in was dropped)
    runtime = scripted()
    client = await session(serve(runtime))  # server_vad, the default
    await client.append(np.full(2 * 16_000, 0.001, dtype=np.float32))  # 2 s, no speech
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")
    await client.until("response.done")
    assert runtime.record.inputs[-1].size >= 1.9 * 16_000


@pytest.mark.parametrize("ga_type, beta_name, lin2g711", [
    ("audio/pcmu", "g711_ulaw", audioop.lin2ulaw), ("audio/pcma", "g711_alaw", audioop.lin2alaw)])
async def test_g711_in_and_out_at_8_khz(serve, scripted, speak, ga_type, beta_name, lin2g711):
    runtime = scripted()
    client = await session(serve(runtime), audio={
        "input": {"format": {"type": ga_type}, "turn_detection": None},
        "output": {"format": {"type": ga_type}}})
    question = speak(QUESTION)
    pcm8k = (np.clip(resample(question, 16_000, 8_000), -1, 1) * 32767).astype("<i2")
    g711 = lin2g711(pcm8k.tobytes(), 2)
    for start in range(0, len(g711), 801):  # odd sizes: G.711 has one byte a sample
        await client.send(type="input_audio_buffer.append",
                          audio=base64.b64encode(g711[start:start + 801]).decode())
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")
    events = await client.until("response.done")
    heard = runtime.record.inputs[-1]
    assert heard.size == pytest.approx(question.size, rel=0.01)
    out = b"".join(base64.b64decode(e["delta"]) for e in events
                   if e["type"] == "response.output_audio.delta")
    # one byte per 8 kHz sample of the reply
    assert len(out) == pytest.approx(runtime.reply_audio.size / 2, rel=0.01)
    assert events[-1]["response"]["audio"]["output"]["format"] == {"type": ga_type}
    beta = await Client.open(f"{serve(scripted()).ws_url}?dialect=beta")
    await beta.recv()
    await beta.send(type="session.update", session={"input_audio_format": beta_name,
                                                    "output_audio_format": beta_name})
    updated = (await beta.until("session.updated"))[-1]["session"]
    assert updated["input_audio_format"] == updated["output_audio_format"] == beta_name


async def test_odd_pcm16_is_refused_by_the_session(serve, scripted):
    client = await session(serve(scripted()))
    await client.send(type="input_audio_buffer.append",
                      audio=base64.b64encode(b"\x00" * 3).decode())
    error = (await client.until(lambda e: e["type"] == "error"))[-1]["error"]
    assert (error["code"], error["param"]) == ("invalid_audio", "audio")


async def test_an_append_of_many_mebibytes_is_taken_while_turn_limits_hold(serve, scripted):
    live = serve(scripted(), max_turn_audio_s=150.0)
    client = await session(live, **MANUAL)
    big = pcm_b64(np.zeros(140 * 16_000, np.float32))  # 140 s at 24 kHz: 6.7 MB, 9 MB base64
    await client.ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": big}))
    await client.send(type="input_audio_buffer.commit")
    committed = (await client.until("input_audio_buffer.committed"))[-1]
    assert committed["item_id"]
    await client.ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": big}))
    await client.ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": big}))
    error = (await client.until(lambda e: e["type"] == "error"))[-1]["error"]
    assert error["code"] == "turn_audio_too_long"


async def test_input_transcription_comes_after_the_replys_first_audio(serve, scripted, speak):
    runtime = scripted(first_delay_s=0.3)
    client = await session(serve(runtime), audio={"input": {
        "transcription": {"model": "whisper-1"}, "turn_detection": None}})
    await client.append(speak(QUESTION))
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")
    events = await client.until("conversation.item.input_audio_transcription.completed", 30)
    strict(events)
    completed = events[-1]
    assert "plus" in completed["transcript"].lower()
    kinds = [e["type"] for e in events]
    assert kinds.index("response.output_audio.delta") < kinds.index(
        "conversation.item.input_audio_transcription.delta")


async def test_a_failing_asr_answers_transcription_failed(serve, scripted, speak, tmp_path):
    live = serve(scripted(), transcription_model=str(tmp_path / "no-such-model"))
    client = await session(live, audio={"input": {"transcription": {"model": "whisper-1"},
                                                  "turn_detection": None}})
    await client.append(speak("hello"))
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")
    failed = (await client.until("conversation.item.input_audio_transcription.failed", 30))[-1]
    strict([failed])
    assert failed["error"]["code"] == "transcription_failed"
    await asyncio.sleep(0)
