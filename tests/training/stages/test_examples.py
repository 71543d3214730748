"""Rendering corpus turns for each stage: histories, transcript removal, loss boundaries, A-A."""

from __future__ import annotations

import pytest

from model.chain import Chain
from model.speech_tokens import SpeechVocab
from model.template import PastTurn, PromptTooLongError, Template
from training.stages.examples import Renderer, TurnItem, turn_items
from training.word_tokenizer import build_word_tokenizer

N_UNITS = 16
DIALOGUE = {"turns": [
    {"user_units": [1, 2, 3], "transcript": "my name is anna",
     "reply_text": "nice to meet you anna", "reply_units": [4, 5], "intent": "name"},
    {"user_units": [6, 7], "transcript": "what is two plus three",
     "reply_text": "two plus three is five", "reply_units": [8, 9, 10], "intent": "add"},
    {"user_units": [11, 12], "transcript": "what is my name",
     "reply_text": "your name is anna", "reply_units": [13, 14, 15], "intent": "recall"},
]}


@pytest.fixture(scope="module")
def template() -> Template:
    words = {w for turn in DIALOGUE["turns"] for key in ("transcript", "reply_text")
             for w in turn[key].split()}
    return Template(SpeechVocab(build_word_tokenizer(sorted(words), N_UNITS), N_UNITS))


@pytest.fixture(scope="module")
def renderer(template) -> Renderer:
    return Renderer(template, max_tokens=1024)


def recall(max_history: int = 2) -> TurnItem:
    return turn_items(DIALOGUE, max_history)[2]


def test_turn_items_carry_up_to_max_history_earlier_turns():
    items = turn_items(DIALOGUE, max_history=1)
    assert [len(i.history) for i in items] == [0, 1, 1]
    assert items[2].history[0].transcript == "what is two plus three"
    assert [len(i.history) for i in turn_items(DIALOGUE, 2)] == [0, 1, 2]
    assert [len(i.history) for i in turn_items(DIALOGUE, 0)] == [0, 0, 0]
    assert items[2].intent == "recall" and items[2].user_units == (11, 12)


def test_a_single_turn_record_is_one_item_without_history():
    (item,) = turn_items(DIALOGUE["turns"][1], max_history=2)
    assert item.history == () and item.reply_text == "two plus three is five"


def test_a_record_missing_a_field_names_it():
    with pytest.raises(ValueError, match="reply_units"):
        turn_items({"turns": [{"user_units": [1], "transcript": "a", "reply_text": "b"}]}, 2)


def test_stage1_learns_everything_after_the_atta_prompt(template, renderer):
    item = recall()
    rendered = renderer.atta(item)
    history = [PastTurn(t.user_units, t.transcript, t.reply_text, t.reply_units)
               for t in item.history]
    prompt = template.prompt(Chain.ATTA, item.user_units, history)
    assert rendered.ids[:rendered.boundary] == prompt.ids
    target = template.vocab.describe(rendered.ids[rendered.boundary:])
    assert target.startswith("what is my name") and target.endswith("<eosp><eos>")


def test_icot_deletes_the_first_k_transcript_tokens(template, renderer):
    item = recall()
    full = renderer.icot(item, 0)
    transcript = template.transcript_ids(item.transcript)
    for k in range(len(transcript) + 1):
        rendered = renderer.icot(item, k)
        assert rendered.removed == k
        assert rendered.ids[rendered.boundary:][:len(transcript) - k] == transcript[k:]
        assert len(rendered.ids) == len(full.ids) - k


def test_icot_with_the_whole_transcript_removed_is_the_ata_example(renderer):
    item = recall()
    everything = renderer.icot(item, 99)
    ata = renderer.ata(item)
    assert everything.ids == ata.ids
    assert everything.removed == renderer.transcript_len(item) == 4


def test_internalized_stages_render_history_as_the_ata_server_keeps_it(template, renderer):
    item = recall()
    history = [PastTurn(t.user_units, "", t.reply_text, t.reply_units) for t in item.history]
    prompt = template.prompt(Chain.ATA, item.user_units, history)
    ata = renderer.ata(item)
    assert ata.ids[:ata.boundary] == prompt.ids
    text = template.vocab.describe(ata.ids)
    assert "my name is anna" not in text  # earlier transcripts are gone …
    assert "nice to meet you anna" in text  # … earlier replies stay


def test_aa_icot_removes_reply_text_and_ends_as_the_aa_prompt(template, renderer):
    item = recall()
    reply = template.transcript_ids(item.reply_text)
    partial = renderer.aa_icot(item, 2)
    assert partial.removed == 2
    assert partial.ids[partial.boundary:][:len(reply) - 2] == reply[2:]
    done = renderer.aa_icot(item, 99)
    history = [PastTurn(t.user_units, "", "", t.reply_units) for t in item.history]
    prompt = template.prompt(Chain.AA, item.user_units, history)
    assert done.ids[:done.boundary] == prompt.ids  # the A-A prompt ends at the reply's <sosp>
    assert done.removed == len(reply)


def test_speech_positions_are_the_reply_units_and_its_eosp(template, renderer):
    item = recall()
    for rendered in (renderer.atta(item), renderer.icot(item, 2), renderer.aa_icot(item, 99)):
        described = [template.vocab.describe([rendered.ids[p]])
                     for p in rendered.speech_positions]
        assert described == ["<🗣️13>", "<🗣️14>", "<🗣️15>", "<eosp>"]
        assert rendered.speech_positions[0] > rendered.boundary - 1


def test_teacher_view_is_the_full_atta_sequence_with_as_many_speech_positions(renderer):
    item = recall()
    student = renderer.icot(item, 3, teacher=True)
    assert student.teacher is not None and student.teacher.ids == renderer.atta(item).ids
    assert len(student.teacher.speech_positions) == len(student.speech_positions)
    assert renderer.aa_icot(item, 1, teacher=True).teacher.ids == renderer.atta(item).ids


def test_the_oldest_history_goes_first_when_the_budget_is_short(template, renderer):
    item = recall()
    longest = len(renderer.atta(item).ids)
    tight = Renderer(template, max_tokens=longest - 1)
    assert len(tight.atta(item).ids) < longest
    assert "nice to meet you" not in template.vocab.describe(tight.atta(item).ids)
    with pytest.raises(PromptTooLongError):
        Renderer(template, max_tokens=20).atta(item)


def test_a_typed_turn_is_learned_after_exactly_the_server_s_typed_prompt(template, renderer):
    """Stage 1's typed share: typed words in, reply text and speech out; the history is typed."""
    item = recall()
    rendered = renderer.typed(item)
    history = [PastTurn((), t.transcript, t.reply_text, t.reply_units, typed=True)
               for t in item.history]
    prompt = template.typed_prompt(item.transcript, history).ids
    assert rendered.ids[:rendered.boundary] == prompt
    markers = template.vocab.markers
    target = rendered.ids[rendered.boundary:]
    assert target[-1] == markers.end_of_assistant
    assert template.vocab.units_to_ids((13, 14, 15)) == [rendered.ids[p] for p in
                                                          rendered.speech_positions[:-1]]
    assert template.vocab.decode_text(target[:target.index(markers.speech_start)]).strip() == (
        "your name is anna")


def test_stage0_text_chat_has_an_empty_speech_segment_and_no_units(template, renderer):
    item = recall()
    rendered = renderer.typed(item, speech=False)
    markers = template.vocab.markers
    units = set(template.vocab.units_to_ids(range(N_UNITS)))
    assert not units & set(rendered.ids)  # text in, text out: no speech anywhere
    target = rendered.ids[rendered.boundary:]
    start = target.index(markers.speech_start)
    assert target[start + 1] == markers.speech_end and target[-1] == markers.end_of_assistant
    # the prompt is the server's typed prompt, with the earlier turns typed and speechless
    history = [PastTurn((), t.transcript, t.reply_text, (), typed=True) for t in item.history]
    assert rendered.ids[:rendered.boundary] == template.typed_prompt(item.transcript, history).ids
