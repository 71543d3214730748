"""The stream parser: well-formed output of every chain comes back as the transcript, reply text
and units that were rendered; multi-byte characters come out whole; malformed output ends the
turn without raising; random token streams never raise and never yield non-speech ids as units."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers
from transformers import PreTrainedTokenizerFast

from model.chain import Chain
from model.parser import (
    ChainParser,
    EndOfTurn,
    EndReason,
    ReplyTextDelta,
    SpeechUnits,
    UserTranscriptDelta,
)
from model.speech_tokens import MARKERS, SpeechVocab, unit_token
from model.template import Template
from training.word_tokenizer import build_word_tokenizer

N_UNITS = 24
WORDS = ["what", "is", "two", "plus", "three", "five", "my", "name", "anna", "the", "sky", "blue"]
ASCII = "abcdefghijklmnopqrstuvwxyz"


def byte_fallback_tokenizer(n_units: int) -> PreTrainedTokenizerFast:
    """A Llama-style tokenizer (metaspace, single characters, byte fallback for the rest): any
    non-ASCII character becomes several byte tokens that decode to U+FFFD until complete."""
    pieces = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), "▁", *ASCII]
    core = Tokenizer(models.BPE({p: i for i, p in enumerate(pieces)}, [], unk_token="<unk>",
                                byte_fallback=True))
    core.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                            normalizers.Replace(" ", "▁")])
    core.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                      decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    core.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in MARKERS])
    core.add_tokens([AddedToken(unit_token(u), normalized=False) for u in range(n_units)])
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>")


WORD_VOCAB = SpeechVocab(build_word_tokenizer(WORDS, N_UNITS))
BYTE_VOCAB = SpeechVocab(byte_fallback_tokenizer(N_UNITS))
VOCABS = {"word": WORD_VOCAB, "byte": BYTE_VOCAB}


def run(vocab: SpeechVocab, chain: Chain, ids: list[int], close: bool = True) -> list:
    parser = ChainParser(vocab, chain)
    events = [event for token_id in ids for event in parser.feed(token_id)]
    return events + (parser.close() if close else [])


def collect(events: list) -> tuple[str, str, list[int], list[EndOfTurn]]:
    transcript = "".join(e.text for e in events if isinstance(e, UserTranscriptDelta))
    reply = "".join(e.text for e in events if isinstance(e, ReplyTextDelta))
    units = [u for e in events if isinstance(e, SpeechUnits) for u in e.units]
    return transcript, reply, units, [e for e in events if isinstance(e, EndOfTurn)]


# ---- well-formed output ----------------------------------------------------------------------


@pytest.mark.parametrize("vocab_name", list(VOCABS))
@pytest.mark.parametrize("chain", list(Chain))
def test_a_rendered_target_parses_back_to_its_parts(vocab_name, chain):
    vocab = VOCABS[vocab_name]
    ex = Template(vocab).example(chain, [1, 2], "what is two plus three", "two plus three is five",
                                 [7, 0, 23])
    transcript, reply, units, ends = collect(run(vocab, chain, ex.target_ids, close=False))
    assert transcript == ("what is two plus three" if chain is Chain.ATTA else "")
    assert reply == ("two plus three is five" if chain is not Chain.AA else "")
    assert units == [7, 0, 23]
    assert ends == [EndOfTurn(EndReason.COMPLETE)]


def test_events_arrive_as_tokens_arrive():
    vocab = WORD_VOCAB
    ex = Template(vocab).example(Chain.ATTA, [1], "the sky", "blue", [3, 4])
    parser = ChainParser(vocab, Chain.ATTA)
    per_token, done = [], []
    for token_id in ex.target_ids:
        per_token.append(parser.feed(token_id))
        done.append(parser.done)
    assert per_token[0] == [UserTranscriptDelta("the")]
    assert per_token[1] == [UserTranscriptDelta(" sky")]
    first_unit = ex.target_ids.index(vocab.unit_ids[3])
    assert per_token[first_unit] == [SpeechUnits([3])]
    assert per_token[first_unit + 2] == [EndOfTurn(EndReason.COMPLETE)]  # at <eosp>
    assert done.index(True) == first_unit + 2
    assert parser.feed(vocab.unit_ids[5]) == [] and parser.close() == []


def test_in_speech_tracks_the_speech_segment():
    vocab = WORD_VOCAB
    m = vocab.markers
    parser = ChainParser(vocab, Chain.ATA)
    assert not parser.in_speech
    parser.feed(vocab.encode_text("blue")[0])
    parser.feed(m.speech_start)
    assert parser.in_speech
    parser.feed(m.speech_end)
    assert not parser.in_speech and parser.done
    assert ChainParser(vocab, Chain.AA).in_speech  # the A-A prompt ends with <sosp>


def test_multi_byte_characters_are_never_split():
    vocab = BYTE_VOCAB
    text = "café ☕ 日本 ok"
    ex = Template(vocab).example(Chain.ATA, [1], "", text, [2])
    assert any(vocab.decode_text([i]) == "\ufffd" for i in ex.target_ids)  # really split in bytes
    parser = ChainParser(vocab, Chain.ATA)
    deltas, silent = [], 0
    for token_id in ex.target_ids:
        events = parser.feed(token_id)
        silent += not events
        deltas += [e.text for e in events if isinstance(e, ReplyTextDelta)]
    assert "".join(deltas) == text
    assert not any("\ufffd" in d for d in deltas)
    assert silent > 0  # incomplete characters were held back


# ---- malformed output ------------------------------------------------------------------------


def ids(vocab: SpeechVocab, *parts) -> list[int]:
    """Build a stream from marker strings, unit ints and text."""
    names = dict(zip(MARKERS, vars(vocab.markers).values(), strict=True))
    out: list[int] = []
    for part in parts:
        if isinstance(part, int):
            out.append(vocab.unit_ids[part])
        elif part in names:
            out.append(names[part])
        else:
            out += vocab.encode_text(part)
    return out


@pytest.mark.parametrize("ender", ["<eos>", "[Human]", "<eoh>", "<-Ins->", "[AnyGPT]"])
def test_a_speech_segment_cut_by_a_marker_ends_the_turn(ender):
    stream = ids(WORD_VOCAB, "blue", "<sosp>", 1, 2, ender, 3, "<eosp>")
    _, reply, units, ends = collect(run(WORD_VOCAB, Chain.ATA, stream))
    assert (reply, units) == ("blue", [1, 2])
    assert ends == [EndOfTurn(EndReason.UNTERMINATED_SPEECH)]


def test_close_inside_speech_is_unterminated_and_before_speech_is_length():
    vocab = WORD_VOCAB
    assert collect(run(vocab, Chain.AA, ids(vocab, 4, 5)))[3] == [
        EndOfTurn(EndReason.UNTERMINATED_SPEECH)]
    transcript, _, _, ends = collect(run(vocab, Chain.ATTA, ids(vocab, "the sky is")))
    assert transcript == "the sky is" and ends == [EndOfTurn(EndReason.LENGTH)]


def test_text_inside_speech_and_units_outside_it_are_dropped():
    vocab = WORD_VOCAB
    stream = ids(vocab, "the", 9, "sky", "<sosp>", 1, "blue", "<-Res->", 2, "<sosp>", 3, "<eosp>")
    _, reply, units, ends = collect(run(vocab, Chain.ATA, stream))
    assert reply == "the sky"
    assert units == [1, 2, 3]
    assert ends == [EndOfTurn(EndReason.COMPLETE)]


def test_a_turn_without_speech_ends_on_eos():
    vocab = WORD_VOCAB
    stream = ids(vocab, "what is", "[AnyGPT]", ":", "blue", "<eos>", "<sosp>", 1)
    transcript, reply, units, ends = collect(run(vocab, Chain.ATTA, stream))
    assert (transcript, reply, units) == ("what is", "blue", [])
    assert ends == [EndOfTurn(EndReason.NO_SPEECH)]


def test_out_of_range_ids_are_ignored():
    vocab = WORD_VOCAB
    stream = [-1, vocab.size, vocab.size + 1000, *ids(vocab, "blue", "<sosp>", 1, "<eosp>")]
    assert collect(run(vocab, Chain.ATA, stream))[1:3] == ("blue", [1])


# ---- properties over random streams ----------------------------------------------------------


def random_streams(vocab: SpeechVocab):
    markers = list(vars(vocab.markers).values())
    text = [i for i in range(vocab.size) if vocab.is_text(i)]
    token = st.one_of(st.sampled_from(markers), st.sampled_from(vocab.unit_ids),
                      st.sampled_from(text), st.integers(-3, vocab.size + 40))
    return st.lists(token, max_size=60)


def is_subsequence(part: list[int], whole: list[int]) -> bool:
    it = iter(whole)
    return all(any(x == y for y in it) for x in part)


@pytest.mark.parametrize("vocab_name", list(VOCABS))
@pytest.mark.parametrize("chain", list(Chain))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_streams_never_raise_and_yield_only_fed_units(vocab_name, chain, data):
    vocab = VOCABS[vocab_name]
    stream = data.draw(random_streams(vocab))
    events = run(vocab, chain, stream)
    fed_units = [u for u in map(vocab.unit_of, stream) if u is not None]
    units = collect(events)[2]
    assert all(0 <= u < vocab.n_units for u in units)
    assert is_subsequence(units, fed_units)
    assert sum(isinstance(e, EndOfTurn) for e in events) == 1 and isinstance(events[-1], EndOfTurn)
    assert all(e.text for e in events if isinstance(e, UserTranscriptDelta | ReplyTextDelta))
    assert events == run(vocab, chain, stream)  # deterministic


@pytest.mark.parametrize("vocab_name", list(VOCABS))
@settings(max_examples=80, deadline=None)
@given(
    transcript=st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join),
    reply=st.lists(st.text(ASCII + "éü☕日", min_size=1, max_size=6), min_size=1,
                   max_size=6).map(" ".join),
    units=st.lists(st.integers(0, N_UNITS - 1), max_size=20),
    cut=st.integers(0, 200),
)
def test_any_prefix_of_a_reply_parses_to_a_prefix_of_it(vocab_name, transcript, reply, units, cut):
    vocab = VOCABS[vocab_name]
    if vocab_name == "word":
        reply = "".join(c for c in reply if c in ASCII + " ").strip() or "blue"
        reply = " ".join(reply.split())
    target = Template(vocab).example(Chain.ATTA, [1], transcript, reply, units).target_ids
    full = collect(run(vocab, Chain.ATTA, target, close=False))
    assert full[:3] == (transcript, reply, units)
    part = collect(run(vocab, Chain.ATTA, target[:cut]))
    assert transcript.startswith(part[0]) and reply.startswith(part[1])
    assert units[: len(part[2])] == part[2]
    assert len(part[3]) == 1
