"""Pipecat's `OpenAIRealtimeLLMService` holds a conversation with `icot serve`.

The snippet of docs/integrations.md: the service with `base_url` pointed at the server, between
the user and assistant context aggregators of an `LLMContext`, in a test pipeline without a
transport: frames are queued into the pipeline worker as a transport would push them (an
`LLMRunFrame` on a context holding a typed user message, Pipecat's usual start, which is also the
reply before any audio; then microphone audio as `InputAudioRawFrame`s). Pipecat treats any
error event as fatal and parses usage strictly, so a conversation that ends without an
`ErrorFrame` is the point. The only instrument is a wrapper
that records the raw server events the service reads from its websocket, to check them against
the openai SDK's types.
"""

from __future__ import annotations

import asyncio

import pytest
from framework_server import API_KEY, WIRE_RATE_HZ, silence_pcm
from loguru import logger
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    LLMRunFrame,
    TTSAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
from pipecat.workers.runner import WorkerRunner
from session_log import ServerEvents, audio_bytes, reply_transcript

pytestmark = pytest.mark.frameworks
FRAME_BYTES = 960  # 20 ms of 24 kHz PCM16, as a transport delivers it
BARGE_IN_ATTEMPTS = 3


class RecordingSocket:
    """The service's websocket, unchanged, with every received message copied to `events`."""

    def __init__(self, socket, events: ServerEvents) -> None:
        self._socket = socket
        self._events = events

    def __getattr__(self, name: str):
        return getattr(self._socket, name)

    async def __aiter__(self):
        async for message in self._socket:
            self._events.add(message)
            yield message


class RecordedRealtimeService(OpenAIRealtimeLLMService):
    """`OpenAIRealtimeLLMService` whose received server events are also recorded."""

    def __init__(self, *, events: ServerEvents, **kwargs) -> None:
        super().__init__(**kwargs)
        self._recorded = events

    async def _connect(self):
        await super()._connect()
        if self._websocket is not None:  # the receive task starts reading after this
            self._websocket = RecordingSocket(self._websocket, self._recorded)


class Collector(FrameProcessor):
    """Passes every frame on and keeps the ones a test looks at."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, ErrorFrame | TTSAudioRawFrame):
            self.frames.append(frame)
        await self.push_frame(frame, direction)


def realtime_service(port: int, events: ServerEvents) -> OpenAIRealtimeLLMService:
    """The integration snippet: Pipecat's OpenAI realtime service, served by icot."""
    return RecordedRealtimeService(events=events, api_key=API_KEY,
                                   base_url=f"ws://127.0.0.1:{port}/v1/realtime")


async def speak(worker: PipelineWorker, pcm: bytes) -> None:
    for start in range(0, len(pcm), FRAME_BYTES):
        await worker.queue_frame(InputAudioRawFrame(audio=pcm[start:start + FRAME_BYTES],
                                                    sample_rate=WIRE_RATE_HZ, num_channels=1))


async def test_pipecat_greets_answers_speech_and_text_and_is_interrupted(icot_server,
                                                                          speech_pcm):
    events = ServerEvents("ga")
    context = LLMContext([{"role": "user", "content": "what is four plus one"}])
    user, assistant = LLMContextAggregatorPair(context)
    upstream, downstream = Collector(), Collector()
    pipeline = Pipeline([upstream, user, realtime_service(icot_server.port, events), assistant,
                         downstream])
    worker = PipelineWorker(pipeline, cancel_on_idle_timeout=False)
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(worker, frame):
        started.set()

    async def converse() -> None:
        await asyncio.wait_for(started.wait(), 30)
        # Pipecat's usual start: run the LLM on the context (a typed user message), before
        # any audio: the item is created as input_text and answered with the text-in chain.
        await worker.queue_frame(LLMRunFrame())
        typed = await events.next("response.done")
        assert typed["response"]["status"] == "completed"
        assert events.of_type("conversation.item.added")[0]["item"]["content"][0]["type"] == (
            "input_text")

        await speak(worker, speech_pcm("what is two plus three") + silence_pcm(1.0))
        spoken = await events.until_done()
        assert spoken[-1]["response"]["status"] == "completed"
        assert audio_bytes(spoken) > 0 and reply_transcript(spoken[-1])

        for _ in range(BARGE_IN_ATTEMPTS):
            await speak(worker, speech_pcm("what is three plus three") + silence_pcm(1.0))
            await events.next("response.created")
            await speak(worker, speech_pcm("count from one to three") + silence_pcm(1.0))
            first = await events.next("response.done")
            if first["response"]["status"] == "cancelled":
                break
            await events.next("response.done")
        assert first["response"]["status_details"]["reason"] == "turn_detected"
        after = await events.next("response.done")
        assert after["response"]["status"] == "completed"
        await asyncio.sleep(0.5)  # whatever the barge-in sent (a truncate) is answered
        await worker.queue_frame(EndFrame())

    logged: list[str] = []  # Pipecat logs through loguru
    sink = logger.add(lambda message: logged.append(str(message)), level="ERROR")
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    conversation = asyncio.create_task(converse())
    running = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(asyncio.shield(conversation), 180)
        await asyncio.wait_for(running, 30)
    finally:
        logger.remove(sink)
        for task in (conversation, running):
            task.cancel()

    assert events.invalid == []
    assert events.errors() == []
    assert [f for f in upstream.frames + downstream.frames if isinstance(f, ErrorFrame)] == []
    assert any(isinstance(f, TTSAudioRawFrame) for f in downstream.frames)
    assert logged == []
    assert icot_server.logged_errors() == []
