"""A microphone and a speaker without a sound card, for the microphone mode's tests: the
`sounddevice` calls `icot talk` makes (RawInputStream, RawOutputStream), with the microphone
playing a WAV (then silence, or again in a loop) and the speaker recording what it was given,
both on their own threads at real-time pace like PortAudio's callbacks. A stand-in for hardware
only: everything beyond the device boundary (the client, the server, the model) is real.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from clients.audio_files import BYTES_PER_SAMPLE, WIRE_RATE_HZ, read_pcm16


class _Stream:
    def __init__(self, samplerate: int, blocksize: int, callback, **_: object) -> None:
        assert samplerate == WIRE_RATE_HZ
        self.blocksize = blocksize
        self.callback = callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        period_s = self.blocksize / WIRE_RATE_HZ
        started = time.perf_counter()
        for block in range(1_000_000):
            if self._stop.is_set():
                return
            self.tick()
            time.sleep(max(0.0, started + (block + 1) * period_s - time.perf_counter()))


class FileDevices:
    """Stands in for the `sounddevice` module: `microphone` plays `wav` (looped if `loop`)."""

    def __init__(self, wav: Path, *, loop: bool) -> None:
        self.pcm = read_pcm16(wav)
        self.loop = loop
        self.played = bytearray()  # everything the speaker was given, 24 kHz PCM16
        devices = self

        class RawInputStream(_Stream):
            position = 0

            def tick(self) -> None:
                size = self.blocksize * BYTES_PER_SAMPLE
                if devices.loop:
                    self.position %= len(devices.pcm)
                chunk = devices.pcm[self.position:self.position + size]
                self.position += size
                self.callback(chunk + bytes(size - len(chunk)), self.blocksize, None, None)

        class RawOutputStream(_Stream):
            def tick(self) -> None:
                out = bytearray(self.blocksize * BYTES_PER_SAMPLE)
                self.callback(out, self.blocksize, None, None)
                devices.played += out

        self.RawInputStream = RawInputStream
        self.RawOutputStream = RawOutputStream
