"""The demo domain, version 2: every intent's answer-only reply, recall of names and numbers
across turns, held-out content by rule, test categories, and seeded generation per content."""

from __future__ import annotations

import random
import re
from itertools import permutations

import pytest

from training.data import domain
from training.data.domain import Category, Content, Dialogue, Turn, reply_to


def _turn(user: str) -> Turn:
    return reply_to(user)


@pytest.mark.parametrize(
    ("user", "reply", "intent"),
    [
        ("what is two plus three", "five", "add"),
        ("what is ten plus ten", "twenty", "add"),
        ("what is seven minus four", "three", "subtract"),
        ("what is ten minus ten", "zero", "subtract"),
        ("what day comes after monday", "tuesday", "next_day"),
        ("what day comes after sunday", "monday", "next_day"),
        ("what is the opposite of hot", "cold", "opposite"),
        ("what is the opposite of quiet", "loud", "opposite"),
        ("what color is the sky", "blue", "color"),
        ("what color is chocolate", "brown", "color"),
        ("count from one to two", "one two", "count"),
        ("count from ten to fourteen", "ten eleven twelve thirteen fourteen", "count"),
        ("say red monday seven backwards", "seven monday red", "reverse"),
        ("what is the capital of france", "paris", "capital"),
        ("what is the capital of kenya", "nairobi", "capital"),
        ("i come from norway", "welcome friend from norway", "from"),
        ("i visited athens", "athens is lovely", "visit"),
        ("my name is oscar", "nice to meet you oscar", "name"),
        ("what is my name", "i do not know your name", "recall"),
        ("remember the number four", "okay", "remember"),
        ("what is my number plus three", "i do not know your number", "recall_number"),
        ("hello", "hello there", "small_talk"),
        ("good night", "good night sleep well", "small_talk"),
        ("what is your name", "my name is icot", "small_talk"),
    ],
)
def test_reply_rule_of_every_intent(user: str, reply: str, intent: str) -> None:
    turn = _turn(user)
    assert (turn.user, turn.reply, turn.intent) == (user, reply, intent)


def test_every_intent_has_turns_and_all_are_distinct() -> None:
    turns = domain.single_turns(domain.INTENTS)
    assert {t.intent for t in turns} == set(domain.INTENTS)
    assert len({t.user for t in turns}) == len(turns)
    by_intent = {i: len(domain.intent_turns(i)) for i in domain.INTENTS}
    assert by_intent == {
        "add": 121, "subtract": 66, "next_day": 7, "opposite": 24, "color": 12, "count": 40,
        "reverse": 24 * 23 * 22, "capital": 12, "from": 12, "visit": 12, "name": 16, "recall": 1,
        "remember": 11, "recall_number": 11, "small_talk": 6,
    }
    assert "reverse" not in {t.intent for t in domain.single_turns()}  # drawn, not listed


def test_held_out_sums_follow_the_rule_and_number_as_the_page_says() -> None:
    numbers = {w: i for i, w in enumerate(domain.NUMBER_WORDS)}
    held = {}
    for intent in ("add", "subtract"):
        turns = domain.intent_turns(intent)
        for turn in turns:
            a, b = numbers[turn.user.split()[2]], numbers[turn.user.split()[4]]
            assert turn.held_out == ((3 * a + b) % 7 == 0)
        held[intent] = [t.user for t in turns if t.held_out]
    assert len(held["add"]) == 17 and len(held["subtract"]) == 10
    assert "what is zero plus zero" in held["add"] and "what is zero minus zero" in held["subtract"]
    assert _turn("what is three plus five").category is Category.UNSEEN_SUMS


def test_text_only_facts_are_the_six_capitals_and_their_words_are_heard_elsewhere() -> None:
    held = {t.user.split()[-1] for t in domain.intent_turns("capital") if t.held_out}
    assert held == {"kenya", "russia", "greece", "cuba", "norway", "poland"}
    assert not any(t.held_out for t in domain.intent_turns("from") + domain.intent_turns("visit"))
    assert _turn("what is the capital of cuba").category is Category.TEXT_ONLY_FACTS
    assert _turn("what is the capital of peru").category is Category.SEEN


def test_reserved_reverse_triples_follow_the_rule() -> None:
    words = domain.REVERSE_WORDS
    assert len(words) == 24 == len(set(words))
    for triple in permutations(words, 3):
        i1, i2, i3 = (words.index(w) for w in triple)
        assert domain.reserved_triple(triple) == ((i1 + 3 * i2 + 5 * i3) % 11 == 0)
    reserved = [t for t in domain.intent_turns("reverse") if t.held_out]
    assert 1000 < len(reserved) < 1200
    assert all(t.category is Category.UNSEEN_ORDERS for t in reserved)


def test_operands_and_counts_stay_in_range() -> None:
    numbers = {w: i for i, w in enumerate(domain.NUMBER_WORDS)}
    for turn in domain.intent_turns("subtract"):
        a, b = numbers[turn.user.split()[2]], numbers[turn.user.split()[4]]
        assert 0 <= b <= a <= 10
    for turn in domain.intent_turns("count"):
        a, b = numbers[turn.user.split()[2]], numbers[turn.user.split()[4]]
        assert 1 <= a <= 10 and a < b <= a + 4
        assert [numbers[w] for w in turn.reply.split()] == list(range(a, b + 1))


def test_everything_is_lowercase_words_and_in_the_vocabulary() -> None:
    vocabulary = set(domain.vocabulary())
    for turn in domain.single_turns(domain.INTENTS):
        for text in (turn.user, turn.reply):
            assert re.fullmatch(r"[a-z]+( [a-z]+)*", text), text
            assert set(text.split()) <= vocabulary


def test_recall_answers_the_latest_name_or_number_stated_earlier() -> None:
    assert reply_to("what is my name", ["my name is anna"]).reply == "anna"
    assert reply_to("what is my name", ["my name is anna", "hello", "my name is ben"]).reply == (
        "ben")
    assert reply_to("what is my name", ["hello", "what is your name"]).reply == (
        "i do not know your name")
    assert reply_to("what is my number plus three", ["remember the number four"]).reply == (
        "seven")
    assert reply_to("what is my number plus ten",
                    ["remember the number four", "remember the number ten"]).reply == "twenty"
    assert reply_to("what is my number plus two", ["my name is anna"]).reply == (
        "i do not know your number")
    assert reply_to("what is my number plus two", ["remember the number one"]).category is (
        Category.MEMORY)


def test_out_of_domain_text_is_rejected() -> None:
    with pytest.raises(ValueError, match="not an utterance"):
        reply_to("what is eleven plus one")
    with pytest.raises(ValueError, match="not an utterance"):
        reply_to("say red red blue backwards")  # the three words must differ
    with pytest.raises(ValueError, match="lowercase"):
        Turn("Hello", "hello there", "small_talk")
    with pytest.raises(ValueError, match="unknown intent"):
        Turn("hello", "hello there", "greeting")


def test_dialogue_rejects_a_turn_that_breaks_the_rule() -> None:
    name = reply_to("my name is emma")
    wrong_recall = Turn("what is my name", "i do not know your name", "recall")
    with pytest.raises(ValueError, match="breaks the reply rule"):
        Dialogue((name, wrong_recall))
    assert Dialogue((name, reply_to("what is my name", [name.user]))).turns[1].reply == "emma"
    with pytest.raises(ValueError, match="1..3 turns"):
        Dialogue(())


def test_sampled_dialogues_follow_the_rule_and_use_both_memories() -> None:
    dialogues = domain.sample_dialogues(seed=3, count=400)
    assert {len(d.turns) for d in dialogues} == {1, 2, 3}
    remembered = {"recall": 0, "recall_number": 0}
    for dialogue in dialogues:
        earlier: list[str] = []
        for turn in dialogue.turns:
            assert turn == reply_to(turn.user, earlier)
            earlier.append(turn.user)
            if turn.intent in remembered and not turn.reply.startswith("i do not know"):
                remembered[turn.intent] += 1
    assert min(remembered.values()) > 25  # memory_rate 0.5 of the ~2/3 multi-turn dialogues


def test_each_content_draws_only_what_it_may() -> None:
    def turns(content: Content) -> list[Turn]:
        return [t for d in domain.sample_dialogues(5, 3000, content=content) for t in d.turns]

    assert not any(t.held_out for t in turns(Content.SPEECH))
    text = turns(Content.TEXT)
    assert any(t.held_out for t in text)
    test = turns(Content.TEST)
    for intent in ("add", "subtract", "capital", "reverse"):
        of_intent = [t for t in test if t.intent == intent]
        share = sum(t.held_out for t in of_intent) / len(of_intent)
        assert 0.4 < share < 0.6, (intent, share)  # TEST_HELD_OUT_SHARE
    assert {t.category for t in test} == set(Category)


def test_speech_replies_hold_no_text_only_answer() -> None:
    replies = set(domain.speech_replies())
    assert {"paris", "seven", "twenty", "okay", "anna", "nairobi is lovely"} <= replies
    assert not {"nairobi", "moscow", "athens", "havana", "oslo", "warsaw"} & replies


def test_generation_is_deterministic_by_seed() -> None:
    assert domain.sample_dialogues(seed=7, count=50) == domain.sample_dialogues(seed=7, count=50)
    assert domain.sample_dialogues(seed=7, count=50) != domain.sample_dialogues(seed=8, count=50)
    assert domain.sample_turns(1, 30) == domain.sample_turns(1, 30)
    assert domain.sample_turns(1, 30) != domain.sample_turns(2, 30)


def test_sample_turn_draws_intents_evenly() -> None:
    rng = random.Random(0)
    counts: dict[str, int] = {}
    for _ in range(15000):
        intent = domain.sample_turn(rng).intent
        counts[intent] = counts.get(intent, 0) + 1
    assert len(counts) == len(domain.INTENTS)
    assert min(counts.values()) > 800 and max(counts.values()) < 1200


def test_number_word_range() -> None:
    assert domain.number_word(20) == "twenty"
    with pytest.raises(ValueError):
        domain.number_word(21)
