"""What `icot talk` shows of each turn: reply text as it arrives, the user's words, first audio.

`Reply` gathers one response's events (text, audio, status, time to first audio); `UserWords`
matches the server's transcripts of the user's audio to turns; `Printer` writes the conversation
to stdout and progress and errors to stderr. No sockets, no devices.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from clients.audio_files import duration_s
from clients.connection import decode_audio

TEXT_DELTAS = ("response.output_audio_transcript.delta", "response.output_text.delta")
USER_TRANSCRIPT = "conversation.item.input_audio_transcription.completed"
USER_TRANSCRIPT_FAILED = "conversation.item.input_audio_transcription.failed"


@dataclass
class Reply:
    """One turn's answer, filled from server events; `started` is when the user finished."""

    number: int
    started: float = field(default_factory=time.perf_counter)
    text: str = ""
    audio: bytearray = field(default_factory=bytearray)  # 24 kHz PCM16
    item_id: str | None = None
    first_audio: float | None = None
    status: str | None = None  # response.done status; None while in progress
    error: str | None = None

    @property
    def ttfa_ms(self) -> float | None:
        return None if self.first_audio is None else (self.first_audio - self.started) * 1000

    @property
    def failed(self) -> bool:
        return self.error is not None or self.status in (None, "failed")

    def take(self, event: dict[str, Any], printer: Printer) -> bool:
        """Apply one server event; True when it ended the response (`response.done`)."""
        kind = event["type"]
        if kind == "response.output_audio.delta":
            if self.first_audio is None:
                self.first_audio = time.perf_counter()
            self.item_id = event.get("item_id", self.item_id)
            self.audio += decode_audio(event)
        elif kind in TEXT_DELTAS:
            printer.reply_delta(self, event["delta"])
        elif kind == "response.output_item.added":
            self.item_id = event["item"]["id"]
        elif kind == "response.done":
            response = event["response"]
            self.status = response["status"]
            details = response.get("status_details") or {}
            if self.status == "failed":
                self.error = (details.get("error") or {}).get("code", "failed")
            return True
        return False


class UserWords:
    """The user's words as the server transcribes them, matched to turns by item id: they may
    arrive after the reply (the server transcribes off the reply's critical path)."""

    def __init__(self, printer: Printer) -> None:
        self.printer = printer
        self.turn_of: dict[str, int] = {}  # user item id → turn number
        self.heard: dict[int, str] = {}
        self.transcribing = False  # the server has sent a transcription event

    def take(self, event: dict[str, Any], number: int) -> bool:
        """Note a committed user item of turn `number`; True when `event` was a transcript."""
        kind = event["type"]
        if kind == "input_audio_buffer.committed":
            self.turn_of[event["item_id"]] = number
        elif kind in (USER_TRANSCRIPT, USER_TRANSCRIPT_FAILED):
            self.transcribing = True
            turn = self.turn_of.get(event.get("item_id"))
            if turn is not None and kind == USER_TRANSCRIPT:
                self.heard[turn] = event["transcript"].strip()
                self.printer.user_said(turn, self.heard[turn])
            elif turn is not None:
                self.heard[turn] = ""
                self.printer.problem(f"the server could not transcribe turn {turn}")
            return True
        return False

    @property
    def pending(self) -> bool:
        """Whether a transcribing server still owes a turn its transcript."""
        return self.transcribing and any(t not in self.heard for t in self.turn_of.values())


class Printer:
    """The conversation on stdout; progress lines and problems on stderr."""

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.out = out
        self.err = err
        self._replying: Reply | None = None

    def say(self, line: str) -> None:
        self._end_reply_line()
        print(line, file=self.out, flush=True)

    def user_turn(self, number: int, what: str) -> None:
        self.say(f"[{number}] you: {what}")

    def user_said(self, number: int, transcript: str) -> None:
        self.say(f"    [{number}] heard: {transcript}")

    def reply_delta(self, reply: Reply, delta: str) -> None:
        reply.text += delta
        if self._replying is not reply:
            self._end_reply_line()
            print("    assistant:", end="", file=self.out)
            self._replying = reply
            delta = delta if delta.startswith(" ") else " " + delta
        print(delta, end="", file=self.out, flush=True)

    def reply_done(self, reply: Reply, saved: Path | None = None) -> None:
        self._end_reply_line()
        parts = []
        if reply.ttfa_ms is not None:
            parts.append(f"first audio {reply.ttfa_ms:.0f} ms")
        if reply.audio:
            parts.append(f"{duration_s(bytes(reply.audio)):.1f} s of speech")
        parts.append(reply.status or "no response")
        if reply.error:
            parts.append(reply.error)
        if saved is not None:
            parts.append(f"saved {saved}")
        self.say("    " + " · ".join(parts))

    def progress(self, name: str, sent_s: float, total_s: float) -> None:
        end = "\n" if sent_s >= total_s else ""
        print(f"\r    sending {name}: {sent_s:5.1f} / {total_s:.1f} s", end=end, file=self.err,
              flush=True)

    def problem(self, message: str) -> None:
        self._end_reply_line()
        print(f"icot talk: {message}", file=self.err, flush=True)

    def server_error(self, error: dict[str, Any]) -> None:
        self.problem(f"server error {error.get('code')}: {error.get('message')}")

    def _end_reply_line(self) -> None:
        if self._replying is not None:
            print(file=self.out, flush=True)
            self._replying = None
