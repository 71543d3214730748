"""Streaming voice activity detection for `server_vad` turn detection, with silero-vad.

One `SileroVad` holds the ONNX model shipped inside the `silero-vad` package (loaded offline) and
is shared by all sessions; each session owns a `VadStream` holding the recurrent state, so
sessions never disturb each other. Audio goes in as 16 kHz float32 in pieces of any size; the
stream scores 512-sample (32 ms) windows and reports speech start and end as offsets in
milliseconds from the stream's first sample. Knows nothing of WebSockets or of the model runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.audio import MODEL_INPUT_RATE_HZ

WINDOW_SAMPLES = 512  # the model's fixed window at 16 kHz (32 ms)
CONTEXT_SAMPLES = 64  # trailing samples of the previous window the model sees again
STATE_SHAPE = (2, 1, 128)  # recurrent state, (layers, batch, hidden)
HYSTERESIS = 0.15  # speech ends only below threshold - HYSTERESIS (as silero's own iterator)


@dataclass(frozen=True)
class VadConfig:
    """threshold: speech probability that starts speech; prefix_padding_ms: audio kept before
    the detected start; silence_duration_ms: silence that ends speech."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {self.threshold}")
        if self.prefix_padding_ms < 0:
            raise ValueError(f"prefix_padding_ms must be ≥ 0, got {self.prefix_padding_ms}")
        if self.silence_duration_ms <= 0:
            raise ValueError(f"silence_duration_ms must be > 0, got {self.silence_duration_ms}")

    @property
    def end_threshold(self) -> float:
        return max(self.threshold - HYSTERESIS, self.threshold / 2)


@dataclass(frozen=True)
class SpeechStart:
    start_ms: int  # first window scored as speech


@dataclass(frozen=True)
class SpeechEnd:
    end_ms: int  # where the silence that ended speech began


VadEvent = SpeechStart | SpeechEnd


class SileroVad:
    """The shared silero-vad model; `stream` makes per-session detectors."""

    def __init__(self) -> None:
        from silero_vad import load_silero_vad

        self._session = load_silero_vad(onnx=True).session  # onnxruntime, run() is thread-safe
        self._rate = np.array(MODEL_INPUT_RATE_HZ, dtype=np.int64)

    def stream(self, config: VadConfig) -> VadStream:
        return VadStream(self, config)

    def score(self, window: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        """Speech probability of one window (1, CONTEXT + WINDOW) and the next state."""
        prob, next_state = self._session.run(
            None, {"input": window, "state": state, "sr": self._rate})
        return float(prob[0, 0]), next_state


class VadStream:
    """Feed 16 kHz audio with `push`; get `SpeechStart` / `SpeechEnd` events as they happen."""

    def __init__(self, model: SileroVad, config: VadConfig) -> None:
        self.model = model
        self.config = config
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros((1, CONTEXT_SAMPLES), dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)  # samples not yet making a full window
        self._scored = 0  # samples scored so far (window starts are multiples of WINDOW_SAMPLES)
        self._speaking = False
        self._silence_from: int | None = None  # sample where the current quiet run began
        self._silence_samples = config.silence_duration_ms * MODEL_INPUT_RATE_HZ // 1000

    @property
    def speaking(self) -> bool:
        return self._speaking

    def push(self, samples: np.ndarray) -> list[VadEvent]:
        """Score every full window now available; return the events in time order."""
        audio = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        full = audio.size - audio.size % WINDOW_SAMPLES
        events: list[VadEvent] = []
        for offset in range(0, full, WINDOW_SAMPLES):
            window = audio[None, offset:offset + WINDOW_SAMPLES]  # (1, WINDOW)
            inputs = np.concatenate([self._context, window], axis=1)  # (1, CONTEXT + WINDOW)
            prob, self._state = self.model.score(inputs, self._state)
            self._context = inputs[:, -CONTEXT_SAMPLES:]
            event = self._step(prob, self._scored)
            if event is not None:
                events.append(event)
            self._scored += WINDOW_SAMPLES
        self._pending = audio[full:].copy()
        return events

    def _step(self, prob: float, start: int) -> VadEvent | None:
        if not self._speaking:
            if prob >= self.config.threshold:
                self._speaking = True
                self._silence_from = None
                return SpeechStart(start_ms=_ms(start))
            return None
        if prob >= self.config.threshold:
            self._silence_from = None
        elif prob < self.config.end_threshold and self._silence_from is None:
            self._silence_from = start
        if (self._silence_from is not None
                and start + WINDOW_SAMPLES - self._silence_from >= self._silence_samples):
            end = self._silence_from
            self._speaking = False
            self._silence_from = None
            return SpeechEnd(end_ms=_ms(end))
        return None


def _ms(samples: int) -> int:
    return samples * 1000 // MODEL_INPUT_RATE_HZ
