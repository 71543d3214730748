"""Chains and the template: where each chain's prompt ends, training examples whose prompt part is
the inference prompt token for token, ICoT transcript removal, history under a budget, and the
token map they are built on (over the word tokenizer of training/word_tokenizer.py, whose own
tests are tests/training/test_word_tokenizer.py)."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

from model.chain import Chain
from model.speech_tokens import MissingTokenError, SpeechVocab, unit_token
from model.template import INSTRUCTION, PastTurn, PromptTooLongError, Template
from training.word_tokenizer import build_word_tokenizer

N_UNITS = 32
WORDS = ["what is two plus three", "two plus three is five", "my name is anna",
         "nice to meet you anna", "what is my name", "your name is anna"]


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer(WORDS, N_UNITS)


@pytest.fixture(scope="module")
def vocab(tokenizer):
    return SpeechVocab(tokenizer)


@pytest.fixture(scope="module")
def template(vocab):
    return Template(vocab)


def speech(units: list[int]) -> str:
    return "<sosp>" + "".join(unit_token(u) for u in units) + "<eosp>"


def contains(ids: list[int], part: list[int]) -> bool:
    return any(ids[i:i + len(part)] == part for i in range(len(ids) - len(part) + 1))


# ---- token map ------------------------------------------------------------------------------


def test_vocab_maps_units_both_ways(vocab):
    assert vocab.n_units == N_UNITS
    ids = vocab.units_to_ids(range(N_UNITS))
    assert [vocab.unit_of(i) for i in ids] == list(range(N_UNITS))
    assert not any(vocab.is_text(i) for i in ids)
    assert vocab.unit_of(vocab.markers.speech_start) is None
    with pytest.raises(ValueError, match="outside"):
        vocab.units_to_ids([N_UNITS])


def test_vocab_classifies_markers_and_text(vocab):
    markers = vars(vocab.markers).values()
    assert len(set(markers)) == 8
    assert not any(vocab.is_text(i) for i in markers)
    assert all(vocab.is_text(i) for i in vocab.encode_text("two plus three"))
    assert not vocab.is_text(vocab.size) and not vocab.is_text(-1)


def test_vocab_names_the_missing_token():
    with pytest.raises(MissingTokenError, match="<🗣️40>"):
        SpeechVocab(build_word_tokenizer(WORDS, 40), n_units=41)
    plain = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"[UNK]": 0, "hi": 1}, unk_token="[UNK]")),
        unk_token="[UNK]",
    )
    with pytest.raises(MissingTokenError, match=r"\[Human\]"):
        SpeechVocab(plain)


def test_vocab_with_fewer_units_than_tokenizer_treats_the_rest_as_non_text(tokenizer):
    small = SpeechVocab(tokenizer, n_units=8)
    extra = tokenizer.convert_tokens_to_ids(unit_token(20))
    assert small.unit_of(extra) is None and not small.is_text(extra)


# ---- prompts ---------------------------------------------------------------------------------


def test_each_chain_prompt_ends_where_generation_starts(template, vocab):
    m = vocab.markers
    colon_space, colon = vocab.encode_text(": "), vocab.encode_text(":")
    user = [5, 6, 7]
    atta = template.prompt(Chain.ATTA, user).ids
    ata = template.prompt(Chain.ATA, user).ids
    aa = template.prompt(Chain.AA, user).ids
    assert atta[-2 - len(colon_space):] == [m.end_of_human, m.assistant, *colon_space,
                                             m.response_sep][-2 - len(colon_space):]
    assert atta[-1] == m.response_sep
    assert ata[: len(atta)] == atta and ata[len(atta):] == [m.assistant, *colon]
    assert aa[: len(ata)] == ata and aa[-1] == m.speech_start
    assert atta[0] == vocab.bos_id
    assert vocab.units_to_ids(user) == atta[atta.index(m.speech_start, len(template.header_ids))
                                            + 1:][:3]


def test_prompt_is_the_authors_template_string_tokenized(template, tokenizer):
    # our piecewise ids equal tokenizing the template of the paper's code as one string
    user, reply_units = [1, 2, 3], [4, 5]
    ex = template.example(Chain.ATTA, user, "what is two plus three", "two plus three is five",
                          reply_units)
    text = (f"You are [AnyGPT]. You are chatting with [Human]. {INSTRUCTION} <-Ins-> "
            f"[Human]: {speech(user)} <eoh>\n[AnyGPT]: <-Res-> what is two plus three\n"
            f"[AnyGPT]: two plus three is five {speech(reply_units)} <eos>")
    assert ex.ids == tokenizer(text)["input_ids"]


@pytest.mark.parametrize("chain", list(Chain))
def test_example_prompt_part_is_the_inference_prompt(template, chain):
    history = [PastTurn([9, 9, 8], "my name is anna", "nice to meet you anna", [3, 4])]
    ex = template.example(chain, [1, 2], "what is my name", "your name is anna", [7, 7, 6],
                          history=history)
    assert ex.prompt_ids == template.prompt(chain, [1, 2], history).ids
    assert ex.target_ids[-1] == template.vocab.markers.end_of_assistant
    assert ex.turns_kept == 1


def test_example_targets_hold_what_each_chain_writes(template, vocab):
    args = ([1, 2], "what is two plus three", "two plus three is five", [7, 6])
    describe = {c: vocab.describe(template.example(c, *args).target_ids) for c in Chain}
    assert describe[Chain.ATTA].startswith("what is two plus three[AnyGPT]")
    assert describe[Chain.ATA].startswith("two plus three is five<sosp>")
    assert describe[Chain.AA] == "<🗣️7><🗣️6><eosp><eos>"
    for chain in Chain:
        assert describe[chain].endswith("<🗣️7><🗣️6><eosp><eos>")


def test_dropping_the_first_k_transcript_tokens(template):
    args = ([1, 2], "what is two plus three", "two plus three is five", [7, 6])
    full = template.example(Chain.ATTA, *args)
    transcript = template.transcript_ids("what is two plus three")
    assert full.transcript_total == len(transcript) == 5
    for k in range(len(transcript) + 3):
        ex = template.example(Chain.ATTA, *args, transcript_drop=k)
        start = full.boundary
        assert ex.boundary == start  # the prompt stays the A-T-T-A prompt
        assert ex.ids == full.ids[:start] + full.ids[start + min(k, 5):]
        assert ex.transcript_kept == max(0, 5 - k)
    ata = template.example(Chain.ATA, *args)
    assert template.example(Chain.ATTA, *args, transcript_drop=5).ids == ata.ids
    assert ata.boundary > full.boundary
    with pytest.raises(ValueError):
        template.example(Chain.ATTA, *args, transcript_drop=-1)


# ---- history ---------------------------------------------------------------------------------


def test_history_keeps_user_speech_and_reply_and_drops_oldest_first(template, vocab):
    turns = [PastTurn([i] * 10, "", f"reply {i}", [i] * 6) for i in range(5)]
    full = template.prompt(Chain.ATA, [20, 21], turns)
    assert full.turns_kept == 5 and full.turns_dropped == 0
    text = vocab.describe(full.ids)
    assert text.index("reply 0") < text.index("reply 4")
    m = vocab.markers
    user_speech = [m.speech_start, *vocab.units_to_ids([3] * 10), m.speech_end]
    assert contains(full.ids, user_speech)  # the user's speech of turn 3 is kept whole
    per_turn = len(template.turn_ids(turns[0]))
    budget = len(full.ids) - 2 * per_turn
    cut = template.prompt(Chain.ATA, [20, 21], turns, max_tokens=budget)
    assert cut.turns_kept == 3 and cut.turns_dropped == 2 and len(cut.ids) <= budget
    cut_text = vocab.describe(cut.ids)
    assert "reply 1" not in cut_text and "reply 2" in cut_text and "reply 4" in cut_text
    assert cut.ids[-10:] == full.ids[-10:]


def test_history_turn_renders_the_transcript_it_was_given(template, vocab):
    with_t = vocab.describe(template.turn_ids(PastTurn([1], "my name is anna", "nice to meet you "
                                                                              "anna", [2])))
    without = vocab.describe(template.turn_ids(PastTurn([1], "", "nice to meet you anna", [2])))
    assert "<-Res-> my name is anna[AnyGPT]: nice" in with_t.replace("<-Res->", "<-Res-> ", 1)
    assert "<-Res->[AnyGPT]: nice to meet you anna" in without


def test_a_turn_over_the_budget_is_a_clear_error(template):
    with pytest.raises(PromptTooLongError, match="budget"):
        template.prompt(Chain.ATA, list(range(N_UNITS)) * 4, max_tokens=50)
    with pytest.raises(ValueError, match="outside"):
        template.prompt(Chain.ATA, [N_UNITS + 1])


def test_chain_names():
    assert Chain.parse("A-T-A") is Chain.ATA
    with pytest.raises(ValueError, match="A-T-T-A, A-T-A, A-A"):
        Chain.parse("ATA")
    assert [c.emits_transcript for c in Chain] == [True, False, False]
    assert [c.emits_reply_text for c in Chain] == [True, True, False]
