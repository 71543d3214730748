"""`icot talk` from the microphone to the speaker: server VAD turns, barge-in, until Ctrl-C.

The microphone streams 40 ms appends continuously; the server decides when a turn ends and
answers. The reply plays through `Playback`, which counts what the speaker really played, so
speaking over a reply stops it at once and `conversation.item.truncate` tells the server how much
was heard. Devices come from `sounddevice` (the `mic` extra), imported only here; without it, or
without a device, `open_devices` raises a TalkError that suggests `--wav`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from websockets.exceptions import ConnectionClosed

from clients.audio_files import BYTES_PER_SAMPLE, WIRE_RATE_HZ
from clients.connection import Connection, TalkError, closed_message, decode_audio
from clients.replies import Printer, Reply, UserWords
from clients.turns import configure_session

MIC_BLOCK_SAMPLES = 960  # 40 ms at 24 kHz
SPEAKER_BLOCK_SAMPLES = 480  # 20 ms
NO_DEVICE_HINT = "use --wav FILE … to talk from files, or --text \"…\" to type"


class Playback:
    """Reply audio queued for the speaker; counts samples played per reply item (thread-safe:
    the speaker callback reads from its own thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue = bytearray()
        self._item: str | None = None
        self._item_played = 0  # samples of `_item` already played

    def add(self, item_id: str, pcm16: bytes) -> None:
        with self._lock:
            if item_id != self._item:
                self._item, self._item_played = item_id, 0
            self._queue += pcm16

    def read(self, frames: int) -> bytes:
        """`frames` samples for the speaker: queued reply audio, then silence."""
        with self._lock:
            n = min(frames * BYTES_PER_SAMPLE, len(self._queue))
            chunk = bytes(self._queue[:n])
            del self._queue[:n]
            self._item_played += n // BYTES_PER_SAMPLE
        return chunk + bytes(frames * BYTES_PER_SAMPLE - n)

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._queue)

    def stop(self) -> tuple[str | None, int]:
        """Drop what is queued; (the item being played, milliseconds of it played)."""
        with self._lock:
            self._queue.clear()
            return self._item, self._item_played * 1000 // WIRE_RATE_HZ


def open_devices() -> Any:
    """The sounddevice module with a usable input and output device, or a TalkError."""
    try:
        import sounddevice
    except ImportError:
        raise TalkError("the microphone needs the `mic` extra (pip install 'icot-voice[mic]'); "
                        + NO_DEVICE_HINT) from None
    except OSError as exc:  # the package is there, the PortAudio library is not
        raise TalkError(f"no audio device: {exc} (apt-get install libportaudio2); "
                        + NO_DEVICE_HINT) from None
    try:
        sounddevice.query_devices(kind="input")
        sounddevice.query_devices(kind="output")
    except (sounddevice.PortAudioError, ValueError) as exc:
        raise TalkError(f"no audio device: {exc}; " + NO_DEVICE_HINT) from None
    return sounddevice


async def talk_live(conn: Connection, sounddevice: Any, printer: Printer) -> None:
    """Microphone → server → speaker until Ctrl-C or the server closes the session."""
    await configure_session(conn, turn_detection={"type": "server_vad"})
    loop = asyncio.get_running_loop()
    mic_chunks: asyncio.Queue[bytes] = asyncio.Queue()
    playback = Playback()

    def on_mic(indata: Any, frames: int, when: Any, status: Any) -> None:
        loop.call_soon_threadsafe(mic_chunks.put_nowait, bytes(indata))

    def on_speaker(outdata: Any, frames: int, when: Any, status: Any) -> None:
        outdata[:] = playback.read(frames)

    mic = sounddevice.RawInputStream(samplerate=WIRE_RATE_HZ, channels=1, dtype="int16",
                                     blocksize=MIC_BLOCK_SAMPLES, callback=on_mic)
    speaker = sounddevice.RawOutputStream(samplerate=WIRE_RATE_HZ, channels=1, dtype="int16",
                                          blocksize=SPEAKER_BLOCK_SAMPLES, callback=on_speaker)
    printer.say("listening: speak, pause, and the reply plays (headphones avoid echo); "
                "Ctrl-C ends")
    with mic, speaker:
        sender = asyncio.create_task(_send_microphone(conn, mic_chunks))
        try:
            await _handle_events(conn, playback, printer)
        finally:
            sender.cancel()


async def _send_microphone(conn: Connection, chunks: asyncio.Queue[bytes]) -> None:
    while True:
        await conn.append(await chunks.get())


async def _handle_events(conn: Connection, playback: Playback, printer: Printer) -> None:
    reply: Reply | None = None
    words = UserWords(printer)
    number = 0
    responding = False
    while True:
        try:
            event = await conn.recv()
        except ConnectionClosed as closed:
            raise TalkError(f"the server closed the session: {closed_message(closed)}") from None
        kind = event["type"]
        if words.take(event, number):
            continue
        if kind == "input_audio_buffer.speech_started":
            if playback.busy or responding:  # barge-in: stop the reply, say what was heard
                item_id, played_ms = playback.stop()
                if item_id is not None:
                    await conn.send("conversation.item.truncate", item_id=item_id,
                                    content_index=0, audio_end_ms=played_ms)
                printer.say(f"    (interrupted after {played_ms} ms)")
        elif kind == "input_audio_buffer.speech_stopped":
            number += 1
            reply = Reply(number, started=time.perf_counter())
            printer.user_turn(number, "(spoke)")
        elif kind == "response.created":
            responding = True
        elif kind == "error":
            printer.server_error(event["error"])
        elif reply is not None:
            if kind == "response.output_audio.delta":
                playback.add(event.get("item_id") or reply.item_id or "", decode_audio(event))
            if reply.take(event, printer):
                printer.reply_done(reply)
                reply = None
        if kind == "response.done":
            responding = False
