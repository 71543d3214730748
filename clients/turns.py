"""Scripted turns for `icot talk`: audio files spoken and typed text, one conversation, in order.

Each file is one user turn streamed as 100 ms appends at real-time pace (`fast`: as fast as the
socket takes them), then committed and answered (manual turn detection: a file's pauses never
split it). A typed turn is a `conversation.item.create` with `input_text` and a `response.create`.
Time to first audio counts from the commit (or the typed turn) being sent. Replies are saved as
24 kHz WAV files when an output folder is given.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from websockets.exceptions import ConnectionClosed

from clients.audio_files import BYTES_PER_SAMPLE, WIRE_RATE_HZ, duration_s, write_wav
from clients.connection import Connection, TalkError, closed_message, session_update
from clients.replies import Printer, Reply, UserWords

CHUNK_MS = 100
LONG_FILE_S = 10.0  # files longer than this show a progress line while they stream
PROGRESS_EVERY_S = 1.0
TURN_TIMEOUT_S = 120.0  # no event for this long: the turn is given up
TRANSCRIPT_WAIT_S = 5.0  # after the last reply, how long transcripts still owed are awaited


@dataclass(frozen=True)
class Turn:
    """One user turn: `pcm` (24 kHz PCM16) for a spoken file, `text` for a typed one."""

    kind: Literal["audio", "text"]
    label: str  # the file's name or the typed text, as shown
    pcm: bytes = b""
    text: str = ""


async def run_turns(conn: Connection, turns: Sequence[Turn], printer: Printer, *,
                    fast: bool = False, out_dir: Path | None = None) -> list[Reply]:
    """Say every turn in order and wait for each reply; the replies, failed ones included."""
    await configure_session(conn, turn_detection=None)
    words = UserWords(printer)
    replies = []
    for number, turn in enumerate(turns, start=1):
        reply = Reply(number)
        replies.append(reply)
        if turn.kind == "audio":
            printer.user_turn(number, f"{turn.label} ({duration_s(turn.pcm):.1f} s of speech)")
            appends = await _speak(conn, turn, printer, fast)
            if appends is None:
                reply.error = "the server refused the turn's audio"
                printer.reply_done(reply)
                continue
            stops = {await conn.send("input_audio_buffer.commit")}
        else:
            printer.user_turn(number, f"{turn.label} (typed)")
            appends = set()
            stops = {await conn.send("conversation.item.create", item=_typed_item(turn.text))}
        stops.add(await conn.send("response.create"))
        reply.started = time.perf_counter()
        await collect(conn, reply, printer, stops, appends, words)
        saved = None
        if out_dir is not None and reply.audio:
            saved = out_dir / f"reply-{number:02d}.wav"
            write_wav(saved, bytes(reply.audio))
        printer.reply_done(reply, saved)
    await _await_transcripts(conn, words)
    return replies


async def configure_session(conn: Connection, turn_detection: dict | None) -> None:
    """Send our session settings and wait for `session.updated`; a refusal is a TalkError."""
    event_id = await conn.send("session.update", session=session_update(turn_detection))
    while True:
        event = await _next(conn)
        if event["type"] == "session.updated":
            return
        if event["type"] == "error" and event["error"].get("event_id") == event_id:
            error = event["error"]
            raise TalkError(f"the server refused the session settings: {error.get('code')}: "
                            f"{error.get('message')}")


async def collect(conn: Connection, reply: Reply, printer: Printer, stops: set[str],
                  appends: set[str], words: UserWords) -> None:
    """Take events into `reply` until its `response.done`, or an error on one of `stops` (the
    events that would have started it), or TURN_TIMEOUT_S of silence. A refused append (seen
    late when streaming fast) marks the reply failed: it answers only part of the turn."""
    while True:
        try:
            event = await _next(conn, TURN_TIMEOUT_S)
        except TimeoutError:
            reply.error = f"no answer within {TURN_TIMEOUT_S:.0f} s"
            return
        if event["type"] == "error":
            refused = event["error"].get("event_id")
            if not (refused in appends and reply.error):  # one line for a run of appends
                printer.server_error(event["error"])
            if refused in stops or refused in appends:
                reply.error = event["error"].get("code", "error")
            if refused in stops:
                return
        elif not words.take(event, reply.number) and reply.take(event, printer):
            return


async def _speak(conn: Connection, turn: Turn, printer: Printer, fast: bool) -> set[str] | None:
    """Stream the turn's audio: the appends' event ids, or None when the server refused one
    while streaming (the turn stops there: the buffer is cleared, nothing is committed)."""
    step = WIRE_RATE_HZ * CHUNK_MS // 1000 * BYTES_PER_SAMPLE
    total_s = duration_s(turn.pcm)
    show_progress = total_s > LONG_FILE_S
    started = time.perf_counter()
    shown_s = 0.0
    appends = set()
    for offset in range(0, len(turn.pcm), step):
        sent_s = offset / BYTES_PER_SAMPLE / WIRE_RATE_HZ
        if not fast:
            await asyncio.sleep(max(0.0, started + sent_s - time.perf_counter()))
        appends.add(await conn.append(turn.pcm[offset:offset + step]))
        errors = await conn.errors_so_far()
        for error in errors:
            printer.server_error(error)
        if errors:
            if show_progress:
                printer.progress(turn.label, sent_s, sent_s)  # ends the progress line
            await conn.send("input_audio_buffer.clear")
            return None
        if show_progress and sent_s - shown_s >= PROGRESS_EVERY_S:
            printer.progress(turn.label, sent_s, total_s)
            shown_s = sent_s
    if show_progress:
        printer.progress(turn.label, total_s, total_s)
    return appends


async def _await_transcripts(conn: Connection, words: UserWords) -> None:
    deadline = time.monotonic() + TRANSCRIPT_WAIT_S
    while words.pending and time.monotonic() < deadline:
        try:
            event = await _next(conn, max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            return
        if event["type"] == "error":
            words.printer.server_error(event["error"])
        else:
            words.take(event, 0)


def _typed_item(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


async def _next(conn: Connection, timeout_s: float | None = None) -> dict:
    try:
        return await conn.recv(timeout_s)
    except ConnectionClosed as closed:
        raise TalkError(f"the server closed the session: {closed_message(closed)}") from None
