"""`POST /v1/speech-to-speech`: one spoken question in, the spoken answer out.

The audio comes as the multipart field `audio` or as the raw body (WAV/FLAC/OGG, any rate, mono
or stereo). The answer is `audio/wav` at 24 kHz; with `Accept: application/json` a JSON object
with transcript, text, base64 WAV and timings; with `?stream=true` a WAV whose PCM streams as it
is generated. Bad input is a 4xx JSON error; no free engine slot is 503 with Retry-After. A
client that disconnects cancels its generation at once. Each request is a fresh conversation.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import aclosing
from dataclasses import asdict, dataclass, field

import numpy as np
from fastapi import APIRouter, Request
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.responses import JSONResponse, Response, StreamingResponse

from model.audio import (
    MODEL_INPUT_RATE_HZ,
    AudioError,
    StreamResampler,
    float_to_pcm16,
    read_audio,
    resample,
    wav_bytes,
)
from model.engine import EngineBusy, EngineError
from model.parser import ReplyTextDelta
from model.template import PromptTooLongError
from model.turn import ReplyAudio, TurnDone
from server import logs
from server.admission import Lease, Refused
from server.errors import ErrorCode, error_response, new_id
from server.state import ServerState

OUTPUT_RATE_HZ = 24_000
STREAM_SIZE_UNKNOWN = 0xFFFFFFFF  # RIFF/data sizes of a WAV whose length is not known yet
log = logging.getLogger("icot.rest")
router = APIRouter()


class RequestRefused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


@dataclass
class Reply:
    """Everything one turn produced, gathered for the non-streaming answers."""

    audio: list[np.ndarray] = field(default_factory=list)  # chunks at the codec rate
    text: str = ""
    done: TurnDone | None = None


@router.post("/v1/speech-to-speech")
async def speech_to_speech(request: Request, stream: bool = False,
                           chain: str | None = None) -> Response:
    state: ServerState = request.app.state.icot
    logs.session_id.set(new_id("req"))
    if not state.auth.allows(request.headers):
        return error_response(state.metrics, 401, ErrorCode.UNAUTHORIZED,
                              "a valid API key is required (Bearer header)")
    try:
        # The body is read before admission: a slow upload holds no engine slot, and a refusal
        # with the body unread could reach a proxy as a connection reset instead of a 503.
        body = await _read_body(request, state.settings.max_upload_bytes, state)
        lease = state.admit()
    except RequestRefused as refused:
        return refused.response
    except Refused as refused:
        return _unavailable(state, refused.code, refused.reason)
    with lease:  # a streamed answer takes the lease over and releases it when it ends
        try:
            samples, chain = await _read_question(request, body, state, chain)
            conversation = state.runtime.new_conversation()
            events = conversation.respond(samples, MODEL_INPUT_RATE_HZ, chain=chain)
            started = time.perf_counter()
            if stream:
                return await _stream(events, state, lease, started)
            reply = await _until_disconnected(request, _collect(events, state, started))
        except RequestRefused as refused:
            return refused.response
        except EngineBusy:
            return _unavailable(state, ErrorCode.ENGINE_BUSY, "every engine slot is busy")
        except PromptTooLongError as exc:
            return error_response(state.metrics, 400, ErrorCode.TURN_AUDIO_TOO_LONG, str(exc))
        except EngineError:
            log.exception("generation failed")
            return error_response(state.metrics, 500, ErrorCode.SERVER_ERROR,
                                  "generation failed; see the server log")
    if reply is None:  # the client left; nothing to answer
        return Response(status_code=499)
    return _answer(request, reply, state)


async def _read_question(request: Request, body: bytes, state: ServerState,
                         chain: str | None) -> tuple[np.ndarray, str | None]:
    """Check the body's chain and audio; the decoded 16 kHz samples and chain, or a refusal."""
    metrics, settings = state.metrics, state.settings
    audio, form_chain = await _audio_part(request, body, state)
    chain = chain or form_chain
    if chain is not None and chain not in state.runtime.chains:
        raise RequestRefused(error_response(
            metrics, 400, ErrorCode.UNSUPPORTED_VALUE,
            f"chain {chain!r} is not available; this bundle offers "
            + ", ".join(state.runtime.chains)))
    try:
        samples, _ = await asyncio.to_thread(read_audio, audio, target_rate=MODEL_INPUT_RATE_HZ,
                                             max_seconds=settings.max_turn_audio_s)
    except AudioError as exc:
        raise RequestRefused(error_response(metrics, 400, ErrorCode.INVALID_AUDIO,
                                            str(exc))) from None
    metrics.audio_in_seconds.inc(samples.size / MODEL_INPUT_RATE_HZ)
    return samples, chain


async def _read_body(request: Request, limit: int, state: ServerState) -> bytes:
    def too_large() -> RequestRefused:  # built only when refusing: building it counts it
        return RequestRefused(error_response(
            state.metrics, 413, ErrorCode.MESSAGE_TOO_LARGE,
            f"the request body is over the limit of {limit} bytes"))

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


async def _audio_part(request: Request, body: bytes,
                      state: ServerState) -> tuple[bytes, str | None]:
    """The audio bytes and an optional `chain` form field (multipart), or the raw body."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return body, None

    async def replay() -> AsyncIterator[bytes]:
        yield body

    try:
        form = await MultiPartParser(request.headers, replay(), max_files=4, max_fields=16,
                                     max_part_size=len(body) + 1).parse()
    except MultiPartException as exc:
        raise RequestRefused(error_response(state.metrics, 400, ErrorCode.INVALID_VALUE,
                                            f"malformed multipart body: {exc}")) from None
    part = form.get("audio")
    if part is None:
        raise RequestRefused(error_response(state.metrics, 400, ErrorCode.MISSING_FIELD,
                                            "the multipart body has no `audio` field"))
    audio = await part.read() if isinstance(part, UploadFile) else part.encode()
    chain = form.get("chain")
    await form.close()
    return audio, chain if isinstance(chain, str) else None


def _unavailable(state: ServerState, code: ErrorCode, reason: str) -> Response:
    """503 with Retry-After: not ready, draining, or no free engine slot."""
    return error_response(state.metrics, 503, code, f"{reason}; try again shortly",
                          retry_after_s=state.settings.retry_after_s)


async def _collect(events: AsyncIterator[object], state: ServerState, started: float) -> Reply:
    reply = Reply()
    async with aclosing(events) as stream:
        async for event in stream:
            if isinstance(event, ReplyAudio):
                if not reply.audio:
                    _observe_ttfa(state, started)
                reply.audio.append(event.samples)
            elif isinstance(event, ReplyTextDelta):
                reply.text += event.text
            elif isinstance(event, TurnDone):
                reply.done = event
    if reply.done is None:
        raise RuntimeError("the runtime's reply ended without TurnDone")
    return reply


async def _until_disconnected(request: Request,
                              work: Coroutine[None, None, Reply]) -> Reply | None:
    """Run `work`; cancel it (and return None) as soon as the client disconnects."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            log.info("client disconnected: generation cancelled")
    try:
        return await task
    except asyncio.CancelledError:
        return None


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _stream(events: AsyncIterator[object], state: ServerState, lease: Lease,
                  started: float) -> Response:
    """Wait for the first event (so a busy engine is still a 503), then stream the WAV."""
    iterator = aiter(events)
    first = await anext(iterator)
    release = lease.hand_off()

    async def body() -> AsyncIterator[bytes]:
        resampler = StreamResampler(state.runtime.sample_rate, OUTPUT_RATE_HZ)
        sent_audio = False
        try:
            yield _streaming_wav_header(OUTPUT_RATE_HZ)
            async with aclosing(events):
                event = first
                while True:
                    if isinstance(event, ReplyAudio):
                        if not sent_audio:
                            sent_audio = True
                            _observe_ttfa(state, started)
                        yield _pcm(resampler.process(event.samples), state)
                    elif isinstance(event, TurnDone):
                        state.metrics.responses.labels(status=event.status).inc()
                    event = await anext(iterator, None)
                    if event is None:
                        break
            yield _pcm(resampler.flush(), state)
        finally:
            release()

    # The background task also releases when the client left before the body ever started.
    return StreamingResponse(body(), media_type="audio/wav", background=BackgroundTask(release))


def _pcm(samples: np.ndarray, state: ServerState) -> bytes:
    state.metrics.audio_out_seconds.inc(samples.size / OUTPUT_RATE_HZ)
    return float_to_pcm16(samples)


def _observe_ttfa(state: ServerState, started: float) -> None:
    state.metrics.ttfa_seconds.labels(endpoint="rest").observe(time.perf_counter() - started)


def _streaming_wav_header(rate: int) -> bytes:
    """A 44-byte PCM16 mono WAV header with the sizes set to 'unknown' (streamed length)."""
    return (b"RIFF" + struct.pack("<I", STREAM_SIZE_UNKNOWN) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", STREAM_SIZE_UNKNOWN))


def _answer(request: Request, reply: Reply, state: ServerState) -> Response:
    done = reply.done
    assert done is not None
    codec_audio = (np.concatenate(reply.audio) if reply.audio
                   else np.zeros(0, dtype=np.float32))
    audio = resample(codec_audio, state.runtime.sample_rate, OUTPUT_RATE_HZ)
    state.metrics.audio_out_seconds.inc(audio.size / OUTPUT_RATE_HZ)
    state.metrics.responses.labels(status=done.status).inc()
    wav = wav_bytes(audio, OUTPUT_RATE_HZ)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({
            "status": done.status,
            "transcript": done.user_transcript,
            "text": done.reply_text,
            "audio": base64.b64encode(wav).decode("ascii"),
            "sample_rate": OUTPUT_RATE_HZ,
            "timings": asdict(done.timings),
            "usage": {"input_tokens": done.input_tokens, "output_tokens": done.output_tokens,
                      "cached_input_tokens": done.cached_input_tokens},
        })
    return Response(wav, media_type="audio/wav")
