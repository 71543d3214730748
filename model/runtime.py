"""The serving runtime: one loaded bundle and one engine, shared by every conversation.

`Runtime.load(dir)` loads the bundle, builds the engine over its model and the `TurnRunner` that
answers every turn (model/turn.py), handing it the parts it needs; `warmup()` pins the codec's
BLAS to one thread, runs a prefill, captures the decode graphs (CUDA) and exercises the codec,
then starts the engine thread. The server holds one Runtime and makes a `Conversation` per
session. Knows no HTTP.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from model.bundle import Bundle
from model.chain import Chain
from model.codecs import SpeechCodec, StreamingDecoder
from model.conversation import Conversation
from model.engine import Engine, EngineConfig
from model.turn import TurnRunner

WARMUP_AUDIO_S = 1.0
# numpy/scipy BLAS threads while serving. The unit codec's matrix products cover one turn or one
# chunk (≤ a few hundred frames), too small to gain from a second thread, and OpenBLAS workers
# busy-wait for a while after every call: on the 2-core dev CPU they took a core from the engine
# thread, and an 80-token prefill right after the turn's encode took 12.2 ms instead of 8.3 ms.
CODEC_BLAS_THREADS = 1


@dataclass(frozen=True)
class RuntimeConfig:
    """How the bundle is served.

    device: "cpu", "cuda", "cuda:1" …
    dtype: None picks float32 on CPU and bfloat16 on GPUs; or "float32", "bfloat16", "float16".
    max_slots: conversations generating at once (engine slots; also the admission limit).
    max_seq_len: prompt + reply tokens per request; None uses the model's context length.
    prefill_chunk_tokens: prompt tokens prefilled per engine step (bounds others' stalls).
    """

    device: str = "cpu"
    dtype: str | None = None
    max_slots: int = 4
    max_seq_len: int | None = None
    prefill_chunk_tokens: int = 256

    def __post_init__(self) -> None:
        if self.max_slots < 1:
            raise ValueError(f"max_slots must be ≥ 1, got {self.max_slots}")
        if self.max_seq_len is not None and self.max_seq_len < 2:
            raise ValueError(f"max_seq_len must be ≥ 2, got {self.max_seq_len}")


class Runtime:
    """A bundle, its engine and its codec; `new_conversation()` for each client."""

    def __init__(self, bundle: Bundle, engine: Engine) -> None:
        self.bundle = bundle
        self.engine = engine
        self.turns = TurnRunner(
            engine=engine,
            codec=bundle.codec,
            template=bundle.template,
            generation=bundle.config.generation,
            chains=self.chains,
            input_level_dbfs=bundle.config.input_level_dbfs,
            prompt_budget=self.prompt_budget,
        )

    @classmethod
    def load(cls, bundle_dir: str | Path, config: RuntimeConfig | None = None) -> Runtime:
        """Load the bundle onto `config.device` and build (not yet start) its engine."""
        config = config or RuntimeConfig()
        bundle = Bundle.load(bundle_dir, device=config.device, dtype=config.dtype)
        max_seq_len = config.max_seq_len or bundle.context_tokens
        engine_config = EngineConfig(
            max_slots=config.max_slots,
            max_seq_len=max_seq_len,
            prefill_chunk_tokens=config.prefill_chunk_tokens,
            attention_block_tokens=min(EngineConfig.attention_block_tokens, max_seq_len),
        )
        return cls(bundle, Engine(bundle.model, engine_config))

    @property
    def codec(self) -> SpeechCodec:
        return self.bundle.codec

    @property
    def chain(self) -> Chain:
        return self.bundle.chain

    @property
    def chains(self) -> tuple[Chain, ...]:
        """Chains a request may ask for: the one the bundle was trained for."""
        return (self.bundle.chain,)

    @property
    def sample_rate(self) -> int:
        """Sample rate of the reply PCM (the codec's)."""
        return self.codec.sample_rate

    @property
    def max_slots(self) -> int:
        return self.engine.config.max_slots

    @property
    def active_slots(self) -> int:
        return self.max_slots - self.engine.free_slots

    @property
    def max_seq_len(self) -> int:
        return self.engine.config.max_seq_len

    @property
    def prompt_budget(self) -> int:
        """Most prompt tokens a turn may use, leaving room for the longest reply."""
        max_new = self.bundle.config.generation.max_new_tokens
        return max(1, min(self.bundle.prompt_budget, self.max_seq_len - max_new))

    @property
    def failure(self) -> BaseException | None:
        """The error of the engine's first failed step, if one failed (the server then stops)."""
        return self.engine.failure

    def new_conversation(self) -> Conversation:
        return Conversation(self.turns, self.codec.frame_rate)

    async def warmup(self) -> None:
        """Pay every first-call cost before serving, then start the engine thread.

        Also limits this process's numpy/scipy BLAS to `CODEC_BLAS_THREADS` (torch's own threads
        are untouched): a serving process needs its cores for the engine.
        """
        if self.engine.running:
            return
        threadpool_limits(CODEC_BLAS_THREADS, user_api="blas")  # process-wide: see the constant
        await asyncio.to_thread(self._warm_codec)
        await asyncio.to_thread(self.engine.warmup)
        self.engine.start()

    async def close(self) -> None:
        await asyncio.to_thread(self.engine.close)

    def _warm_codec(self) -> None:
        silence = np.zeros(int(WARMUP_AUDIO_S * self.codec.sample_rate), dtype=np.float32)
        units = self.codec.encode(silence)
        decoder = StreamingDecoder(self.codec)
        decoder.push(units)
        decoder.flush()
