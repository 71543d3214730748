"""End to end with the real runtime: the memorized tiny bundles (tests/memorized.py) behind a real
uvicorn, driven over the wire: streaming, A-T-T-A transcripts, per-session memory, barge-in,
truncation, disconnects, admission and REST.

The bundles answer `memorized.DIALOGUES` greedily for the exact audio `memorized.speak` makes. A
client that sends those samples as 16 kHz PCM16 as one turn (manual turns: append, commit,
`response.create`; or a `conversation.item.create`) hands the model exactly the speech units it
memorized, so every reply over the wire is known word for word and unit for unit.

A memorized reply takes 0.05-0.2 s on the dev CPU and may be over 30 ms after its first audio
delta, sooner than a client reacts, so interrupting "after the first audio" would be a race:
- barge-in: the user's speech follows `response.create` at once. The server handles client
  messages in order, so it hears the speech after the response started and long before the
  reply could end (the same cancellation as later in the reply);
- disconnect: a close ends the session at its next send, with messages still queued, so
  the client closes when the first reply text arrives (the engine is generating) and tries again,
  up to `DISCONNECT_ATTEMPTS` times, if the reply still ended first (0 of 120 tries on the dev
  CPU, also beside two CPU-bound processes). A server that never cancels fails every attempt.
"""

from __future__ import annotations

import base64
import struct

import httpx
import memorized
import numpy as np
import pytest
from realtime_client import Client, decode_deltas, types
from websockets.exceptions import ConnectionClosed

from model.audio import float_to_pcm16, read_audio, wav_bytes
from model.runtime import Runtime, RuntimeConfig

INPUT_RATE_HZ = 16_000  # what the client sends: memorized.speak's samples, untouched
WIRE_RATE_HZ = 24_000  # reply audio over the wire (the default output format)
SAMPLES_TOLERANCE = 0.01  # resampling may hold back or pad a few samples
INTERRUPTION = "good night"
DISCONNECT_ATTEMPTS = 3
BETA = {"OpenAI-Beta": "realtime=v1"}
RESPONSE_EVENTS = [
    "response.created", "response.output_item.added", "conversation.item.created",
    "response.content_part.added", "response.audio_transcript.delta", "response.audio.delta",
    "response.audio.done", "response.audio_transcript.done", "response.content_part.done",
    "response.output_item.done", "response.done"]
(NAME, NAME_REPLY), (RECALL, RECALL_REPLY) = memorized.DIALOGUES[0]
((QUESTION, ANSWER),) = memorized.DIALOGUES[1]


def real_runtime(bundle, slots: int = 2) -> Runtime:
    return Runtime.load(bundle, RuntimeConfig(max_slots=slots))


def wire_samples(runtime: Runtime, reply: str) -> int:
    """Samples of `reply`'s memorized speech at the wire rate: units × samples per frame at the
    codec rate, resampled to 24 kHz."""
    units = runtime.codec.encode(memorized.speak(reply, memorized.ASSISTANT_VOICE)).size
    return units * runtime.codec.samples_per_frame * WIRE_RATE_HZ // runtime.sample_rate


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * INPUT_RATE_HZ), dtype=np.float32)


def metrics(live) -> str:
    return httpx.get(f"{live.url}/metrics", timeout=10).text


async def open_session(live, *, manual: bool) -> Client:
    """A beta session with 16 kHz input; `manual`: no turn detection (commit + response.create),
    else the default server_vad."""
    client = await Client.open(live.ws_url, additional_headers=BETA)
    assert (await client.recv())["type"] == "session.created"
    session = {"input_audio_format": {"type": "audio/pcm", "rate": INPUT_RATE_HZ}}
    if manual:
        session["turn_detection"] = None
    await client.send(type="session.update", session=session)
    await client.until("session.updated")
    return client


async def send_turn(client: Client, text: str) -> None:
    """One manual turn: stream `text`'s speech, commit, ask for the reply."""
    await client.append(memorized.speak(text), rate=INPUT_RATE_HZ)
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")


async def say(client: Client, text: str) -> list[dict]:
    """One manual turn and the events up to its `response.done`."""
    await send_turn(client, text)
    return await client.until("response.done")


async def add_turn(client: Client, text: str) -> None:
    """Add `text`'s speech as one user item and ask for the reply (works beside server_vad)."""
    audio = base64.b64encode(float_to_pcm16(memorized.speak(text))).decode()
    await client.send(type="conversation.item.create", item={
        "type": "message", "role": "user", "content": [{"type": "input_audio", "audio": audio}]})
    await client.send(type="response.create")


def reply_of(events: list[dict]) -> str:
    """The reply transcript as `response.done` reports it."""
    return events[-1]["response"]["output"][0]["content"][0]["transcript"]


async def test_the_reply_streams_in_order_and_says_the_memorized_answer(
        serve, memorized_ata_bundle):
    runtime = real_runtime(memorized_ata_bundle)
    live = serve(runtime)
    client = await open_session(live, manual=True)
    events = await say(client, QUESTION)
    assert types(events) == ["input_audio_buffer.committed", "conversation.item.created",
                             *RESPONSE_EVENTS]
    audio = [e for e in events if e["type"] == "response.audio.delta"]
    assert len(audio) >= 3  # pieces leave as the streaming decoder yields them, before the end
    text_deltas = "".join(e["delta"] for e in events
                          if e["type"] == "response.audio_transcript.delta")
    done_text = next(e for e in events if e["type"] == "response.audio_transcript.done")
    assert text_deltas.strip() == done_text["transcript"] == reply_of(events) == ANSWER
    done = events[-1]["response"]
    assert (done["status"], done["output"][0]["status"]) == ("completed", "completed")
    assert done["usage"]["input_tokens"] > 0 and done["usage"]["output_tokens"] > 0
    reply = decode_deltas(events, "response.audio.delta")
    assert reply.size == pytest.approx(wire_samples(runtime, ANSWER), rel=SAMPLES_TOLERANCE)
    assert 'icot_ttfa_seconds_count{endpoint="realtime"} 1.0' in metrics(live)
    await client.close()


async def test_a_t_t_a_sends_the_user_transcript_before_the_reply(serve,
                                                                  memorized_atta_bundle):
    live = serve(real_runtime(memorized_atta_bundle))
    client = await open_session(live, manual=True)
    events = await say(client, QUESTION)
    kinds = [e["type"] for e in events]
    user_item = events[kinds.index("input_audio_buffer.committed")]["item_id"]
    deltas = [e["delta"] for e in events
              if e["type"] == "conversation.item.input_audio_transcription.delta"]
    completed = [e for e in events
                 if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert len(completed) == 1 and completed[0]["item_id"] == user_item
    assert completed[0]["transcript"] == "".join(deltas).strip() == QUESTION
    assert (kinds.index("conversation.item.input_audio_transcription.completed")
            < kinds.index("response.audio_transcript.delta"))
    assert reply_of(events) == ANSWER
    await client.close()


async def test_each_session_remembers_only_its_own_turns(serve, memorized_ata_bundle):
    live = serve(real_runtime(memorized_ata_bundle))
    first = await open_session(live, manual=True)
    introduced = await say(first, NAME)
    recalled = await say(first, RECALL)
    assert [reply_of(introduced), reply_of(recalled)] == [NAME_REPLY, RECALL_REPLY]
    second = await open_session(live, manual=True)  # the first session is still open
    fresh = await say(second, RECALL)
    assert fresh[-1]["response"]["status"] in ("completed", "incomplete")
    assert reply_of(fresh) != RECALL_REPLY  # the name was said in the other session
    # The first session's prompt held its whole first exchange (more than the reply's tokens);
    # the second's holds none of it.
    with_history = recalled[-1]["response"]["usage"]["input_tokens"]
    history = with_history - fresh[-1]["response"]["usage"]["input_tokens"]
    assert history > introduced[-1]["response"]["usage"]["output_tokens"]
    # and the engine slot still held that exchange, so only the new question was prefilled
    exchange = introduced[-1]["response"]["usage"]
    cached = recalled[-1]["response"]["usage"]["input_token_details"]["cached_tokens"]
    assert cached == exchange["input_tokens"] + exchange["output_tokens"] - 1
    await first.close()
    await second.close()


async def test_speech_during_a_reply_cancels_it_and_the_conversation_goes_on(
        serve, memorized_ata_bundle):
    runtime = real_runtime(memorized_ata_bundle)
    live = serve(runtime)
    client = await open_session(live, manual=False)  # server_vad: speech interrupts replies
    await add_turn(client, NAME)
    await client.until("response.done")
    await add_turn(client, RECALL)
    await client.append(memorized.speak(INTERRUPTION), rate=INPUT_RATE_HZ)  # talks over it
    interrupted = await client.until("response.done")
    kinds = [e["type"] for e in interrupted]
    assert (kinds.index("response.created") < kinds.index("input_audio_buffer.speech_started")
            < kinds.index("response.done"))
    response = interrupted[-1]["response"]
    assert (response["status"], response["status_details"]["reason"]) == (
        "cancelled", "turn_detected")
    assert response["output"][0]["status"] == "incomplete"
    live.wait(lambda: runtime.active_slots == 0, timeout_s=2.0)  # generation stopped
    received_ms = decode_deltas(interrupted, "response.audio.delta").size * 1000 // WIRE_RATE_HZ
    await client.send(type="conversation.item.truncate", item_id=response["output"][0]["id"],
                      content_index=0, audio_end_ms=received_ms // 2)  # half of it was played
    truncated = await client.until("conversation.item.truncated")
    assert "response.audio.delta" not in types(truncated)  # nothing streams after the end
    await client.append(silence(0.8), rate=INPUT_RATE_HZ)  # the interruption ends: answered
    answered = await client.until("response.done")
    assert answered[-1]["response"]["status"] in ("completed", "incomplete")
    await client.close()


async def _next_prompt_tokens(live, played_ms: int | None) -> int:
    """Ask the question, truncate the reply to `played_ms` (None: leave it whole), ask again:
    the tokens of the second prompt, which holds the first exchange as history."""
    client = await open_session(live, manual=True)
    first = await say(client, QUESTION)
    if played_ms is not None:
        await client.send(type="conversation.item.truncate", content_index=0,
                          item_id=first[-1]["response"]["output"][0]["id"],
                          audio_end_ms=played_ms)
        await client.until("conversation.item.truncated")
    second = await say(client, QUESTION)
    await client.close()
    assert second[-1]["response"]["status"] in ("completed", "incomplete")
    return second[-1]["response"]["usage"]["input_tokens"]


async def test_truncate_keeps_only_the_heard_reply_for_later_turns(serve, memorized_ata_bundle):
    runtime = real_runtime(memorized_ata_bundle)
    live = serve(runtime)
    reply_units = runtime.codec.encode(memorized.speak(ANSWER, memorized.ASSISTANT_VOICE)).size
    played_ms = 1000
    assert reply_units > played_ms * runtime.codec.frame_rate // 1000
    unheard, heard, whole = [await _next_prompt_tokens(live, ms) for ms in (0, played_ms, None)]
    # The sessions differ only in how much reply speech their history keeps.
    assert heard - unheard == played_ms * runtime.codec.frame_rate // 1000  # 50 units a second
    assert whole - unheard == reply_units


async def test_disconnect_mid_reply_cancels_generation_and_frees_the_slot(
        serve, memorized_ata_bundle):
    live = serve(real_runtime(memorized_ata_bundle, slots=1))
    for _ in range(DISCONNECT_ATTEMPTS):
        client = await open_session(live, manual=True)
        await say(client, NAME)
        await send_turn(client, RECALL)
        await client.until("response.audio_transcript.delta")  # the engine is generating
        await client.ws.close()
        live.wait(lambda: "icot_active_sessions 0.0" in metrics(live), timeout_s=5.0)
        if 'icot_responses_total{status="cancelled"} 1.0' in metrics(live):
            break  # else the reply ended before the server saw the close: again
    else:
        pytest.fail(f"no reply was cancelled by a disconnect in {DISCONNECT_ATTEMPTS} attempts")
    assert "icot_engine_slots_in_use 0.0" in metrics(live)
    again = await open_session(live, manual=True)  # the single slot admits the next client
    assert reply_of(await say(again, QUESTION)) == ANSWER
    await again.close()


async def test_admission_refuses_the_session_past_the_engine_slots(serve, memorized_ata_bundle):
    live = serve(real_runtime(memorized_ata_bundle, slots=2))
    holders = [await open_session(live, manual=True) for _ in range(2)]
    refused = await Client.open(live.ws_url, additional_headers=BETA)
    with pytest.raises(ConnectionClosed) as closed:
        await refused.recv()
    assert closed.value.rcvd.code == 1013
    assert reply_of(await say(holders[0], QUESTION)) == ANSWER  # the admitted ones still work
    for holder in holders:
        await holder.close()


def test_rest_answers_with_the_memorized_reply(serve, memorized_atta_bundle):
    runtime = real_runtime(memorized_atta_bundle)
    live = serve(runtime)
    url = f"{live.url}/v1/speech-to-speech"
    wav = wav_bytes(memorized.speak(QUESTION), INPUT_RATE_HZ)
    expected = wire_samples(runtime, ANSWER)

    answer = httpx.post(url, content=wav, timeout=60)
    assert answer.status_code == 200, answer.text
    audio, rate = read_audio(answer.content)
    assert rate == WIRE_RATE_HZ
    assert audio.size == pytest.approx(expected, rel=SAMPLES_TOLERANCE)

    body = httpx.post(url, content=wav, headers={"Accept": "application/json"}, timeout=60).json()
    assert (body["status"], body["transcript"], body["text"]) == ("completed", QUESTION, ANSWER)
    assert body["sample_rate"] == WIRE_RATE_HZ and body["usage"]["output_tokens"] > 0
    # the same question as the request before: all but its last prompt token come from the cache
    assert body["usage"]["cached_input_tokens"] == body["usage"]["input_tokens"] - 1
    assert body["timings"]["first_audio_ms"] <= body["timings"]["total_ms"]
    json_audio, _ = read_audio(base64.b64decode(body["audio"]))
    assert json_audio.size == audio.size

    with httpx.stream("POST", f"{url}?stream=true", content=wav, timeout=60) as streamed:
        assert streamed.status_code == 200
        chunks = list(streamed.iter_raw())
    stream = b"".join(chunks)
    sizes = struct.unpack("<I", stream[4:8]) + struct.unpack("<I", stream[40:44])  # RIFF, data
    assert sizes == (0xFFFFFFFF, 0xFFFFFFFF)  # the length is unknown when the header leaves
    assert (len(stream) - 44) // 2 == audio.size

    other = httpx.post(f"{url}?chain=A-A", content=wav, timeout=60)
    assert other.json()["error"]["code"] == "unsupported_value"
