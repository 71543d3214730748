"""The text-in chain: typed words → reply text → reply speech, a greeting from the history alone,
and token counts split into text and speech units (the realtime usage numbers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from memorized import DIALOGUES, speak

from model.chain import Chain
from model.parser import ReplyTextDelta
from model.runtime import Runtime, RuntimeConfig
from model.speech_tokens import SpeechVocab
from model.template import INSTRUCTION, PastTurn, Template
from model.turn import ReplyAudio, TokenTally, TurnDone
from training.word_tokenizer import build_word_tokenizer

DEMO_BUNDLE = Path(__file__).resolve().parents[2] / "checkpoints" / "demo"
WORDS = ["what is two plus three", "two plus three is five", "hello there"]
((QUESTION, ANSWER),) = DIALOGUES[1]


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer(WORDS, 16)


@pytest.fixture(scope="module")
def template(tokenizer):
    return Template(SpeechVocab(tokenizer))


def test_a_typed_prompt_is_the_template_with_the_words_in_place_of_speech_and_transcript(
        template, tokenizer):
    ids = template.typed_prompt("what is two plus three").ids
    text = (f"You are [AnyGPT]. You are chatting with [Human]. {INSTRUCTION} <-Ins-> "
            "[Human]: what is two plus three <eoh>\n[AnyGPT]: <-Res-> what is two plus three\n"
            "[AnyGPT]:")
    assert ids == tokenizer(text)["input_ids"]


def test_a_greeting_prompt_has_no_user_line(template, tokenizer):
    ids = template.typed_prompt("").ids
    text = (f"You are [AnyGPT]. You are chatting with [Human]. {INSTRUCTION} <-Ins-> "
            "[AnyGPT]: <-Res-> \n[AnyGPT]:")
    assert ids == tokenizer(text)["input_ids"]
    assert template.vocab.markers.human not in ids[len(template.header_ids):]


def test_a_typed_turn_stays_typed_in_the_history(template, tokenizer):
    typed = PastTurn([], "what is two plus three", "two plus three is five", [1, 2], typed=True)
    spoken = template.prompt(Chain.ATA, [3], [typed]).ids
    text = (f"You are [AnyGPT]. You are chatting with [Human]. {INSTRUCTION} <-Ins-> "
            "[Human]: what is two plus three <eoh>\n[AnyGPT]: <-Res-> what is two plus three\n"
            "[AnyGPT]: two plus three is five <sosp><🗣️1><🗣️2><eosp> <eos>\n"
            "[Human]: <sosp><🗣️3><eosp> <eoh>\n[AnyGPT]: <-Res-> \n[AnyGPT]:")
    assert spoken == tokenizer(text)["input_ids"]


async def test_typed_question_is_answered_with_text_then_speech_and_counted(
        memorized_ata_bundle):
    runtime = Runtime.load(memorized_ata_bundle, RuntimeConfig(max_slots=1))
    await runtime.warmup()
    try:
        conversation = runtime.new_conversation()
        spoken_tally = TokenTally()
        spoken = [e async for e in conversation.respond(speak(QUESTION), 16_000,
                                                          tally=spoken_tally)]
        tally = TokenTally()
        typed = [e async for e in conversation.respond_typed(QUESTION, tally=tally)]
    finally:
        await runtime.close()
    done = typed[-1]
    assert isinstance(done, TurnDone)
    assert any(isinstance(e, ReplyTextDelta) for e in typed)
    assert any(isinstance(e, ReplyAudio) for e in typed)
    assert conversation.history[-1].typed and conversation.history[-1].transcript == QUESTION
    spoken_done = spoken[-1]
    reply_units = len(conversation.history[0].reply_units)
    # the spoken turn: its prompt holds the question's units, its reply the answer's units
    assert spoken_done.tokens == spoken_tally
    assert spoken_tally.output_audio_tokens == reply_units > 0
    assert 0 < spoken_tally.input_audio_tokens < spoken_tally.input_tokens
    # the typed turn's prompt carries the first turn (speech both ways) in its history
    assert tally.input_audio_tokens == (len(conversation.history[0].user_units) + reply_units)
    assert tally.input_tokens == done.input_tokens and tally.output_tokens == done.output_tokens
    assert tally.cached_tokens == done.cached_input_tokens
    assert tally.cached_audio_tokens <= tally.input_audio_tokens


async def test_a_turn_the_model_ends_without_speech_is_complete_not_cut_by_the_limit():
    # the demo v1 bundle never learned text chat: after a greeting prompt it writes units
    # without opening them with <sosp>, then <eosp> (a stop id). The turn ended; no speech.
    runtime = Runtime.load(DEMO_BUNDLE, RuntimeConfig(max_slots=1))
    await runtime.warmup()
    try:
        events = [e async for e in runtime.new_conversation().respond_typed("")]
    finally:
        await runtime.close()
    done = events[-1]
    assert isinstance(done, TurnDone)
    assert done.output_tokens < runtime.bundle.config.generation.max_new_tokens
    assert (done.status, done.end_reason) == ("completed", "no_speech")
