"""What callers hand the engine and get back: configuration, requests, handles and errors.

`Request` is token ids in (prompt, stop ids, segment rules, sampling); `RequestHandle` is token
ids out, iterated from asyncio (`async for token_id in handle`) while the engine thread pushes
them, or read as `tokens` after a synchronous run. Knows nothing of models, caches or the
scheduling step (model/engine.py), nor of audio, text or HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from dataclasses import dataclass
from typing import Literal, Protocol

from model.sampling import GREEDY, SamplingParams, SegmentRule

FinishReason = Literal["stop", "max_tokens", "length", "cancelled", "error"]


class EngineBusy(RuntimeError):
    """Every slot is taken; the server answers 503 / WebSocket close 1013 (try again later)."""


class EngineClosed(RuntimeError):
    """The engine is shut down (or was never started for asynchronous use)."""


class EngineError(RuntimeError):
    """A request failed inside the engine step; the cause is chained."""


@dataclass(frozen=True)
class EngineConfig:
    """Capacity and scheduling of one engine.

    max_slots: requests generating at once; also the largest decode batch.
    max_seq_len: prompt plus generated tokens per request (the cache's columns).
    prefill_chunk_tokens: prompt tokens prefilled per engine step, across requests; a long prompt
        is split so that decoding slots wait at most one chunk between their tokens.
    attention_block_tokens: with CUDA graphs, a decode step attends over the smallest multiple
        of this many positions (or max_seq_len) covering the longest decoding slot; 64 keeps
        the columns read within 64 of the cached length (16 length buckets for 1,024).
    cuda_graphs: capture decode steps as CUDA graphs on CUDA devices (ignored elsewhere).
    reuse_prefixes: start a prompt's prefill after the longest prefix a free slot still holds
        (False: every request prefills its whole prompt, e.g. to measure what reuse saves).
    """

    max_slots: int = 8
    max_seq_len: int = 2048
    prefill_chunk_tokens: int = 256
    attention_block_tokens: int = 64
    cuda_graphs: bool = True
    reuse_prefixes: bool = True

    def __post_init__(self) -> None:
        for name in ("max_slots", "max_seq_len", "prefill_chunk_tokens", "attention_block_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"EngineConfig.{name} must be ≥ 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Request:
    """One generation: prompt ids, how many tokens at most, when to stop, how to sample.

    stop_ids: generation ends after emitting one of these (the stop id is emitted).
    segments: spans with their own sampling and allowed ids (see `SegmentRule`); a prompt that
        ends inside a span (e.g. with `<sosp>`) starts generation inside it.
    seed: fixes the random draws; None picks a random seed. Greedy sampling ignores it.
    """

    prompt_ids: tuple[int, ...]
    max_new_tokens: int
    sampling: SamplingParams = GREEDY
    stop_ids: frozenset[int] = frozenset()
    segments: tuple[SegmentRule, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt_ids", tuple(int(i) for i in self.prompt_ids))
        object.__setattr__(self, "stop_ids", frozenset(int(i) for i in self.stop_ids))
        object.__setattr__(self, "segments", tuple(self.segments))
        if not self.prompt_ids:
            raise ValueError("a request needs at least one prompt token")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be ≥ 1, got {self.max_new_tokens}")
        starts = [rule.start_id for rule in self.segments]
        if len(set(starts)) != len(starts):
            raise ValueError("two segment rules share a start_id")

    def segment_after(self, current: int | None, token: int) -> int | None:
        """Index of the segment the sequence is in after `token` (None: outside all)."""
        if current is not None:
            return None if token == self.segments[current].end_id else current
        for index, rule in enumerate(self.segments):
            if token == rule.start_id:
                return index
        return None


class HandleOwner(Protocol):
    """What a handle needs of the engine that owns it."""

    @property
    def running(self) -> bool: ...

    def cancel_handle(self, handle: RequestHandle) -> None: ...


class RequestHandle:
    """A submitted request: iterate it (`async for token_id in handle`) and `cancel()` it.

    Used as `async with engine.submit(request) as handle:`, leaving the block cancels the request
    unless it finished. `tokens` holds every generated id, `finish_reason` is set at the end;
    `cached_tokens` is how many prompt tokens a slot's cache already held (set at admission).
    """

    _ids = itertools.count()

    def __init__(self, engine: HandleOwner, request: Request):
        self.request = request
        self.request_id = next(self._ids)
        self.tokens: list[int] = []
        self.cached_tokens = 0
        self.finish_reason: FinishReason | None = None
        self.error: BaseException | None = None
        self._engine = engine
        # Bound by the first `__anext__`: the engine thread wakes that loop on every token.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup = asyncio.Event()
        self._wake_pending = False  # a wake-up is queued on the loop and has not run yet
        self._done = threading.Event()
        self._read = 0

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def cancel(self) -> None:
        """Stop generating; the slot is freed at the start of the engine's next step."""
        if not self.done:
            self._engine.cancel_handle(self)

    def wait(self, timeout: float | None = None) -> bool:
        """Block (a thread, not the event loop) until the request ends; False on timeout."""
        return self._done.wait(timeout)

    def __aiter__(self) -> RequestHandle:
        return self

    async def __anext__(self) -> int:
        if self._loop is None:
            if not (self.done or self._engine.running):
                raise EngineClosed("start() the engine before iterating a request")
            self._loop = asyncio.get_running_loop()
        while True:
            if self._read < len(self.tokens):
                self._read += 1
                return self.tokens[self._read - 1]
            if self.done:
                if self.error is not None:
                    raise EngineError(f"request {self.request_id} failed") from self.error
                raise StopAsyncIteration
            self._wakeup.clear()
            if self._read == len(self.tokens) and not self.done:
                await self._wakeup.wait()

    async def __aenter__(self) -> RequestHandle:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cancel()

    # Engine side (the engine thread).
    def _push(self, token: int) -> None:
        self.tokens.append(token)
        self._notify()

    def _finish(self, reason: FinishReason, error: BaseException | None = None,
                last_token: int | None = None) -> None:
        if last_token is not None:
            self.tokens.append(last_token)
        self.error = error
        self.finish_reason = reason
        self._done.set()
        self._notify()

    def _notify(self) -> None:
        """Wake the consumer's loop, once per batch of tokens: while a wake-up is queued and
        has not run, later tokens ride on it (the consumer reads every token there is when it
        wakes), so a consumer that falls behind costs the engine thread no extra self-pipe
        writes."""
        if self._loop is None or self._wake_pending:
            return
        self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the consumer's event loop is gone: nobody will read on
            self._wake_pending = False
            self.cancel()

    def _wake(self) -> None:
        """On the consumer's loop: let the next tokens queue a new wake-up, then resume it."""
        self._wake_pending = False
        self._wakeup.set()
