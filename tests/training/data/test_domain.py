"""The demo domain: every intent's reply rule, recall across turns, and seeded generation."""

from __future__ import annotations

import random
import re

import pytest

from training.data import domain
from training.data.domain import Dialogue, Turn, reply_to


def _turn(user: str) -> Turn:
    return reply_to(user)


@pytest.mark.parametrize(
    ("user", "reply", "intent"),
    [
        ("what is two plus three", "two plus three is five", "add"),
        ("what is ten plus ten", "ten plus ten is twenty", "add"),
        ("what is zero plus zero", "zero plus zero is zero", "add"),
        ("what is seven minus four", "seven minus four is three", "subtract"),
        ("what is ten minus ten", "ten minus ten is zero", "subtract"),
        ("my name is oscar", "nice to meet you oscar", "name"),
        ("what is my name", "i do not know your name", "recall"),
        ("what color is the sky", "the sky is blue", "color"),
        ("what color is a banana", "a banana is yellow", "color"),
        ("what color is chocolate", "chocolate is brown", "color"),
        ("what day comes after monday", "tuesday comes after monday", "next_day"),
        ("what day comes after sunday", "monday comes after sunday", "next_day"),
        ("what is the opposite of hot", "the opposite of hot is cold", "opposite"),
        ("what is the opposite of cold", "the opposite of cold is hot", "opposite"),
        ("what is the opposite of quiet", "the opposite of quiet is loud", "opposite"),
        ("count from one to two", "one two", "count"),
        ("count from ten to fourteen", "ten eleven twelve thirteen fourteen", "count"),
        ("hello", "hello there", "small_talk"),
        ("good morning", "good morning to you", "small_talk"),
        ("how are you", "i am fine thank you", "small_talk"),
        ("thank you", "you are welcome", "small_talk"),
        ("good night", "good night sleep well", "small_talk"),
        ("what is your name", "my name is icot", "small_talk"),
    ],
)
def test_reply_rule_of_every_intent(user: str, reply: str, intent: str) -> None:
    assert _turn(user) == Turn(user, reply, intent)


def test_every_intent_has_turns_and_all_are_distinct() -> None:
    turns = domain.single_turns()
    assert {t.intent for t in turns} == set(domain.INTENTS)
    assert len({t.user for t in turns}) == len(turns)
    by_intent = {i: len(domain.intent_turns(i)) for i in domain.INTENTS}
    assert by_intent == {
        "add": 121, "subtract": 66, "name": 16, "recall": 1, "color": 12, "next_day": 7,
        "opposite": 24, "count": 40, "small_talk": 6,
    }


def test_operands_and_counts_stay_in_range() -> None:
    numbers = {w: i for i, w in enumerate(domain.NUMBER_WORDS)}
    for turn in domain.intent_turns("subtract"):
        a, b = numbers[turn.user.split()[2]], numbers[turn.user.split()[4]]
        assert 0 <= b <= a <= 10
    for turn in domain.intent_turns("count"):
        a, b = numbers[turn.user.split()[2]], numbers[turn.user.split()[4]]
        assert 1 <= a <= 10 and a < b <= a + 4
        assert [numbers[w] for w in turn.reply.split()] == list(range(a, b + 1))


def test_opposites_go_both_ways() -> None:
    for word, other in domain.OPPOSITE_PAIRS:
        assert _turn(f"what is the opposite of {word}").reply.endswith(f" is {other}")
        assert _turn(f"what is the opposite of {other}").reply.endswith(f" is {word}")


def test_days_wrap_from_sunday_to_monday() -> None:
    replies = [_turn(f"what day comes after {d}").reply.split()[0] for d in domain.DAYS]
    assert replies == list(domain.DAYS[1:]) + ["monday"]


def test_everything_is_lowercase_words() -> None:
    for turn in domain.single_turns():
        for text in (turn.user, turn.reply):
            assert re.fullmatch(r"[a-z]+( [a-z]+)*", text), text


def test_recall_answers_the_latest_name_stated_earlier() -> None:
    assert reply_to("what is my name", ["my name is anna"]).reply == "your name is anna"
    assert reply_to("what is my name", ["my name is anna", "hello", "my name is ben"]).reply == (
        "your name is ben")
    assert reply_to("what is my name", ["hello", "what is your name"]).reply == (
        "i do not know your name")


def test_out_of_domain_text_is_rejected() -> None:
    with pytest.raises(ValueError, match="not an utterance"):
        reply_to("what is eleven plus one")
    with pytest.raises(ValueError, match="lowercase"):
        Turn("Hello", "hello there", "small_talk")
    with pytest.raises(ValueError, match="unknown intent"):
        Turn("hello", "hello there", "greeting")


def test_dialogue_rejects_a_turn_that_breaks_the_rule() -> None:
    name = reply_to("my name is emma")
    wrong_recall = Turn("what is my name", "i do not know your name", "recall")
    with pytest.raises(ValueError, match="breaks the reply rule"):
        Dialogue((name, wrong_recall))
    assert Dialogue((name, reply_to("what is my name", [name.user]))).turns[1].reply == (
        "your name is emma")
    with pytest.raises(ValueError, match="1..3 turns"):
        Dialogue(())


def test_sampled_dialogues_follow_the_rule_and_use_memory() -> None:
    dialogues = domain.sample_dialogues(seed=3, count=400)
    lengths = {len(d.turns) for d in dialogues}
    assert lengths == {1, 2, 3}
    remembered = 0
    for dialogue in dialogues:
        earlier: list[str] = []
        for turn in dialogue.turns:
            assert turn == reply_to(turn.user, earlier)
            earlier.append(turn.user)
            remembered += turn.reply.startswith("your name is ")
    assert remembered > 50  # memory_rate 0.5 of the ~2/3 multi-turn dialogues


def test_generation_is_deterministic_by_seed() -> None:
    assert domain.sample_dialogues(seed=7, count=50) == domain.sample_dialogues(seed=7, count=50)
    assert domain.sample_dialogues(seed=7, count=50) != domain.sample_dialogues(seed=8, count=50)
    assert domain.sample_turns(1, 30) == domain.sample_turns(1, 30)
    assert domain.sample_turns(1, 30) != domain.sample_turns(2, 30)


def test_sample_turn_draws_intents_evenly() -> None:
    rng = random.Random(0)
    counts: dict[str, int] = {}
    for _ in range(9000):
        intent = domain.sample_turn(rng).intent
        counts[intent] = counts.get(intent, 0) + 1
    assert min(counts.values()) > 800 and max(counts.values()) < 1200


def test_number_word_range() -> None:
    assert domain.number_word(20) == "twenty"
    with pytest.raises(ValueError):
        domain.number_word(21)
