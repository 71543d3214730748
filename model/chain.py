"""The three answer chains a speech LLM can be trained and served with.

A-T-T-A: user audio → transcript → reply text → reply audio (the explicit chain of thought).
A-T-A:   user audio → reply text → reply audio (ASR internalized by ICoT; the paper's model).
A-A:     user audio → reply audio (transcript and reply text both internalized).

This module only names the chains and what each emits; model/template.py renders their prompts
and training examples, model/parser.py reads what they generate.
"""

from __future__ import annotations

from enum import StrEnum


class Chain(StrEnum):
    ATTA = "A-T-T-A"
    ATA = "A-T-A"
    AA = "A-A"

    @classmethod
    def parse(cls, value: str | Chain) -> Chain:
        """`"A-T-A"` → Chain.ATA; an unknown name is a ValueError listing the known ones."""
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(c.value for c in cls)
            raise ValueError(f"unknown chain {value!r}; expected one of {known}") from None

    @property
    def emits_transcript(self) -> bool:
        """The model writes the user's transcript before replying."""
        return self is Chain.ATTA

    @property
    def emits_reply_text(self) -> bool:
        """The model writes the reply as text before speaking it."""
        return self is not Chain.AA
