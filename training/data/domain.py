"""The demo domain (version 2) as data, its exact reply rule, held-out content, and generators.

What the embedded demo model understands (/work/shared/demo-domain.md, version 2): arithmetic to
twenty, next day, opposites, colors, counting, saying three words backwards, capitals, where the
user comes from or went, names and numbers to remember and recall, and small talk. Replies state
only the answer. Every utterance is lowercase words without punctuation, numbers spoken as words.

Some content is never heard in speech training (`Content`): held-out sums, text-only capital
facts and reserved reverse triples; the test split asks about them, stage 0 learns them as text.
This module is pure Python text: it knows nothing of audio, tokenizers, models or files, so the
corpora, the text stage, the evaluation and the tests draw the same sentences and replies from it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from itertools import permutations

NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)
MAX_OPERAND = 10  # add/subtract operands, remembered numbers and recall offsets lie in 0..10
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
REVERSE_WORDS = (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "blue", "green",
    "white", "black", "yellow", "red", "brown", "monday", "tuesday", "wednesday", "thursday",
    "friday", "saturday", "sunday", "orange",
)
CAPITALS = {
    "france": "paris", "spain": "madrid", "italy": "rome", "japan": "tokyo", "egypt": "cairo",
    "peru": "lima", "kenya": "nairobi", "russia": "moscow", "greece": "athens", "cuba": "havana",
    "norway": "oslo", "poland": "warsaw",
}
TEXT_ONLY_COUNTRIES = ("kenya", "russia", "greece", "cuba", "norway", "poland")
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
REMEMBER_PREFIX = "remember the number "
RECALL_NUMBER_PREFIX = "what is my number plus "
UNKNOWN_NUMBER_REPLY = "i do not know your number"

INTENTS = (
    "add", "subtract", "next_day", "opposite", "color", "count", "reverse", "capital", "from",
    "visit", "name", "recall", "remember", "recall_number", "small_talk",
)
ENUMERATED_INTENTS = tuple(i for i in INTENTS if i != "reverse")
"""Intents `single_turns` lists by default: all but reverse, whose 12,144 word triples are drawn,
not listed, unless asked for by name."""
MEMORY_INTENTS = ("recall", "recall_number")
MAX_DIALOGUE_TURNS = 3

_WORDS_RE = re.compile(r"[a-z]+( [a-z]+)*")


class Category(StrEnum):
    """What a test turn asks of the model (the results page reports each)."""

    SEEN = "seen"
    UNSEEN_SUMS = "unseen sums"
    TEXT_ONLY_FACTS = "text-only facts"
    UNSEEN_ORDERS = "unseen orders"
    MEMORY = "memory"


class Content(StrEnum):
    """Which turns a generator may draw (demo-domain page, "What speech training may hear").

    TEXT: everything (stage 0). SPEECH: everything but held-out content (train and dev splits).
    TEST: everything, with held-out content drawn half the time where an intent has some.
    """

    TEXT = "text"
    SPEECH = "speech"
    TEST = "test"


TEST_HELD_OUT_SHARE = 0.5  # Content.TEST: share of add/subtract/capital/reverse turns held out


def number_word(n: int) -> str:
    """0..20 as the word the domain speaks (`7` → `seven`)."""
    if not 0 <= n < len(NUMBER_WORDS):
        raise ValueError(f"the demo domain speaks numbers 0..{len(NUMBER_WORDS) - 1}, got {n}")
    return NUMBER_WORDS[n]


def held_out_sum(a: int, b: int) -> bool:
    """True for the operand pairs speech training never hears: (3·a + b) mod 7 = 0."""
    return (3 * a + b) % 7 == 0


def reserved_triple(words: Sequence[str]) -> bool:
    """True for reverse triples only the test split may use: (i1 + 3·i2 + 5·i3) mod 11 = 0 with
    i the words' indices in REVERSE_WORDS."""
    i1, i2, i3 = (REVERSE_WORDS.index(word) for word in words)
    return (i1 + 3 * i2 + 5 * i3) % 11 == 0


@dataclass(frozen=True)
class Turn:
    """One user utterance, the assistant's exact reply, and the intent that links them.

    held_out: speech training never hears this turn (an unseen sum, a text-only fact or a
    reserved reverse triple); derived from the text by `reply_to`.
    """

    user: str
    reply: str
    intent: str
    held_out: bool = False

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

    @property
    def category(self) -> Category:
        """The evaluation category of this turn."""
        if self.intent in MEMORY_INTENTS:
            return Category.MEMORY
        if not self.held_out:
            return Category.SEEN
        return {"add": Category.UNSEEN_SUMS, "subtract": Category.UNSEEN_SUMS,
                "capital": Category.TEXT_ONLY_FACTS}.get(self.intent, Category.UNSEEN_ORDERS)


@dataclass(frozen=True)
class Dialogue:
    """One to three turns of one conversation; recall turns are answered from earlier turns."""

    turns: tuple[Turn, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "turns", tuple(self.turns))
        if not 1 <= len(self.turns) <= MAX_DIALOGUE_TURNS:
            raise ValueError(f"a dialogue has 1..{MAX_DIALOGUE_TURNS} turns, got {len(self.turns)}")
        for index, turn in enumerate(self.turns):
            expected = reply_to(turn.user, [t.user for t in self.turns[:index]])
            if turn != expected:
                raise ValueError(f"turn {index} {turn} breaks the reply rule; expected {expected}")

    @property
    def held_out(self) -> bool:
        return any(turn.held_out for turn in self.turns)


def stated_name(user: str) -> str | None:
    """The name a `my name is {name}` utterance states, else None."""
    if user.startswith(NAME_STATEMENT_PREFIX):
        name = user[len(NAME_STATEMENT_PREFIX):]
        if name in NAMES:
            return name
    return None


def stated_number(user: str) -> int | None:
    """The number a `remember the number {n}` utterance states, else None."""
    if user.startswith(REMEMBER_PREFIX):
        word = user[len(REMEMBER_PREFIX):]
        if word in NUMBER_WORDS[:MAX_OPERAND + 1]:
            return NUMBER_WORDS.index(word)
    return None


def recall_turn(known_name: str | None) -> Turn:
    """The name-recall turn, answered with the name stated earlier (or not known)."""
    return Turn(RECALL_QUESTION, known_name or UNKNOWN_NAME_REPLY, "recall")


def recall_number_turn(k: int, known: int | None) -> Turn:
    """`what is my number plus {k}`, answered with the remembered number plus k (or not known)."""
    reply = UNKNOWN_NUMBER_REPLY if known is None else number_word(known + k)
    return Turn(f"{RECALL_NUMBER_PREFIX}{number_word(k)}", reply, "recall_number")


def _arithmetic(intent: str, a: int, b: int) -> Turn:
    word = "plus" if intent == "add" else "minus"
    return Turn(f"what is {number_word(a)} {word} {number_word(b)}",
                number_word(a + b if intent == "add" else a - b), intent, held_out_sum(a, b))


@cache
def intent_turns(intent: str) -> tuple[Turn, ...]:
    """Every distinct turn of `intent` as a first turn (recalls: nothing stated yet)."""
    operands = range(MAX_OPERAND + 1)
    if intent == "add":
        return tuple(_arithmetic(intent, a, b) for a in operands for b in operands)
    if intent == "subtract":
        return tuple(_arithmetic(intent, a, b) for a in operands for b in range(a + 1))
    if intent == "next_day":
        return tuple(Turn(f"what day comes after {day}", DAYS[(i + 1) % len(DAYS)], intent)
                     for i, day in enumerate(DAYS))
    if intent == "opposite":
        return tuple(Turn(f"what is the opposite of {word}", other, intent)
                     for pair in OPPOSITE_PAIRS for word, other in (pair, pair[::-1]))
    if intent == "color":
        return tuple(Turn(f"what color is {thing}", color, intent)
                     for thing, color in THING_COLORS.items())
    if intent == "count":
        return tuple(
            Turn(f"count from {number_word(a)} to {number_word(b)}",
                 " ".join(number_word(n) for n in range(a, b + 1)), intent)
            for a in range(COUNT_MIN_START, COUNT_MAX_START + 1)
            for b in range(a + 1, a + COUNT_MAX_SPAN + 1)
        )
    if intent == "reverse":
        return tuple(Turn(f"say {' '.join(words)} backwards", " ".join(words[::-1]), intent,
                          reserved_triple(words))
                     for words in permutations(REVERSE_WORDS, 3))
    if intent == "capital":
        return tuple(Turn(f"what is the capital of {country}", capital, intent,
                          country in TEXT_ONLY_COUNTRIES)
                     for country, capital in CAPITALS.items())
    if intent == "from":
        return tuple(Turn(f"i come from {country}", f"welcome friend from {country}", intent)
                     for country in CAPITALS)
    if intent == "visit":
        return tuple(Turn(f"i visited {capital}", f"{capital} is lovely", intent)
                     for capital in CAPITALS.values())
    if intent == "name":
        return tuple(Turn(f"{NAME_STATEMENT_PREFIX}{name}", f"nice to meet you {name}", intent)
                     for name in NAMES)
    if intent == "recall":
        return (recall_turn(None),)
    if intent == "remember":
        return tuple(Turn(f"{REMEMBER_PREFIX}{number_word(n)}", "okay", intent) for n in operands)
    if intent == "recall_number":
        return tuple(recall_number_turn(k, None) for k in operands)
    if intent == "small_talk":
        return tuple(Turn(user, reply, intent) for user, reply in SMALL_TALK.items())
    raise ValueError(f"unknown intent {intent!r}; known: {', '.join(INTENTS)}")


def single_turns(intents: Sequence[str] = ENUMERATED_INTENTS) -> list[Turn]:
    """Every distinct first turn of `intents` with its reply, in a fixed order."""
    return [turn for intent in intents for turn in intent_turns(intent)]


def speech_replies() -> list[str]:
    """Every reply a speech-training turn can have, reverse replies excepted (their triples are
    drawn): what the assistant-voice decoder may be fitted on; sorted. Held-out turns' replies
    that nothing else in speech training says (a text-only fact's capital alone) are not in it."""
    turns = [t for t in single_turns() if not t.held_out]
    replies = {t.reply for t in turns} | {recall_turn(name).reply for name in NAMES}
    replies |= {number_word(n) for n in range(2 * MAX_OPERAND + 1)}  # recall_number answers
    allowed = {w for t in turns for w in t.reply.split()} | set(NAMES)
    return sorted(r for r in replies if all(w in allowed for w in r.split()))


def vocabulary() -> list[str]:
    """Every word the domain uses, in users' turns and replies, sorted."""
    words = {w for t in single_turns(INTENTS) for text in (t.user, t.reply) for w in text.split()}
    words.update(UNKNOWN_NAME_REPLY.split() + UNKNOWN_NUMBER_REPLY.split())
    return sorted(words)


@cache
def _turns_by_user() -> dict[str, Turn]:
    return {turn.user: turn for turn in single_turns(INTENTS)}


def reply_to(user: str, earlier_users: Sequence[str] = ()) -> Turn:
    """Apply the reply rule to `user`, given the user's earlier utterances in the dialogue.

    A recall question is answered with the latest name (or number) stated earlier; everything
    else depends on the utterance alone. Out-of-domain text is a ValueError.
    """
    if user == RECALL_QUESTION:
        names = [name for name in map(stated_name, earlier_users) if name is not None]
        return recall_turn(names[-1] if names else None)
    turn = _turns_by_user().get(user)
    if turn is None:
        raise ValueError(f"{user!r} is not an utterance of the demo domain")
    if turn.intent == "recall_number":
        numbers = [n for n in map(stated_number, earlier_users) if n is not None]
        k = NUMBER_WORDS.index(user[len(RECALL_NUMBER_PREFIX):])
        return recall_number_turn(k, numbers[-1] if numbers else None)
    return turn


def allowed(turn: Turn, content: Content) -> bool:
    """Whether a generator for `content` may draw `turn`."""
    return content is not Content.SPEECH or not turn.held_out


def sample_turn(rng: random.Random, intents: Sequence[str] = INTENTS, *,
                content: Content = Content.SPEECH, earlier: Sequence[str] = ()) -> Turn:
    """One turn: an intent drawn uniformly from `intents`, then one of its utterances allowed by
    `content` (Content.TEST: a held-out one with probability TEST_HELD_OUT_SHARE where the
    intent has any), answered given the `earlier` user utterances of the dialogue.

    Drawing the intent first keeps small intents (recall, small talk) from vanishing next to
    the 121 additions and the 12,144 reverse triples.
    """
    intent = rng.choice(tuple(intents))
    turns = intent_turns(intent)
    pool = [t for t in turns if allowed(t, content)]
    if content is Content.TEST:
        held = [t for t in turns if t.held_out]
        if held and rng.random() < TEST_HELD_OUT_SHARE:
            pool = held
        elif held:
            pool = [t for t in turns if not t.held_out]
    return reply_to(rng.choice(pool).user, earlier)


def sample_dialogue(
    rng: random.Random,
    *,
    min_turns: int = 1,
    max_turns: int = MAX_DIALOGUE_TURNS,
    memory_rate: float = 0.5,
    intents: Sequence[str] = INTENTS,
    content: Content = Content.SPEECH,
) -> Dialogue:
    """A dialogue of `min_turns..max_turns` turns drawn with `sample_turn`.

    With probability `memory_rate` a dialogue of two or more turns states a name (or a number)
    and later asks for it back, so that corpora teach carrying it across turns (drawn
    independently, that pair would be rare); other recall questions stay unanswerable.
    """
    if not 1 <= min_turns <= max_turns <= MAX_DIALOGUE_TURNS:
        raise ValueError(f"need 1 ≤ min_turns ≤ max_turns ≤ {MAX_DIALOGUE_TURNS}")
    if not 0.0 <= memory_rate <= 1.0:
        raise ValueError(f"memory_rate must lie in [0, 1], got {memory_rate}")
    count = rng.randint(min_turns, max_turns)
    plan: list[Sequence[str]] = [intents] * count
    if count >= 2 and rng.random() < memory_rate:
        first = rng.randrange(count - 1)
        pair = rng.choice((("name", "recall"), ("remember", "recall_number")))
        plan[first], plan[rng.randrange(first + 1, count)] = (pair[0],), (pair[1],)
    turns: list[Turn] = []
    for choices in plan:
        turns.append(sample_turn(rng, choices, content=content,
                                 earlier=[t.user for t in turns]))
    return Dialogue(tuple(turns))


def sample_turns(seed: int, count: int, intents: Sequence[str] = INTENTS,
                 content: Content = Content.SPEECH) -> list[Turn]:
    """`count` single turns drawn with `sample_turn` from a generator seeded with `seed`."""
    rng = random.Random(seed)
    return [sample_turn(rng, intents, content=content) for _ in range(count)]


def sample_dialogues(
    seed: int,
    count: int,
    *,
    max_turns: int = MAX_DIALOGUE_TURNS,
    memory_rate: float = 0.5,
    intents: Sequence[str] = INTENTS,
    content: Content = Content.SPEECH,
) -> list[Dialogue]:
    """`count` dialogues of 1..`max_turns` turns drawn with `sample_dialogue`, seeded."""
    rng = random.Random(seed)
    return [sample_dialogue(rng, max_turns=max_turns, memory_rate=memory_rate, intents=intents,
                            content=content)
            for _ in range(count)]
