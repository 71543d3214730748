"""End to end with the real runtime: tiny random bundles (model/tiny_bundle.py) behind a real
uvicorn, driven over the wire: streaming, A-T-T-A transcripts, barge-in, multi-turn memory,
disconnects and REST.

A random tiny model says noise, so a bundle is chosen whose reply to the test question contains
at least `MIN_REPLY_AUDIO_S` of speech: the probe feeds the runtime exactly the turn the server
will hand it (the same InputAudio/VAD code over the same audio), and sampling is seeded, so the
reply over the wire is the one probed. Recall of *content* needs a trained bundle (slow test).
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from pathlib import Path

import httpx
import numpy as np
import pytest
from realtime_client import Client, decode_deltas, types
from websockets.exceptions import ConnectionClosed

from model.audio import float_to_pcm16, wav_bytes
from model.conversation import ReplyAudio, TurnDone
from model.runtime import Runtime, RuntimeConfig
from model.tiny_bundle import build_tiny_bundle
from server.realtime.input_audio import InputAudio, TurnEnded
from server.vad import SileroVad, VadConfig

QUESTION = "what is two plus three"
INTERRUPTION = "good night"
PAD_S = 0.5
# Seeds 21 and 11 spoke 3.5 s and 1.7 s for QUESTION when this was written (4 of the first 40 seeds
# spoke at all); the rest are tried should the tiny model change.
SEEDS = (21, 11, *(seed for seed in range(40) if seed not in (21, 11)))
MIN_REPLY_AUDIO_S = 1.0
DEMO_BUNDLE = Path(__file__).parents[2] / "checkpoints" / "demo"


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16_000), dtype=np.float32)


def spoken_turn(speak) -> np.ndarray:
    """What a client streams for one turn: silence, the question, silence (16 kHz)."""
    return np.concatenate([silence(PAD_S), speak(QUESTION), silence(0.8)])


def committed_turn(audio16k: np.ndarray) -> np.ndarray:
    """The samples the server's VAD commits for `audio16k` sent as 16 kHz PCM16."""
    audio = InputAudio(SileroVad(), wire_rate=16_000, vad_config=VadConfig(), max_turn_s=60)
    ends = [e for e in audio.append(float_to_pcm16(audio16k)) if isinstance(e, TurnEnded)]
    assert len(ends) == 1
    return ends[0].samples


async def _reply_audio_s(bundle: Path, samples: np.ndarray) -> float:
    runtime = Runtime.load(bundle, RuntimeConfig(max_slots=1))
    await runtime.warmup()
    try:
        seconds, done = 0.0, None
        async with aclosing(runtime.new_conversation().respond(samples, 16_000)) as events:
            async for event in events:
                if isinstance(event, ReplyAudio):
                    seconds += event.samples.size / event.sample_rate
                elif isinstance(event, TurnDone):
                    done = event
        return seconds if done is not None and done.status == "completed" else 0.0
    finally:
        await runtime.close()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, speak) -> dict[str, Path]:
    """chain → a tiny bundle whose reply to the spoken question has enough speech."""
    turn = committed_turn(spoken_turn(speak))
    chosen = {}
    for chain in ("A-T-A", "A-T-T-A"):
        for seed in SEEDS:
            path = build_tiny_bundle(tmp_path_factory.mktemp(f"tiny-{chain}-{seed}"), chain,
                                     seed=seed)
            if asyncio.run(_reply_audio_s(path, turn)) >= MIN_REPLY_AUDIO_S:
                chosen[chain] = path
                break
        else:
            pytest.fail(f"no tiny {chain} bundle among seeds {SEEDS} speaks for the question")
    return chosen


def real_runtime(bundle: Path, slots: int = 2) -> Runtime:
    return Runtime.load(bundle, RuntimeConfig(max_slots=slots))


async def vad_session(live) -> Client:
    """A GA session in server_vad mode with 16 kHz input (what the probe assumed)."""
    client = await Client.open(live.ws_url)
    await client.recv()
    await client.send(type="session.update", session={"type": "realtime", "audio": {
        "input": {"format": {"type": "audio/pcm", "rate": 16000}}}})
    await client.until("session.updated")
    return client


async def test_reply_audio_streams_before_the_reply_is_finished(serve, bundles, speak):
    live = serve(real_runtime(bundles["A-T-A"]))
    client = await vad_session(live)
    await client.append(spoken_turn(speak), rate=16_000)
    events = await client.until("response.done")
    kinds = types(events)
    assert kinds[:3] == ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                         "input_audio_buffer.committed"]
    assert kinds[-1] == "response.done" and events[-1]["response"]["status"] == "completed"
    audio = [e for e in events if e["type"] == "response.output_audio.delta"]
    assert len(audio) >= 3
    assert audio[0]["_t"] < audio[-1]["_t"]  # pieces left as they were decoded, not at the end
    reply = decode_deltas(events, "response.output_audio.delta")
    assert reply.size / 24_000 >= MIN_REPLY_AUDIO_S - 0.05
    usage = events[-1]["response"]["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    metrics = live.state.metrics.render()[0].decode()
    assert 'icot_ttfa_seconds_count{endpoint="realtime"} 1.0' in metrics
    await client.close()


async def test_a_t_t_a_bundle_sends_the_input_transcription(serve, bundles, speak):
    live = serve(real_runtime(bundles["A-T-T-A"]))
    client = await vad_session(live)
    await client.append(spoken_turn(speak), rate=16_000)
    events = await client.until("response.done")
    user_item = next(e for e in events if e["type"] == "input_audio_buffer.committed")["item_id"]
    deltas = [e["delta"] for e in events
              if e["type"] == "conversation.item.input_audio_transcription.delta"]
    completed = [e for e in events
                 if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert len(completed) == 1 and completed[0]["item_id"] == user_item
    assert deltas and completed[0]["transcript"] == "".join(deltas).strip()
    await client.close()


async def test_barge_in_cancels_generation_and_truncate_trims_the_history(serve, bundles, speak):
    runtime = real_runtime(bundles["A-T-A"])
    live = serve(runtime)
    client = await vad_session(live)
    await client.append(spoken_turn(speak), rate=16_000)
    await client.until("response.output_audio.delta")
    reply_item = next(e for e in client.log if e["type"] == "response.output_item.added")
    await client.append(speak(INTERRUPTION), rate=16_000)  # the user talks over the reply
    events = await client.until("response.done")
    assert "input_audio_buffer.speech_started" in types(events)
    done = events[-1]["response"]
    assert (done["status"], done["status_details"]["reason"]) == ("cancelled", "turn_detected")
    live.wait(lambda: runtime.active_slots == 0, timeout_s=2.0)
    received_ms = decode_deltas(client.log, "response.output_audio.delta").size // 24
    played_ms = received_ms // 2  # the client played half of what it had received
    await client.send(type="conversation.item.truncate", item_id=reply_item["item"]["id"],
                      content_index=0, audio_end_ms=played_ms)
    await client.until("conversation.item.truncated")
    session = next(iter(live.state.sessions))
    kept_frames = played_ms * runtime.codec.frame_rate // 1000
    assert len(session.conversation.history[-1].reply_units) == kept_frames
    await client.append(silence(0.8), rate=16_000)  # the interruption ends and is answered
    answered = await client.until("response.done")
    assert answered[-1]["response"]["status"] == "completed"
    await client.close()


async def test_each_session_remembers_its_own_turns(serve, bundles, speak):
    live = serve(real_runtime(bundles["A-T-A"]))
    first = await vad_session(live)
    usages = []
    for _ in range(2):
        await first.append(spoken_turn(speak), rate=16_000)
        usages.append((await first.until("response.done"))[-1]["response"]["usage"])
    # The second prompt carries the first turn (question and reply) before the new question.
    assert usages[1]["input_tokens"] > usages[0]["input_tokens"] + usages[0]["output_tokens"] // 2
    second = await vad_session(live)
    await second.append(spoken_turn(speak), rate=16_000)
    fresh = (await second.until("response.done"))[-1]["response"]["usage"]
    assert fresh["input_tokens"] == usages[0]["input_tokens"]  # nothing leaks across sessions
    await first.close()
    await second.close()


async def test_disconnect_mid_reply_frees_the_engine_slot(serve, bundles, speak):
    runtime = real_runtime(bundles["A-T-A"], slots=1)
    live = serve(runtime)
    client = await vad_session(live)
    await client.append(spoken_turn(speak), rate=16_000)
    await client.until("response.output_audio.delta")
    await client.ws.close()
    live.wait(lambda: runtime.active_slots == 0 and live.state.slots.in_use == 0, timeout_s=2.0)
    again = await vad_session(live)  # the single slot admits the next client
    await again.close()


async def test_admission_with_the_real_engine(serve, bundles):
    live = serve(real_runtime(bundles["A-T-A"], slots=1))
    holder = await vad_session(live)
    refused = await Client.open(live.ws_url)
    with pytest.raises(ConnectionClosed) as closed:
        await refused.recv()
    assert closed.value.rcvd.code == 1013
    await holder.close()


def test_rest_answers_with_the_real_runtime(serve, bundles, speak):
    live = serve(real_runtime(bundles["A-T-T-A"]))
    wav = wav_bytes(spoken_turn(speak), 16_000)
    answer = httpx.post(f"{live.url}/v1/speech-to-speech", content=wav,
                        headers={"Accept": "application/json"}, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["sample_rate"] == 24_000 and body["timings"]["total_ms"] > 0
    assert body["transcript"] is not None  # A-T-T-A writes the transcript
    other = httpx.post(f"{live.url}/v1/speech-to-speech?chain=A-A", content=wav, timeout=60)
    assert other.json()["error"]["code"] == "unsupported_value"


@pytest.mark.slow
async def test_demo_bundle_recalls_a_name_across_turns(serve, speak):
    if not (DEMO_BUNDLE / "bundle.json").is_file():
        pytest.skip("checkpoints/demo is not built yet")
    live = serve(Runtime.load(DEMO_BUNDLE, RuntimeConfig(max_slots=1)))
    client = await vad_session(live)
    replies = []
    for said in ("my name is anna", "what is my name"):
        await client.append(np.concatenate([silence(PAD_S), speak(said), silence(0.8)]),
                            rate=16_000)
        events = await client.until("response.done")
        replies.append(events[-1]["response"]["output"][0]["content"][0]["transcript"])
    assert replies == ["nice to meet you anna", "your name is anna"]
    await client.close()
