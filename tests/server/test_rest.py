"""POST /v1/speech-to-speech over real uvicorn with httpx: every input form and answer form.

The runtime is the ScriptedRuntime test double (its reply is espeak-ng speech), so these check
the endpoint's handling of audio, formats, limits and disconnects, not the model's answers.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import time

import httpx
import numpy as np
import pytest
import soundfile as sf

from model.audio import read_audio, wav_bytes

QUESTION = "what is two plus three"


def encode(samples: np.ndarray, rate: int, fmt: str, channels: int = 1) -> bytes:
    data = np.stack([samples] * channels, axis=1) if channels > 1 else samples
    buffer = io.BytesIO()
    sf.write(buffer, data, rate, format=fmt, subtype="PCM_16" if fmt != "OGG" else "VORBIS")
    return buffer.getvalue()


@pytest.fixture
def live_rest(serve, scripted):
    runtime = scripted(chains=("A-T-A", "A-T-T-A"))
    return serve(runtime, max_upload_bytes=2 << 20, max_turn_audio_s=10.0), runtime


@pytest.mark.parametrize("fmt, rate, channels", [("WAV", 16000, 1), ("FLAC", 44100, 2),
                                                 ("OGG", 48000, 1), ("WAV", 8000, 2)])
def test_raw_body_in_any_container_rate_and_layout_gives_24khz_wav(live_rest, speak, fmt, rate,
                                                                    channels):
    live, runtime = live_rest
    from model.audio import resample

    body = encode(resample(speak(QUESTION), 16000, rate), rate, fmt, channels)
    answer = httpx.post(f"{live.url}/v1/speech-to-speech", content=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "audio/wav"
    audio, out_rate = read_audio(answer.content)
    assert out_rate == 24000
    assert audio.size == pytest.approx(runtime.reply_audio.size * 1.5, abs=48)
    assert runtime.record.inputs[-1].size / 16000 == pytest.approx(speak(QUESTION).size / 16000,
                                                                   abs=0.01)


def test_multipart_field_and_json_answer_with_chain_override(live_rest, speak):
    live, runtime = live_rest
    wav = wav_bytes(speak(QUESTION), 16000)
    answer = httpx.post(f"{live.url}/v1/speech-to-speech",
                        files={"audio": ("q.wav", wav, "audio/wav")}, data={"chain": "A-T-T-A"},
                        headers={"Accept": "application/json"}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) >= {"transcript", "text", "audio", "sample_rate", "timings"}
    assert body["text"] == runtime.reply and body["transcript"] == "what is two plus three"
    assert body["sample_rate"] == 24000
    assert set(body["timings"]) == {"prefill_ms", "first_text_ms", "first_audio_ms", "total_ms"}
    audio, rate = read_audio(base64.b64decode(body["audio"]))
    assert rate == 24000 and audio.size > 0
    assert runtime.record.chains[-1] == "A-T-T-A"


def test_stream_true_sends_audio_as_it_is_generated(live_rest, speak):
    live, runtime = live_rest
    runtime.chunk_delay_s = 0.05
    arrivals, chunks = [], []
    with httpx.stream("POST", f"{live.url}/v1/speech-to-speech?stream=true",
                      content=wav_bytes(speak(QUESTION), 16000), timeout=30) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "audio/wav"
        for chunk in answer.iter_raw():
            arrivals.append(time.perf_counter())
            chunks.append(chunk)
    body = b"".join(chunks)
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
    pcm = np.frombuffer(body[44:], dtype="<i2")
    assert pcm.size == pytest.approx(runtime.reply_audio.size * 1.5, abs=48)
    assert len(chunks) > 5  # many pieces, not one body at the end
    assert arrivals[-1] - arrivals[1] > 0.5 * 0.05 * (runtime.reply_audio.size // 1600 - 1)


@pytest.mark.parametrize("body, code", [
    (b"", "invalid_audio"),
    (b"this is not audio at all", "invalid_audio"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", "invalid_audio"),
])
def test_bad_audio_is_a_400_json_error(live_rest, body, code):
    live, _ = live_rest
    answer = httpx.post(f"{live.url}/v1/speech-to-speech", content=body, timeout=30)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == code


def test_other_refusals(live_rest, speak):
    live, _ = live_rest
    url = f"{live.url}/v1/speech-to-speech"
    too_long = wav_bytes(np.zeros(11 * 16000, dtype=np.float32), 16000)
    assert httpx.post(url, content=too_long).json()["error"]["code"] == "invalid_audio"
    huge = httpx.post(url, content=b"\x00" * (3 << 20))
    assert (huge.status_code, huge.json()["error"]["code"]) == (413, "message_too_large")
    no_field = httpx.post(url, files={"sound": ("q.wav", b"x", "audio/wav")})
    assert (no_field.status_code, no_field.json()["error"]["code"]) == (400, "missing_field")
    chain = httpx.post(url + "?chain=A-A", content=wav_bytes(speak("hello"), 16000))
    assert (chain.status_code, chain.json()["error"]["code"]) == (400, "unsupported_value")


def test_no_free_slot_is_503_with_retry_after(serve, scripted, speak):
    runtime = scripted(max_slots=1, chunk_delay_s=0.05)
    live = serve(runtime, retry_after_s=3)
    wav = wav_bytes(speak(QUESTION), 16000)
    with httpx.stream("POST", f"{live.url}/v1/speech-to-speech?stream=true", content=wav,
                      timeout=30) as first:
        pieces = first.iter_raw()
        next(pieces)  # the first request holds the only slot while it streams
        busy = httpx.post(f"{live.url}/v1/speech-to-speech", content=wav, timeout=30)
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "3"
        assert busy.json()["error"]["code"] == "engine_busy"
        b"".join(pieces)
    live.wait(lambda: live.state.slots.in_use == 0)
    assert httpx.post(f"{live.url}/v1/speech-to-speech", content=wav, timeout=30).status_code == 200


def test_client_disconnect_cancels_generation(serve, scripted, speak):
    runtime = scripted(max_slots=1, chunk_delay_s=0.2)
    live = serve(runtime)
    wav = wav_bytes(speak(QUESTION), 16000)
    request = (f"POST /v1/speech-to-speech HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
               f"Content-Length: {len(wav)}\r\n\r\n").encode() + wav
    with socket.create_connection(("127.0.0.1", live.port)) as sock:
        sock.sendall(request)
        live.wait(lambda: runtime.active_slots == 1)
    live.wait(lambda: runtime.record.cancelled == 1, timeout_s=2.0)
    live.wait(lambda: live.state.slots.in_use == 0 and runtime.active_slots == 0)


def test_auth_on_protects_rest_but_not_health(serve, scripted, speak):
    live = serve(scripted(), api_key="k1")
    url = f"{live.url}/v1/speech-to-speech"
    wav = wav_bytes(speak("hello"), 16000)
    refused = httpx.post(url, content=wav)
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "unauthorized")
    assert httpx.post(url, content=wav, headers={"Authorization": "Bearer k1"}).status_code == 200
    assert httpx.get(f"{live.url}/healthz").status_code == 200
    assert httpx.get(f"{live.url}/readyz").status_code == 200


def test_health_readiness_and_metrics(serve, scripted, speak):
    runtime = scripted(warmup_s=0.8)
    live = serve(runtime, ready=False)
    assert httpx.get(f"{live.url}/healthz").json() == {"status": "ok"}
    not_ready = httpx.get(f"{live.url}/readyz")
    assert not_ready.status_code == 503
    busy = httpx.post(f"{live.url}/v1/speech-to-speech", content=wav_bytes(speak("hi"), 16000))
    assert busy.status_code == 503 and "retry-after" in busy.headers
    live.wait(lambda: live.state.ready)
    ready = httpx.get(f"{live.url}/readyz")
    assert ready.status_code == 200 and ready.json()["chain"] == "A-T-A"
    assert httpx.post(f"{live.url}/v1/speech-to-speech",
                      content=wav_bytes(speak(QUESTION), 16000)).status_code == 200
    text = httpx.get(f"{live.url}/metrics").text
    for name in ("icot_ttfa_seconds_bucket", "icot_decode_tokens_per_second_count",
                 "icot_active_sessions", "icot_queue_depth", "icot_engine_slots_in_use",
                 "icot_audio_in_seconds_total", "icot_audio_out_seconds_total"):
        assert name in text, name
    assert 'icot_ttfa_seconds_count{endpoint="rest"} 1.0' in text
    assert 'icot_errors_total{code="engine_busy"} 1.0' in text
    assert json.loads(httpx.get(f"{live.url}/readyz").text)["slots"] == runtime.max_slots
