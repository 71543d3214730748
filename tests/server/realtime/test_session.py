"""/v1/realtime over a real uvicorn on loopback with a raw `websockets` client.

The runtime here is ScriptedRuntime (tests/server/scripted_runtime.py), a test double of the
runtime interface with real espeak-ng reply audio: these tests check the server's protocol and
session behaviour. Recall and real latency are checked against real bundles elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
from realtime_client import Client, decode_deltas, pcm_b64, types
from scripted_runtime import SCRIPTED_TRANSCRIPT
from websockets.exceptions import ConnectionClosed, InvalidStatus

PAD_S = 0.8
QUESTION = "what is two plus three"

BETA_RESPONSE = [
    "response.created", "response.output_item.added", "conversation.item.created",
    "response.content_part.added", "response.audio_transcript.delta", "response.audio.delta",
    "response.audio.done", "response.audio_transcript.done", "response.content_part.done",
    "response.output_item.done", "response.done"]
GA_RESPONSE = [
    "response.created", "response.output_item.added", "conversation.item.added",
    "response.content_part.added", "response.output_audio_transcript.delta",
    "response.output_audio.delta", "response.output_audio.done",
    "response.output_audio_transcript.done", "response.content_part.done",
    "response.output_item.done", "conversation.item.done", "response.done"]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16_000), dtype=np.float32)


async def open_session(live, *, dialect: str = "ga", manual: bool = False, **kwargs) -> Client:
    client = await Client.open(f"{live.ws_url}?dialect={dialect}", **kwargs)
    created = await client.recv()
    assert created["type"] == "session.created"
    if manual:
        await client.send(type="session.update", session={"turn_detection": None})
        assert (await client.recv())["type"] == "session.updated"
    return client


async def manual_turn(client: Client, audio: np.ndarray) -> list[dict]:
    await client.append(audio)
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")
    return await client.until("response.done")


# ---------------------------------------------------------------- dialects and event order


@pytest.mark.parametrize("dialect, expected", [("beta", BETA_RESPONSE), ("ga", GA_RESPONSE)])
async def test_manual_turn_event_order_in_both_dialects(serve, scripted, speak, dialect,
                                                        expected):
    runtime = scripted()
    live = serve(runtime)
    client = await open_session(live, dialect=dialect, manual=True)
    question = speak(QUESTION)
    events = await manual_turn(client, question)
    committed = ["input_audio_buffer.committed", "conversation.item.created"]
    if dialect == "ga":
        committed = ["input_audio_buffer.committed", "conversation.item.added",
                     "conversation.item.done"]
    assert types(events) == committed + expected
    done = events[-1]["response"]
    assert done["status"] == "completed"
    assert done["output"][0]["content"][0]["transcript"] == runtime.reply
    assert done["usage"]["output_tokens"] > 0
    # The runtime heard the question at 16 kHz (24 kHz wire audio resampled back).
    assert runtime.record.inputs[0].size == pytest.approx(question.size, abs=16)
    audio_kind = "response.audio.delta" if dialect == "beta" else "response.output_audio.delta"
    reply = decode_deltas(events, audio_kind)
    assert reply.size == pytest.approx(runtime.reply_audio.size * 1.5, abs=48)  # 24 kHz out
    await client.close()


async def test_the_openai_beta_header_selects_beta_names(serve, scripted, speak):
    live = serve(scripted())
    client = await Client.open(live.ws_url, additional_headers={"OpenAI-Beta": "realtime=v1"})
    created = await client.recv()
    assert "input_audio_format" in created["session"]  # beta's flat session
    await client.send(type="session.update", session={"turn_detection": None})
    await client.recv()
    events = await manual_turn(client, speak("hello"))
    assert "response.audio.delta" in types(events)
    await client.close()


async def test_a_ga_shaped_session_update_switches_to_ga_names(serve, scripted, speak):
    live = serve(scripted())
    client = await open_session(live, dialect="beta")
    await client.send(type="session.update", session={
        "type": "realtime", "audio": {"input": {"turn_detection": None}}})
    updated = await client.recv()
    assert updated["session"]["type"] == "realtime"
    events = await manual_turn(client, speak("hello"))
    assert "response.output_audio.delta" in types(events)
    await client.close()


async def test_audio_deltas_stream_before_the_reply_finishes(serve, scripted, speak):
    runtime = scripted(chunk_delay_s=0.05)
    live = serve(runtime)
    client = await open_session(live, manual=True)
    events = await manual_turn(client, speak(QUESTION))
    audio = [e for e in events if e["type"] == "response.output_audio.delta"]
    chunks = -(-runtime.reply_audio.size // 1600)
    assert len(audio) >= chunks - 1
    # The first chunk left the server about (chunks - 1) * delay before the reply was done.
    lead_s = events[-1]["_t"] - audio[0]["_t"]
    assert lead_s > 0.6 * (chunks - 1) * runtime.chunk_delay_s
    await client.close()


async def test_sixteen_khz_input_reaches_the_runtime_unresampled(serve, scripted, speak):
    runtime = scripted()
    live = serve(runtime)
    client = await open_session(live, manual=True)
    await client.send(type="session.update", session={
        "type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}})
    updated = await client.recv()
    assert updated["session"]["audio"]["input"]["format"]["rate"] == 16000
    question = speak(QUESTION)
    await client.append(question, rate=16_000)
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")
    await client.until("response.done")
    heard = runtime.record.inputs[0]
    assert heard.size == question.size
    assert np.max(np.abs(heard - question)) < 1 / 16384  # only PCM16 rounding
    await client.close()


async def test_input_transcription_events_for_a_t_t_a_only(serve, scripted, speak):
    for chain, expect_transcript in (("A-T-T-A", True), ("A-T-A", False)):
        live = serve(scripted(chain=chain))
        client = await open_session(live, manual=True)
        events = await manual_turn(client, speak(QUESTION))
        user_item = events[0]["item_id"]
        kinds = [e["type"] for e in events]
        completed = [e for e in events if e["type"].endswith("input_audio_transcription.completed")]
        if not expect_transcript:
            assert completed == [] and not any("input_audio_transcription" in k for k in kinds)
            continue
        assert len(completed) == 1
        assert completed[0]["item_id"] == user_item
        assert completed[0]["transcript"].strip() == SCRIPTED_TRANSCRIPT
        assert kinds.index(completed[0]["type"]) < kinds.index(
            "response.output_audio_transcript.delta")
        assert "conversation.item.input_audio_transcription.delta" in kinds
        await client.close()


async def test_chain_override_in_session_update(serve, scripted, speak):
    runtime = scripted(chain="A-T-A", chains=("A-T-A", "A-T-T-A"))
    live = serve(runtime)
    client = await open_session(live, manual=True)
    await client.send(type="session.update", session={"chain": "A-T-T-A"})
    assert (await client.recv())["session"]["chain"] == "A-T-T-A"
    events = await manual_turn(client, speak(QUESTION))
    assert runtime.record.chains == ["A-T-T-A"]
    assert any(e["type"].endswith("input_audio_transcription.completed") for e in events)
    await client.send(type="session.update", session={"chain": "A-A"})
    error = await client.recv()
    assert (error["type"], error["error"]["code"]) == ("error", "unsupported_value")
    await client.close()


# ---------------------------------------------------------------- server VAD and barge-in


async def test_server_vad_detects_the_turn_and_answers(serve, scripted, speak, voiced_span):
    runtime = scripted()
    live = serve(runtime)
    client = await open_session(live)  # server_vad is the default
    question = speak(QUESTION)
    first, last = voiced_span(question)
    await client.append(np.concatenate([silence(PAD_S), question, silence(1.0)]))
    events = await client.until("response.done")
    kinds = types(events)
    assert kinds[:5] == ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                         "input_audio_buffer.committed", "conversation.item.added",
                         "conversation.item.done"]
    assert kinds[5:] == GA_RESPONSE
    started, stopped = events[0], events[1]
    assert started["audio_start_ms"] / 1000 == pytest.approx(PAD_S + first, abs=0.15)
    assert stopped["audio_end_ms"] / 1000 == pytest.approx(PAD_S + last, abs=0.15)
    assert started["item_id"] == stopped["item_id"] == events[2]["item_id"]
    # The turn handed to the model: prefix padding (300 ms) + speech up to the detected end.
    heard_s = runtime.record.inputs[0].size / 16_000
    expected_s = (stopped["audio_end_ms"] - started["audio_start_ms"]) / 1000 + 0.3
    assert heard_s == pytest.approx(expected_s, abs=0.05)
    await client.close()


async def test_turn_detection_settings_are_applied(serve, scripted, speak):
    live = serve(scripted())
    client = await open_session(live, dialect="beta")
    await client.send(type="session.update", session={"turn_detection": {
        "type": "server_vad", "silence_duration_ms": 1200, "create_response": False}})
    session = (await client.recv())["session"]
    assert session["turn_detection"]["silence_duration_ms"] == 1200
    assert session["turn_detection"]["threshold"] == 0.5  # unset fields keep their values
    await client.append(np.concatenate([silence(0.5), speak("hello"), silence(0.8)]))
    await client.send(type="input_audio_buffer.clear")
    events = await client.until("input_audio_buffer.cleared")
    assert "input_audio_buffer.speech_stopped" not in types(events)  # 0.8 s < 1.2 s
    await client.append(silence(0.6))
    events = await client.until("conversation.item.created")
    assert types(events)[0] == "input_audio_buffer.speech_stopped"
    with pytest.raises(TimeoutError):  # create_response false: no response follows
        await client.until("response.created", timeout_s=0.5)
    await client.close()


async def test_barge_in_cancels_the_response_and_truncate_trims_it(serve, scripted, speak):
    runtime = scripted(chunk_delay_s=0.1)  # a reply that takes seconds to stream
    live = serve(runtime)
    client = await open_session(live)
    await client.append(np.concatenate([silence(0.5), speak(QUESTION), silence(0.8)]))
    await client.until("response.output_audio.delta")
    reply_item = next(e for e in client.log if e["type"] == "response.output_item.added")
    await client.until("response.output_audio.delta")
    await client.append(np.concatenate([speak("good night"), silence(0.2)]))  # user speaks
    events = await client.until("response.done")
    kinds = types(events)
    assert "input_audio_buffer.speech_started" in kinds
    done = events[-1]["response"]
    assert (done["status"], done["status_details"]["reason"]) == ("cancelled", "turn_detected")
    assert done["output"][0]["status"] == "incomplete"
    live.wait(lambda: runtime.record.cancelled == 1 and runtime.active_slots == 0)
    played_ms = 150
    await client.send(type="conversation.item.truncate", item_id=reply_item["item"]["id"],
                      content_index=0, audio_end_ms=played_ms)
    truncated = await client.until("conversation.item.truncated")
    assert truncated[-1]["audio_end_ms"] == played_ms
    assert runtime.record.truncations == [played_ms]
    await client.append(silence(0.8))  # the interrupting turn ends and is answered
    events = await client.until("response.done")
    assert events[-1]["response"]["status"] == "completed"
    assert len(runtime.record.inputs) == 2
    await client.close()


async def test_cancel_and_create_while_active(serve, scripted, speak):
    runtime = scripted(chunk_delay_s=0.1)
    live = serve(runtime)
    client = await open_session(live, manual=True)
    await client.append(speak(QUESTION))
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")
    await client.until("response.output_audio.delta")
    await client.send(type="response.create")
    error = (await client.until("error"))[-1]
    assert error["error"]["code"] == "conversation_already_has_active_response"
    await client.send(type="response.cancel")
    done = (await client.until("response.done"))[-1]["response"]
    assert (done["status"], done["status_details"]["reason"]) == ("cancelled", "client_cancelled")
    await client.send(type="response.cancel", event_id="c2")
    error = (await client.until("error"))[-1]["error"]
    assert (error["code"], error["event_id"]) == ("response_cancel_not_active", "c2")
    await client.close()


# ---------------------------------------------------------------- items


async def test_item_create_delete_and_answer(serve, scripted, speak):
    runtime = scripted()
    live = serve(runtime)
    client = await open_session(live, manual=True)
    audio = pcm_b64(speak("hello"))
    await client.send(type="conversation.item.create", item={
        "id": "mine_1", "type": "message", "role": "user",
        "content": [{"type": "input_audio", "audio": audio}]})
    added = await client.until("conversation.item.done")
    assert added[0]["item"]["id"] == "mine_1"
    await client.send(type="conversation.item.delete", item_id="mine_1")
    assert (await client.until("conversation.item.deleted"))[-1]["item_id"] == "mine_1"
    await client.send(type="conversation.item.create", item={
        "type": "message", "role": "user", "content": [{"type": "input_audio", "audio": audio}]})
    user_item = (await client.until("conversation.item.done"))[-1]["item"]["id"]
    await client.send(type="response.create")
    await client.until("response.done")
    assert len(runtime.record.inputs) == 1
    await client.send(type="conversation.item.delete", item_id=user_item)
    assert (await client.until("error"))[-1]["error"]["code"] == "item_not_editable"
    await client.close()


# ---------------------------------------------------------------- bad messages


def _append(audio: str) -> str:
    return json.dumps({"type": "input_audio_buffer.append", "audio": audio})


BAD = [
    ("bad json", "{oops", "invalid_json"),
    ("binary frame", b"\x00\x01", "invalid_json"),
    ("unknown type", json.dumps({"type": "response.dance"}), "unknown_event_type"),
    ("missing type", json.dumps({"audio": ""}), "missing_field"),
    ("missing field", json.dumps({"type": "input_audio_buffer.append"}), "missing_field"),
    ("wrong field", json.dumps({"type": "conversation.item.truncate", "item_id": "x",
                                "content_index": "zero", "audio_end_ms": 1}), "invalid_value"),
    ("bad base64", _append("!!!!"), "invalid_base64"),
    ("odd-length pcm", _append(base64.b64encode(b"\x00\x00\x00").decode()), "invalid_audio"),
    ("over-size", _append("A" * 70_000), "message_too_large"),
    ("unsupported format", json.dumps({"type": "session.update", "session": {
        "input_audio_format": "g722"}}), "unsupported_audio_format"),
    ("unsupported rate", json.dumps({"type": "session.update", "session": {"type": "realtime",
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 8000}}}}}),
     "unsupported_audio_format"),
    ("empty commit", json.dumps({"type": "input_audio_buffer.commit"}),
     "input_audio_buffer_commit_empty"),
    ("cancel nothing", json.dumps({"type": "response.cancel"}), "response_cancel_not_active"),
    ("truncate unknown item", json.dumps({"type": "conversation.item.truncate",
                                          "item_id": "item_nope", "content_index": 0,
                                          "audio_end_ms": 0}), "item_not_found"),
    ("delete unknown item", json.dumps({"type": "conversation.item.delete",
                                        "item_id": "item_nope"}), "item_not_found"),
    ("assistant item", json.dumps({"type": "conversation.item.create", "item": {
        "type": "message", "role": "assistant", "content": [{"type": "output_text",
                                                              "text": "hi"}]}}),
     "unsupported_value"),
]


async def test_every_bad_message_gets_an_error_and_the_session_goes_on(serve, scripted, speak):
    runtime = scripted()
    live = serve(runtime, max_message_bytes=64 * 1024)
    client = await open_session(live, manual=True)
    for name, message, code in BAD:
        await client.send_raw(message)
        event = await client.recv()
        assert (event["type"], event["error"]["code"]) == ("error", code), name
        assert event["error"]["message"], name
    events = await manual_turn(client, speak("hello"))  # still fully working
    assert events[-1]["response"]["status"] == "completed"
    metrics = live.state.metrics.render()[0].decode()
    assert 'icot_errors_total{code="invalid_base64"} 1.0' in metrics
    await client.close()


async def test_a_server_fault_is_an_error_event_and_the_session_goes_on(serve, scripted, speak):
    live = serve(scripted(fail_truncate=True))
    client = await open_session(live, manual=True)
    events = await manual_turn(client, speak("hello"))
    reply = events[-1]["response"]["output"][0]["id"]
    await client.send(type="conversation.item.truncate", item_id=reply, content_index=0,
                      audio_end_ms=10, event_id="t1")
    error = (await client.recv())["error"]
    assert (error["type"], error["code"], error["event_id"]) == ("server_error", "server_error",
                                                                 "t1")
    again = await manual_turn(client, speak("hello"))
    assert again[-1]["response"]["status"] == "completed"
    await client.close()


async def test_turn_and_session_audio_limits(serve, scripted, speak):
    live = serve(scripted(), max_turn_audio_s=1.0, max_session_audio_s=2.0)
    client = await open_session(live, manual=True)
    await client.append(silence(0.9), chunk_ms=900)
    await client.append(silence(0.2), chunk_ms=200)
    assert (await client.recv())["error"]["code"] == "turn_audio_too_long"
    await client.send(type="input_audio_buffer.clear")
    await client.until("input_audio_buffer.cleared")
    await client.append(silence(0.9), chunk_ms=900)
    await client.send(type="input_audio_buffer.clear")
    await client.until("input_audio_buffer.cleared")
    await client.append(silence(0.5), chunk_ms=500)  # 2.3 s in all: past the session limit
    assert (await client.recv())["error"]["code"] == "session_audio_limit_exceeded"
    with pytest.raises(ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd.code == 1008


async def test_idle_sessions_are_closed(serve, scripted):
    live = serve(scripted(), idle_timeout_s=0.3)
    client = await open_session(live)
    assert (await client.recv(timeout_s=3))["error"]["code"] == "idle_timeout"
    with pytest.raises(ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd.code == 1000


# ---------------------------------------------------------------- admission, disconnect, auth


async def test_admission_control_refuses_slots_plus_one(serve, scripted):
    runtime = scripted(max_slots=2)
    live = serve(runtime)
    first, second = await open_session(live), await open_session(live)
    third = await Client.open(live.ws_url)
    with pytest.raises(ConnectionClosed) as closed:
        await third.recv()
    assert closed.value.rcvd.code == 1013
    await first.close()
    live.wait(lambda: live.state.slots.in_use == 1)
    fourth = await open_session(live)  # a freed slot admits again
    await fourth.close()
    await second.close()


async def test_disconnect_mid_reply_cancels_generation_and_frees_the_slot(serve, scripted,
                                                                          speak):
    runtime = scripted(chunk_delay_s=0.1, max_slots=1)
    live = serve(runtime)
    client = await open_session(live, manual=True)
    await client.append(speak(QUESTION))
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")
    await client.until("response.output_audio.delta")
    await client.ws.close()
    live.wait(lambda: runtime.record.cancelled == 1, timeout_s=1.0)
    live.wait(lambda: runtime.active_slots == 0 and live.state.slots.in_use == 0, timeout_s=1.0)
    again = await open_session(live)  # the one slot is free again
    await again.close()


async def test_sessions_wait_for_warmup(serve, scripted):
    live = serve(scripted(warmup_s=1.0), ready=False)
    client = await Client.open(live.ws_url)
    with pytest.raises(ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd.code == 1013
    live.wait(lambda: live.state.ready)
    client = await open_session(live)
    await client.close()


@pytest.mark.parametrize("how", ["bearer", "subprotocol"])
async def test_api_key_on(serve, scripted, how):
    live = serve(scripted(), api_key="s3cret")
    with pytest.raises(InvalidStatus) as refused:
        await Client.open(live.ws_url)
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        await Client.open(live.ws_url, additional_headers={"Authorization": "Bearer wrong"})
    if how == "bearer":
        client = await open_session(live, additional_headers={"Authorization": "Bearer s3cret"})
    else:
        client = await open_session(
            live, subprotocols=["realtime", "openai-insecure-api-key.s3cret"])
        assert client.ws.subprotocol == "realtime"
    await client.close()


async def test_api_key_off_admits_anyone(serve, scripted):
    live = serve(scripted())
    client = await open_session(live)
    await client.close()


async def test_concurrent_sessions_do_not_mix(serve, scripted, speak):
    runtime = scripted(max_slots=2, chunk_delay_s=0.01)
    live = serve(runtime)
    a, b = await open_session(live, manual=True), await open_session(live, manual=True)
    done = await asyncio.gather(manual_turn(a, speak("hello")), manual_turn(b, speak(QUESTION)))
    ids = [{e.get("response_id") for e in events if "response_id" in e} for events in done]
    assert len(ids[0]) == len(ids[1]) == 1 and ids[0] != ids[1]
    await a.close()
    await b.close()


async def test_a_drain_timeout_cancels_what_is_left_and_closes_with_1012(serve, scripted, speak):
    runtime = scripted(chunk_delay_s=0.2)  # about 3.5 s of streaming
    live = serve(runtime)
    client = await open_session(live, manual=True)
    await client.append(speak(QUESTION))
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")
    await client.until("response.output_audio.delta")
    drained = asyncio.wrap_future(
        asyncio.run_coroutine_threadsafe(live.state.drain(0.3), live.server.loop))
    done = (await client.until("response.done"))[-1]["response"]
    # a reason outside OpenAI's list travels as the error code (issue 16)
    assert (done["status"], done["status_details"]["error"]["code"]) == (
        "cancelled", "server_shutting_down")
    with pytest.raises(ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd.code == 1012
    await drained
    assert runtime.record.cancelled == 1 and runtime.active_slots == 0
