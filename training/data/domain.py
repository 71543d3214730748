"""The demo domain as data, its exact reply rule, and seeded turn and dialogue generators.

The embedded demo model understands exactly this: arithmetic to twenty, names (and recalling the
name later in the dialogue), colors of things, next day, opposites, counting and small talk.
Every utterance is lowercase words without punctuation, numbers spoken as words. This module is
pure Python text: it knows nothing of audio, tokenizers, models or files, so the training corpora,
the evaluation and the tests all draw the same sentences and the same exact replies from it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)
MAX_OPERAND = 10  # add/subtract operands lie in 0..10
COUNT_MIN_START, COUNT_MAX_START, COUNT_MAX_SPAN = 1, 10, 4  # count from a to b: a < b ≤ a + 4
NAMES = (
    "anna", "ben", "carlos", "diana", "emma", "felix", "grace", "henry", "ivan", "julia", "kevin",
    "laura", "maria", "nora", "oscar", "peter",
)
THING_COLORS = {
    "the sky": "blue", "the grass": "green", "snow": "white", "coal": "black",
    "a banana": "yellow", "a tomato": "red", "an orange": "orange", "a lemon": "yellow",
    "a frog": "green", "milk": "white", "chocolate": "brown", "a cherry": "red",
}
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
OPPOSITE_PAIRS = (
    ("hot", "cold"), ("big", "small"), ("up", "down"), ("day", "night"), ("fast", "slow"),
    ("happy", "sad"), ("open", "closed"), ("left", "right"), ("old", "new"), ("light", "dark"),
    ("early", "late"), ("loud", "quiet"),
)
SMALL_TALK = {
    "hello": "hello there",
    "good morning": "good morning to you",
    "how are you": "i am fine thank you",
    "thank you": "you are welcome",
    "good night": "good night sleep well",
    "what is your name": "my name is icot",
}
RECALL_QUESTION = "what is my name"
UNKNOWN_NAME_REPLY = "i do not know your name"
NAME_STATEMENT_PREFIX = "my name is "

INTENTS = (
    "add", "subtract", "name", "recall", "color", "next_day", "opposite", "count", "small_talk",
)
MAX_DIALOGUE_TURNS = 3

_WORDS_RE = re.compile(r"[a-z]+( [a-z]+)*")


def number_word(n: int) -> str:
    """0..20 as the word the domain speaks (`7` → `seven`)."""
    if not 0 <= n < len(NUMBER_WORDS):
        raise ValueError(f"the demo domain speaks numbers 0..{len(NUMBER_WORDS) - 1}, got {n}")
    return NUMBER_WORDS[n]


@dataclass(frozen=True)
class Turn:
    """One user utterance, the assistant's exact reply, and the intent that links them."""

    user: str
    reply: str
    intent: str

    def __post_init__(self) -> None:
        if self.intent not in INTENTS:
            raise ValueError(f"unknown intent {self.intent!r}; known: {', '.join(INTENTS)}")
        for field_name in ("user", "reply"):
            text = getattr(self, field_name)
            if not _WORDS_RE.fullmatch(text):
                raise ValueError(
                    f"Turn.{field_name} must be lowercase words separated by single spaces, "
                    f"got {text!r}"
                )


@dataclass(frozen=True)
class Dialogue:
    """One to three turns of one conversation; a recall turn is answered from earlier turns."""

    turns: tuple[Turn, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "turns", tuple(self.turns))
        if not 1 <= len(self.turns) <= MAX_DIALOGUE_TURNS:
            raise ValueError(f"a dialogue has 1..{MAX_DIALOGUE_TURNS} turns, got {len(self.turns)}")
        for index, turn in enumerate(self.turns):
            expected = reply_to(turn.user, [t.user for t in self.turns[:index]])
            if turn != expected:
                raise ValueError(f"turn {index} {turn} breaks the reply rule; expected {expected}")


def stated_name(user: str) -> str | None:
    """The name a `my name is {name}` utterance states, else None."""
    if user.startswith(NAME_STATEMENT_PREFIX):
        name = user[len(NAME_STATEMENT_PREFIX):]
        if name in NAMES:
            return name
    return None


def recall_turn(known_name: str | None) -> Turn:
    """The recall turn, answered with the name stated earlier in the dialogue (or not known)."""
    reply = f"your name is {known_name}" if known_name is not None else UNKNOWN_NAME_REPLY
    return Turn(RECALL_QUESTION, reply, "recall")


@cache
def intent_turns(intent: str) -> tuple[Turn, ...]:
    """Every distinct turn of `intent` as a first turn (recall: the name is not known yet)."""
    if intent == "add":
        return tuple(
            Turn(f"what is {number_word(a)} plus {number_word(b)}",
                 f"{number_word(a)} plus {number_word(b)} is {number_word(a + b)}", intent)
            for a in range(MAX_OPERAND + 1) for b in range(MAX_OPERAND + 1)
        )
    if intent == "subtract":
        return tuple(
            Turn(f"what is {number_word(a)} minus {number_word(b)}",
                 f"{number_word(a)} minus {number_word(b)} is {number_word(a - b)}", intent)
            for a in range(MAX_OPERAND + 1) for b in range(a + 1)
        )
    if intent == "name":
        return tuple(
            Turn(f"{NAME_STATEMENT_PREFIX}{name}", f"nice to meet you {name}", intent)
            for name in NAMES
        )
    if intent == "recall":
        return (recall_turn(None),)
    if intent == "color":
        return tuple(
            Turn(f"what color is {thing}", f"{thing} is {color}", intent)
            for thing, color in THING_COLORS.items()
        )
    if intent == "next_day":
        return tuple(
            Turn(f"what day comes after {day}",
                 f"{DAYS[(i + 1) % len(DAYS)]} comes after {day}", intent)
            for i, day in enumerate(DAYS)
        )
    if intent == "opposite":
        return tuple(
            Turn(f"what is the opposite of {word}", f"the opposite of {word} is {other}", intent)
            for pair in OPPOSITE_PAIRS for word, other in (pair, pair[::-1])
        )
    if intent == "count":
        return tuple(
            Turn(f"count from {number_word(a)} to {number_word(b)}",
                 " ".join(number_word(n) for n in range(a, b + 1)), intent)
            for a in range(COUNT_MIN_START, COUNT_MAX_START + 1)
            for b in range(a + 1, a + COUNT_MAX_SPAN + 1)
        )
    if intent == "small_talk":
        return tuple(Turn(user, reply, intent) for user, reply in SMALL_TALK.items())
    raise ValueError(f"unknown intent {intent!r}; known: {', '.join(INTENTS)}")


def single_turns(intents: Sequence[str] = INTENTS) -> list[Turn]:
    """Every distinct first-turn utterance of `intents` with its reply, in a fixed order."""
    return [turn for intent in intents for turn in intent_turns(intent)]


def every_reply() -> list[str]:
    """Every distinct reply the assistant can give (recall answers included), sorted."""
    replies = {turn.reply for turn in single_turns()}
    replies.update(recall_turn(name).reply for name in NAMES)
    return sorted(replies)


@cache
def _turns_by_user() -> dict[str, Turn]:
    return {turn.user: turn for turn in single_turns()}


def reply_to(user: str, earlier_users: Sequence[str] = ()) -> Turn:
    """Apply the reply rule to `user`, given the user's earlier utterances in the dialogue.

    The recall question is answered with the latest name stated earlier; everything else
    depends on the utterance alone. Out-of-domain text is a ValueError.
    """
    if user == RECALL_QUESTION:
        names = [name for name in map(stated_name, earlier_users) if name is not None]
        return recall_turn(names[-1] if names else None)
    turn = _turns_by_user().get(user)
    if turn is None:
        raise ValueError(f"{user!r} is not an utterance of the demo domain")
    return turn


def sample_turn(
    rng: random.Random, intents: Sequence[str] = INTENTS, *, known_name: str | None = None
) -> Turn:
    """One turn: an intent drawn uniformly from `intents`, then one of its utterances uniformly.

    Drawing the intent first keeps small intents (recall, small talk) from vanishing next to the
    121 additions. A recall turn is answered with `known_name`.
    """
    intent = rng.choice(tuple(intents))
    if intent == "recall":
        return recall_turn(known_name)
    return rng.choice(intent_turns(intent))


def sample_dialogue(
    rng: random.Random,
    *,
    min_turns: int = 1,
    max_turns: int = MAX_DIALOGUE_TURNS,
    memory_rate: float = 0.5,
    intents: Sequence[str] = INTENTS,
) -> Dialogue:
    """A dialogue of `min_turns..max_turns` turns drawn with `sample_turn`.

    With probability `memory_rate` a dialogue of two or more turns gets a name statement followed
    later by the recall question, so that corpora teach the model to carry the name across turns
    (drawn independently, that pair would be rare).
    """
    if not 1 <= min_turns <= max_turns <= MAX_DIALOGUE_TURNS:
        raise ValueError(f"need 1 ≤ min_turns ≤ max_turns ≤ {MAX_DIALOGUE_TURNS}")
    if not 0.0 <= memory_rate <= 1.0:
        raise ValueError(f"memory_rate must lie in [0, 1], got {memory_rate}")
    count = rng.randint(min_turns, max_turns)
    plan: list[Sequence[str]] = [intents] * count
    if count >= 2 and rng.random() < memory_rate:
        first = rng.randrange(count - 1)
        plan[first], plan[rng.randrange(first + 1, count)] = ("name",), ("recall",)
    turns: list[Turn] = []
    known_name: str | None = None
    for choices in plan:
        turn = sample_turn(rng, choices, known_name=known_name)
        known_name = stated_name(turn.user) or known_name
        turns.append(turn)
    return Dialogue(tuple(turns))


def sample_turns(seed: int, count: int, intents: Sequence[str] = INTENTS) -> list[Turn]:
    """`count` single turns drawn with `sample_turn` from a generator seeded with `seed`."""
    rng = random.Random(seed)
    return [sample_turn(rng, intents) for _ in range(count)]


def sample_dialogues(
    seed: int,
    count: int,
    *,
    max_turns: int = MAX_DIALOGUE_TURNS,
    memory_rate: float = 0.5,
    intents: Sequence[str] = INTENTS,
) -> list[Dialogue]:
    """`count` dialogues of 1..`max_turns` turns drawn with `sample_dialogue`, seeded."""
    rng = random.Random(seed)
    return [
        sample_dialogue(rng, max_turns=max_turns, memory_rate=memory_rate, intents=intents)
        for _ in range(count)
    ]
