"""Conversations over the real runtime: the memorized tiny bundle answers spoken questions."""

from __future__ import annotations

import asyncio
import json
import shutil

import numpy as np
import pytest
import threadpoolctl
from memorized import ASSISTANT_VOICE, DIALOGUES, speak

from model.audio import speech_level_dbfs
from model.engine import EngineBusy
from model.parser import ReplyTextDelta, UserTranscriptDelta
from model.runtime import CODEC_BLAS_THREADS, Runtime, RuntimeConfig
from model.turn import ReplyAudio, TurnDone


async def _runtime(bundle_dir, **config) -> Runtime:
    runtime = Runtime.load(bundle_dir, RuntimeConfig(**config))
    await runtime.warmup()
    return runtime


async def _collect(conversation, text: str) -> list:
    return [event async for event in conversation.respond(speak(text), 16_000)]


async def test_reply_text_then_streamed_audio_then_done(memorized_ata_bundle) -> None:
    runtime = await _runtime(memorized_ata_bundle)
    try:
        events = await _collect(runtime.new_conversation(), "what is two plus three")
    finally:
        await runtime.close()
    text = "".join(e.text for e in events if isinstance(e, ReplyTextDelta))
    audio = [e for e in events if isinstance(e, ReplyAudio)]
    done = events[-1]
    assert text.strip() == "two plus three is five"
    assert isinstance(done, TurnDone) and done.status == "completed"
    assert done.user_transcript is None  # A-T-A writes no transcript
    assert not any(isinstance(e, UserTranscriptDelta) for e in events)
    assert len(audio) >= 2, "speech must arrive in several chunks, not at the end"
    first_audio = events.index(audio[0])
    assert first_audio < len(events) - 2
    reply_units = runtime.codec.encode(speak("two plus three is five", ASSISTANT_VOICE))
    total = sum(chunk.samples.size for chunk in audio)
    assert total == reply_units.size * runtime.codec.samples_per_frame
    assert done.timings.first_text_ms <= done.timings.first_audio_ms <= done.timings.total_ms
    assert done.audio_seconds == pytest.approx(total / runtime.sample_rate)


async def test_second_turn_recalls_the_name_from_history(memorized_ata_bundle) -> None:
    runtime = await _runtime(memorized_ata_bundle)
    conversation = runtime.new_conversation()
    try:
        first = await _collect(conversation, "my name is anna")
        second = await _collect(conversation, "what is my name")
    finally:
        await runtime.close()
    assert first[-1].reply_text == "nice to meet you anna"
    assert second[-1].reply_text == "your name is anna"
    # the second prompt repeats the first exchange word for word: the engine slot still holds
    # it, so only the new question is prefilled
    first_exchange = first[-1].input_tokens + first[-1].output_tokens - 1
    assert second[-1].cached_input_tokens == first_exchange
    assert second[-1].input_tokens > first_exchange
    assert len(conversation.history) == 2
    conversation.reset()
    assert conversation.history == []


@pytest.fixture
def leveled_bundle(memorized_ata_bundle, tmp_path):
    """The memorized bundle, told the speech level range its user turns were spoken at."""
    levels = [speech_level_dbfs(speak(user), 16_000) for d in DIALOGUES for user, _ in d]
    copy = shutil.copytree(memorized_ata_bundle, tmp_path / "bundle")
    config = json.loads((copy / "bundle.json").read_text())
    config["input_level_dbfs"] = [min(levels) - 1.0, max(levels) + 1.0]
    (copy / "bundle.json").write_text(json.dumps(config))
    return copy


async def test_a_quiet_turn_is_brought_up_to_the_trained_level_and_answered(
    memorized_ata_bundle, leveled_bundle
) -> None:
    question = speak("what is two plus three") * np.float32(10.0 ** (-30.0 / 20.0))  # −30 dB
    answers = []
    for bundle in (memorized_ata_bundle, leveled_bundle):
        runtime = await _runtime(bundle)
        try:
            events = [e async for e in runtime.new_conversation().respond(
                np.clip(question, -1.0, 1.0), 16_000)]
        finally:
            await runtime.close()
        answers.append(events[-1].reply_text)
    # as spoken, the level throws the model off; brought into its range, it answers (a loud
    # turn is brought down the same way: tests/model/test_level.py)
    assert answers[0] != "two plus three is five"
    assert answers[1] == "two plus three is five"


async def test_atta_streams_the_transcript_first(memorized_atta_bundle) -> None:
    runtime = await _runtime(memorized_atta_bundle)
    try:
        events = await _collect(runtime.new_conversation(), "what is two plus three")
    finally:
        await runtime.close()
    kinds = [type(e) for e in events]
    assert kinds.index(UserTranscriptDelta) < kinds.index(ReplyTextDelta) < kinds.index(ReplyAudio)
    assert events[-1].user_transcript == "what is two plus three"
    assert events[-1].reply_text == "two plus three is five"


async def test_closing_the_reply_early_frees_the_slot_and_keeps_history(
    memorized_ata_bundle,
) -> None:
    runtime = await _runtime(memorized_ata_bundle, max_slots=1)
    conversation = runtime.new_conversation()
    try:
        stream = conversation.respond(speak("what is two plus three"), 16_000)
        async for event in stream:
            if isinstance(event, ReplyAudio):
                break
        assert runtime.active_slots == 1
        await stream.aclose()
        for _ in range(100):  # the engine frees the slot at its next step
            if runtime.active_slots == 0:
                break
            await asyncio.sleep(0.01)
        assert runtime.active_slots == 0
        assert conversation.history[-1].reply_text.startswith("two plus three")
        played = len(conversation.history[-1].reply_units)
        conversation.truncate_last_reply(audio_end_ms=100)
        assert len(conversation.history[-1].reply_units) == min(played, 5)  # 50 units/s
    finally:
        await runtime.close()


async def test_busy_engine_refuses_a_second_reply(memorized_ata_bundle) -> None:
    runtime = await _runtime(memorized_ata_bundle, max_slots=1)
    question = speak("what is two plus three")
    try:
        first = runtime.new_conversation().respond(question, 16_000)
        await first.__anext__()
        with pytest.raises(EngineBusy):
            await runtime.new_conversation().respond(question, 16_000).__anext__()
        await first.aclose()
    finally:
        await runtime.close()


async def test_input_at_24khz_is_resampled(memorized_ata_bundle) -> None:
    runtime = await _runtime(memorized_ata_bundle)
    try:
        samples = speak("what is two plus three", rate=24_000)
        events = [e async for e in runtime.new_conversation().respond(samples, 24_000)]
    finally:
        await runtime.close()
    assert isinstance(events[-1], TurnDone)
    assert all(np.isfinite(e.samples).all() for e in events if isinstance(e, ReplyAudio))


async def test_warmup_pins_the_codec_blas_to_one_thread(memorized_ata_bundle) -> None:
    """Idle OpenBLAS workers busy-wait after each codec call and take cores from the engine."""
    threadpoolctl.threadpool_limits(2, user_api="blas")
    runtime = Runtime.load(memorized_ata_bundle, RuntimeConfig())
    try:
        await runtime.warmup()
        blas = [pool for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    finally:
        await runtime.close()
    assert blas  # numpy's OpenBLAS is seen
    assert {pool["num_threads"] for pool in blas} == {CODEC_BLAS_THREADS}
