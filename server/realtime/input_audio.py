"""A session's one input path: wire PCM16 → 16 kHz float, limits, the buffer and turn detection.

Every way user audio comes in passes here: `append` (input_audio_buffer.append) and `item_audio`
(conversation.item.create) both check the turn and session limits, count the audio and resample
it the same way. Appended audio is kept on one timeline (16 kHz samples since the session
began), so VAD offsets and committed turns line up. With `server_vad` the buffer holds what was
appended since the last turn (at most `max_turn_s`: the oldest idle audio goes first) and a
detected turn starts `prefix_padding_ms` before its speech, so a manual commit under server_vad
commits everything appended since the last turn; `append` returns
the turn starts and ends it detected (prefix padding + speech, with the item id the turn will
have) for the session to act on. Without turn detection everything appended stays until commit
or clear. Synchronous and CPU-bound: the session calls it from a worker thread. No networking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.audio import MODEL_INPUT_RATE_HZ, StreamResampler, pcm16_to_float
from server.errors import ErrorCode, ProtocolError, new_id
from server.limits import AudioBudget
from server.metrics import Metrics
from server.vad import SileroVad, SpeechEnd, SpeechStart, VadConfig, VadStream


@dataclass(frozen=True)
class TurnStarted:
    audio_start_ms: int
    item_id: str  # the user item this turn becomes when it ends


@dataclass(frozen=True)
class TurnEnded:
    audio_end_ms: int
    item_id: str
    samples: np.ndarray  # (T,) float32 at 16 kHz: prefix padding + speech


TurnEvent = TurnStarted | TurnEnded


class InputAudio:
    """Limits, buffer and detector for one session; `vad_config=None` means manual turns."""

    def __init__(self, vad: SileroVad, *, wire_rate: int, vad_config: VadConfig | None,
                 max_turn_s: float, budget: AudioBudget, metrics: Metrics) -> None:
        self._vad_model = vad
        self._resampler = StreamResampler(wire_rate, MODEL_INPUT_RATE_HZ)
        self._max_turn_s = max_turn_s
        self._max_turn_samples = int(max_turn_s * MODEL_INPUT_RATE_HZ)
        self.budget = budget
        self._metrics = metrics
        self._chunks: list[np.ndarray] = []
        self._start = 0  # timeline sample of the buffer's first sample
        self._end = 0  # timeline sample after the buffer's last sample
        self._vad: VadStream | None = None
        self._vad_origin = 0  # timeline sample where the current VAD stream began
        self._turn_start: int | None = None  # timeline sample where buffered turn audio begins
        self._turn_item_id: str | None = None  # the item id of the speech in progress
        self.set_turn_detection(vad_config)

    @property
    def wire_rate(self) -> int:
        return self._resampler.from_rate

    @property
    def buffered_samples(self) -> int:
        return self._end - self._start

    @property
    def speaking(self) -> bool:
        return self._vad is not None and self._vad.speaking

    def set_wire_rate(self, rate: int) -> None:
        if rate != self.wire_rate:
            self._extend(self._resampler.flush())
            self._resampler = StreamResampler(rate, MODEL_INPUT_RATE_HZ)

    def set_turn_detection(self, config: VadConfig | None) -> None:
        """Start a fresh detector (or none); speech in progress is forgotten, audio kept."""
        self._vad = self._vad_model.stream(config) if config is not None else None
        self._vad_origin = self._end
        self._turn_start = None
        self._turn_item_id = None
        self._trim_idle(self._max_turn_samples)

    def append(self, pcm: bytes) -> list[TurnEvent]:
        """Add PCM16 at the wire rate; return the turn starts and ends detected in it
        (server_vad only). Audio that would make the turn too long (`turn_audio_too_long`) or
        pass the session's budget is refused whole: neither buffered, scored nor counted."""
        incoming = len(pcm) // 2 * MODEL_INPUT_RATE_HZ // self.wire_rate
        self._trim_idle(self._max_turn_samples - incoming)  # idle audio makes room, not refusals
        if self.buffered_samples + incoming > self._max_turn_samples:
            raise ProtocolError(
                ErrorCode.TURN_AUDIO_TOO_LONG,
                f"the turn would pass {self._max_turn_samples / MODEL_INPUT_RATE_HZ:g} s of audio; "
                "commit (or pause, with server_vad) before sending more")
        self._spend(pcm)
        samples = self._resampler.process(pcm16_to_float(pcm))  # (T,) at 16 kHz
        self._extend(samples)
        if self._vad is None:
            return []
        events: list[TurnEvent] = []
        for event in self._vad.push(samples):
            if isinstance(event, SpeechStart):
                start = self._vad_origin + _samples(event.start_ms)
                prefix = _samples(self._vad.config.prefix_padding_ms)
                self._turn_start = max(self._start, start - prefix)
                self._turn_item_id = new_id("item")
                events.append(TurnStarted(audio_start_ms=_ms(start), item_id=self._turn_item_id))
            elif isinstance(event, SpeechEnd):
                end = self._vad_origin + _samples(event.end_ms)
                item_id, self._turn_item_id = self._turn_item_id, None
                assert item_id is not None  # a VadStream ends only speech it started
                events.append(TurnEnded(audio_end_ms=_ms(end), item_id=item_id,
                                        samples=self._take(end)))
        self._trim_idle(self._max_turn_samples)
        return events

    def item_audio(self, pcm: bytes) -> np.ndarray:
        """A whole turn of PCM16 at the wire rate (conversation.item.create) as (T,) float32
        at 16 kHz, held to the same limits as appended audio; the buffer is left alone."""
        seconds = len(pcm) / 2 / self.wire_rate
        if seconds > self._max_turn_s:
            raise ProtocolError(ErrorCode.TURN_AUDIO_TOO_LONG,
                                f"the item holds {seconds:.1f} s of audio; the limit is "
                                f"{self._max_turn_s:g} s")
        self._spend(pcm)
        resampler = StreamResampler(self.wire_rate, MODEL_INPUT_RATE_HZ)
        return np.concatenate([resampler.process(pcm16_to_float(pcm)), resampler.flush()])

    def commit(self) -> np.ndarray:
        """Hand over everything buffered (manual commit); refuse an empty buffer."""
        if self._vad is None:  # the resampler's held-back tail ends this turn, not the next
            self._extend(self._resampler.flush())
            self._resampler = StreamResampler(self.wire_rate, MODEL_INPUT_RATE_HZ)
        if self.buffered_samples == 0:
            raise ProtocolError(ErrorCode.BUFFER_EMPTY,
                                "the input audio buffer is empty; append audio before commit")
        return self._take(self._end)

    def clear(self) -> None:
        """Drop everything appended so far, the resampler's held-back tail included."""
        self._resampler = StreamResampler(self.wire_rate, MODEL_INPUT_RATE_HZ)
        self._chunks, self._start = [], self._end
        if self._turn_start is not None:
            self._turn_start = self._end

    def _spend(self, pcm: bytes) -> None:
        """Count PCM16 at the wire rate against the session's budget and in the metrics."""
        seconds = len(pcm) / 2 / self.wire_rate
        self.budget.spend(seconds)
        self._metrics.audio_in_seconds.inc(seconds)

    def _extend(self, samples: np.ndarray) -> None:
        if samples.size:
            self._chunks.append(samples)
            self._end += samples.size

    def _take(self, end: int) -> np.ndarray:
        """Turn audio [turn start or buffer start, end); the buffer keeps what follows `end`."""
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
        first = max(self._turn_start if self._turn_start is not None else self._start,
                    self._start)
        end = min(max(end, first), self._end)
        turn = audio[first - self._start:end - self._start].copy()
        self._chunks = [audio[end - self._start:]]
        self._start = end
        self._turn_start = None
        return turn

    def _trim_idle(self, keep: int) -> None:
        """While nobody speaks (server_vad), keep at most the newest `keep` samples."""
        if self._vad is None or self._vad.speaking:
            return
        keep = max(keep, 0)
        if self.buffered_samples > keep:
            audio = np.concatenate(self._chunks)
            self._chunks = [audio[audio.size - keep:]] if keep else []
            self._start = self._end - keep


def _samples(ms: int) -> int:
    return ms * MODEL_INPUT_RATE_HZ // 1000


def _ms(samples: int) -> int:
    return samples * 1000 // MODEL_INPUT_RATE_HZ
