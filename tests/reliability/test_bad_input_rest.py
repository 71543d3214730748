"""Bad input on `POST /v1/speech-to-speech`, one table row per malformed or hostile body, against
a live `icot serve` of the demo bundle (`--threads 1`, small limits).

Each row posts its body and asserts the HTTP status and the error code of the JSON answer (or,
for odd but valid audio, a spoken answer); then a normal question must be answered right after.
Compressed audio that expands past the limits is refused in order: its bytes (413), then the
seconds it would decode to, read from its header before decoding (400), then the prompt tokens
of audio within the seconds (400 `turn_audio_too_long`). At the end the server is still ready,
logged no crash and holds no slot.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
import soundfile as sf
from live_icot import LiveServer, rest_question

TURN_S, UPLOAD_BYTES = 20, 2 << 20
RATE = 16_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with LiveServer.start(log, max_turn_audio_s=TURN_S, max_upload_bytes=UPLOAD_BYTES) as server:
        yield server
        assert server.ready() and server.crashes() == []
        server.wait_idle()
        assert "server_error" not in server.errors_by_code()


@dataclass(frozen=True)
class Request:
    body: bytes | None = None
    headers: dict[str, str] | None = None
    files: dict | None = None
    data: dict | None = None
    params: dict | None = None
    method: str = "POST"
    chunked: bool = False  # send the body without Content-Length


@dataclass(frozen=True)
class Case:
    name: str
    request: Callable[[np.ndarray], Request]  # built from the spoken question (16 kHz)
    status: int
    code: str | None  # None: a spoken answer


def encoded(samples: np.ndarray, rate: int = RATE, fmt: str = "WAV",
            subtype: str | None = None, channels: int = 1) -> bytes:
    data = np.repeat(samples[:, None], channels, axis=1) if channels > 1 else samples
    buffer = io.BytesIO()
    sf.write(buffer, data, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def wav_header(*, rate: int = RATE, channels: int = 1, bits: int = 16, fmt_tag: int = 1,
               data_bytes: int, riff_bytes: int | None = None) -> bytes:
    """A canonical 44-byte WAV header whose fields may lie."""
    block = channels * bits // 8
    riff = riff_bytes if riff_bytes is not None else 36 + data_bytes
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt "
            + struct.pack("<IHHIIHH", 16, fmt_tag, channels, rate, rate * block, block, bits)
            + b"data" + struct.pack("<I", data_bytes))


def pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def raw(body: Callable[[np.ndarray], bytes], **more: object) -> Callable[[np.ndarray], Request]:
    return lambda q: Request(body=body(q), **more)


def float_wav_with(value: float) -> Callable[[np.ndarray], bytes]:
    def body(q: np.ndarray) -> bytes:
        samples = q.copy()
        samples[len(samples) // 2] = value
        return encoded(samples, subtype="FLOAT")
    return body


def flac_with_unknown_length(q: np.ndarray) -> bytes:
    """Ten minutes of silence as FLAC (28 kB) whose STREAMINFO says 'length unknown' (0): the
    decoder cannot bound it before decoding, so neither may the server."""
    flac = bytearray(encoded(np.zeros(600 * RATE, np.float32), fmt="FLAC"))
    assert flac[:4] == b"fLaC"
    field = int.from_bytes(flac[18:26], "big") & ~((1 << 36) - 1)  # total samples: low 36 bits
    flac[18:26] = field.to_bytes(8, "big")
    return bytes(flac)


def ogg_silence(seconds: int) -> bytes:
    """Vorbis silence written a second at a time (libsndfile's Vorbis encoder crashes when
    handed minutes in one call)."""
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", RATE, 1, format="OGG", subtype="VORBIS") as f:
        for _ in range(seconds):
            f.write(np.zeros(RATE, np.float32))
    return buffer.getvalue()


def multipart(audio: bytes | str, **fields: str) -> Callable[[np.ndarray], Request]:
    return lambda q: Request(files={"audio": ("q.wav", audio, "audio/wav")}, data=fields)


RNG = np.random.default_rng(20)
SILENCE_10_MIN = np.zeros(600 * RATE, np.float32)

CASES = [
    # ---- not audio at all
    Case("empty body", raw(lambda q: b""), 400, "invalid_audio"),
    Case("random bytes", raw(lambda q: RNG.bytes(10_000)), 400, "invalid_audio"),
    Case("plain text", raw(lambda q: b"what is two plus three"), 400, "invalid_audio"),
    Case("a json body", raw(lambda q: b'{"audio": "UklGRg=="}',
                            headers={"content-type": "application/json"}), 400, "invalid_audio"),
    Case("raw pcm without a header", raw(pcm), 400, "invalid_audio"),
    # ---- WAV headers that are cut short or lie
    Case("wav cut inside its header", raw(lambda q: encoded(q)[:20]), 400, "invalid_audio"),
    Case("wav header and no data", raw(lambda q: wav_header(data_bytes=0)), 400,
         "invalid_audio"),
    Case("wav data size claims 100 MB", raw(lambda q: wav_header(data_bytes=100 << 20) + pcm(q)),
         200, None),
    Case("wav riff size zero", raw(lambda q: wav_header(data_bytes=2 * len(q), riff_bytes=0)
                                   + pcm(q)), 200, None),
    Case("wav rate 10^9 Hz", raw(lambda q: wav_header(rate=10**9, data_bytes=2 * len(q))
                                 + pcm(q)), 400, "invalid_audio"),
    Case("wav rate 1 Hz", raw(lambda q: wav_header(rate=1, data_bytes=2 * len(q)) + pcm(q)),
         400, "invalid_audio"),
    Case("wav rate 0", raw(lambda q: wav_header(rate=0, data_bytes=2 * len(q)) + pcm(q)), 400,
         "invalid_audio"),
    Case("wav zero channels", raw(lambda q: wav_header(channels=0, data_bytes=2 * len(q))
                                  + pcm(q)), 400, "invalid_audio"),
    Case("wav of 8 channels (mixed down)", raw(lambda q: encoded(q, channels=8)), 200, None),
    Case("wav 5000 channels", raw(lambda q: wav_header(channels=5000, data_bytes=2 * len(q))
                                  + pcm(q)), 400, "invalid_audio"),
    Case("wav of an unknown codec", raw(lambda q: wav_header(fmt_tag=0x7777, data_bytes=2 * len(q))
                                        + pcm(q)), 400, "invalid_audio"),
    Case("wav 13 bits a sample (read as 16, answered)", raw(
        lambda q: wav_header(bits=13, data_bytes=2 * len(q)) + pcm(q)), 200, None),
    # ---- odd but valid audio: answered
    Case("stereo wav", raw(lambda q: encoded(q, channels=2)), 200, None),
    Case("8-bit wav", raw(lambda q: encoded(q, subtype="PCM_U8")), 200, None),
    Case("24-bit wav", raw(lambda q: encoded(q, subtype="PCM_24")), 200, None),
    Case("mu-law wav at 8 kHz", raw(lambda q: encoded(q[::2], rate=8_000, subtype="ULAW")),
         200, None),
    Case("wav at 384 kHz", raw(lambda q: encoded(np.repeat(q, 24), rate=384_000)), 200, None),
    Case("flac", raw(lambda q: encoded(q, fmt="FLAC")), 200, None),
    Case("ogg vorbis", raw(lambda q: encoded(q, fmt="OGG", subtype="VORBIS")), 200, None),
    Case("float wav far past full scale", raw(lambda q: encoded(q * 1e6, subtype="FLOAT")),
         200, None),
    Case("multipart with empty audio", multipart(b""), 400, "invalid_audio"),
    # ---- values no audio may hold
    Case("float wav with NaN", raw(float_wav_with(float("nan"))), 400, "invalid_audio"),
    Case("float wav with +Inf", raw(float_wav_with(float("inf"))), 400, "invalid_audio"),
    Case("float wav with -Inf", raw(float_wav_with(float("-inf"))), 400, "invalid_audio"),
    # ---- limits: bytes, then decoded seconds, then tokens
    Case("body over the upload limit", raw(lambda q: RNG.bytes(UPLOAD_BYTES + 1)), 413,
         "message_too_large"),
    Case("chunked body over the upload limit", raw(lambda q: RNG.bytes(UPLOAD_BYTES + 1),
                                                   chunked=True), 413, "message_too_large"),
    Case("wav longer than a turn", raw(lambda q: encoded(np.resize(q, (TURN_S + 1) * RATE))),
         400, "invalid_audio"),
    Case("flac bomb: 10 minutes in 28 kB", raw(lambda q: encoded(SILENCE_10_MIN, fmt="FLAC")),
         400, "invalid_audio"),
    Case("ogg bomb: 10 minutes", raw(lambda q: ogg_silence(600)), 400, "invalid_audio"),
    Case("flac bomb of unknown length", raw(flac_with_unknown_length), 400, "invalid_audio"),
    Case("wav within the seconds, over the tokens", raw(lambda q: encoded(np.resize(q, 19 * RATE))),
         400, "turn_audio_too_long"),
    # ---- multipart and parameters
    Case("multipart without audio", lambda q: Request(files={"sound": ("q.wav", encoded(q))}),
         400, "missing_field"),
    Case("multipart audio given as text", lambda q: Request(data={"audio": "UklGRiQAAABXQVZF"},
                                                            files={"x": ("x", b"x")}),
         400, "invalid_audio"),
    Case("multipart without its boundary", raw(
        lambda q: b"--zzz\r\n" + encoded(q),
        headers={"content-type": "multipart/form-data"}), 400, "invalid_value"),
    Case("multipart with an unknown chain", lambda q: Request(
        files={"audio": ("q.wav", encoded(q), "audio/wav")}, data={"chain": "X-Y"}),
         400, "unsupported_value"),
    Case("unknown chain parameter", lambda q: Request(body=encoded(q), params={"chain": "A-B"}),
         400, "unsupported_value"),
]


def _send(live: LiveServer, request: Request) -> httpx.Response:
    content = request.body
    if request.chunked and content is not None:
        body = content

        def chunks():
            for start in range(0, len(body), 1 << 16):
                yield body[start:start + (1 << 16)]

        content = chunks()
    return httpx.request(request.method, f"{live.url}/v1/speech-to-speech", content=content,
                         headers=request.headers, files=request.files, data=request.data,
                         params=request.params, timeout=60)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_bodies_get_their_status_and_code_and_the_server_goes_on(case: Case,
                                                                      live: LiveServer,
                                                                      question: np.ndarray):
    answer = _send(live, case.request(question))
    assert answer.status_code == case.status, answer.text[:300]
    if case.code is None:
        assert answer.headers["content-type"] == "audio/wav" and len(answer.content) > 10_000
    else:
        assert answer.json()["error"]["code"] == case.code
    rest_question(live, question)


def test_the_table_covers_at_least_thirty_cases():
    assert len(CASES) >= 30 and len({case.name for case in CASES}) == len(CASES)
