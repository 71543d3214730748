"""The token-level generation engine: token ids in, token ids out, many requests at once.

Requests take one of `max_slots` slots of a static KV cache. One loop (a dedicated thread, so model
work never blocks an asyncio loop) repeats a step: drop cancelled requests, admit new ones, spend
up to `prefill_chunk_tokens` of prompt prefill, then decode one token for every decoding slot
(continuous batching: requests join and leave between steps). A freed slot keeps its keys and
values: a new request goes to the free slot whose cached tokens share the longest prefix with its
prompt and prefills only the rest (a conversation's next turn repeats the whole earlier dialogue,
and every prompt starts with the same instruction). Knows nothing of audio, text, templates or
HTTP; the chain layer speaks to it in token ids and `SegmentRule`s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from transformers import LlamaForCausalLM

from model.decode_step import DecodeRunner, batch_buckets, length_buckets
from model.llama_forward import LlamaForward
from model.sampling import GREEDY, SamplingParams, SegmentRule, SlotSampler

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
        of this many positions (or max_seq_len) covering the longest decoding slot.
    cuda_graphs: capture decode steps as CUDA graphs on CUDA devices (ignored elsewhere).
    reuse_prefixes: start a prompt's prefill after the longest prefix a free slot still holds
        (False: every request prefills its whole prompt, e.g. to measure what reuse saves).
    """

    max_slots: int = 8
    max_seq_len: int = 2048
    prefill_chunk_tokens: int = 256
    attention_block_tokens: int = 256
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


class RequestHandle:
    """A submitted request: iterate it (`async for token_id in handle`) and `cancel()` it.

    Used as `async with engine.submit(request) as handle:`, leaving the block cancels the request
    unless it finished. `tokens` holds every generated id, `finish_reason` is set at the end;
    `cached_tokens` is how many prompt tokens a slot's cache already held (set at admission).
    """

    _ids = itertools.count()

    def __init__(self, engine: Engine, request: Request):
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
        self._done = threading.Event()
        self._read = 0

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def cancel(self) -> None:
        """Stop generating; the slot is freed at the start of the engine's next step."""
        if not self.done:
            self._engine._cancel(self)

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
        if self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._wakeup.set)
        except RuntimeError:  # the consumer's event loop is gone: nobody will read on
            self.cancel()


@dataclass
class _Slot:
    """Host-side state of one slot's request."""

    handle: RequestHandle
    prefilled: int = 0  # prompt tokens already in the cache
    position: int = 0  # next write position once decoding
    segment: int | None = None
    decoding: bool = False

    @property
    def request(self) -> Request:
        return self.handle.request


@dataclass
class _Queues:
    """What other threads hand to the engine loop (guarded by `Engine._lock`)."""

    pending: deque[RequestHandle] = field(default_factory=deque)
    cancelled: set[RequestHandle] = field(default_factory=set)
    reserved: int = 0  # submitted requests not yet finished (pending + active)


class Engine:
    """Continuous-batching generation over a `LlamaForCausalLM` with a static KV cache.

    Asynchronous use: `start()`, then `engine.submit(request)` / `engine.generate(request)` from
    asyncio; `close()` at the end. Synchronous use (batch jobs, tests): `submit` without
    `start()`, then `run_until_idle()` drives the same steps on the calling thread and each
    handle's `tokens` holds the result.
    """

    def __init__(self, model: LlamaForCausalLM, config: EngineConfig) -> None:
        self.config = config
        self.forward = LlamaForward(model, config.max_slots, config.max_seq_len)
        self.vocab_size = self.forward.vocab_size
        self.device = self.forward.device
        self.runner = DecodeRunner(
            self.forward,
            batch_buckets(config.max_slots),
            length_buckets(config.max_seq_len, config.attention_block_tokens),
            config.cuda_graphs,
        )
        self.sampler = SlotSampler(config.max_slots, self.vocab_size, self.device)
        self._slots: list[_Slot | None] = [None] * config.max_slots
        # Per slot: the token ids whose keys and values fill the slot's cache row from column 0.
        self._cached: list[list[int]] = [[] for _ in range(config.max_slots)]
        self._prefill_queue: deque[int] = deque()
        self._lock = threading.Condition()
        self._queues = _Queues()
        self._thread: threading.Thread | None = None
        self._stopping = False

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        config: EngineConfig,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> Engine:
        """Load a Llama causal LM directory (transformers format) onto `device` in `dtype`."""
        model = LlamaForCausalLM.from_pretrained(directory, dtype=dtype, device_map=str(device))
        return cls(model, config)

    # ---- submission (any thread) ----------------------------------------------------------

    @property
    def free_slots(self) -> int:
        """Slots a new request could take now."""
        with self._lock:
            return self.config.max_slots - self._queues.reserved

    def submit(self, request: Request) -> RequestHandle:
        """Queue `request`; raises `EngineBusy` when every slot is taken, `ValueError` when the
        request cannot fit this engine (ids beyond the vocabulary, prompt too long)."""
        self._validate(request)
        handle = RequestHandle(self, request)
        with self._lock:
            if self._stopping:
                raise EngineClosed("the engine is shut down")
            if self._queues.reserved >= self.config.max_slots:
                raise EngineBusy(f"all {self.config.max_slots} engine slots are busy")
            self._queues.reserved += 1
            self._queues.pending.append(handle)
            self._lock.notify()
        return handle

    async def generate(self, request: Request) -> AsyncIterator[int]:
        """Yield the request's token ids as they are generated; closing the iterator or
        cancelling the task that reads it cancels the request."""
        async with self.submit(request) as handle:
            async for token in handle:
                yield token

    def _validate(self, request: Request) -> None:
        ids = [*request.prompt_ids, *request.stop_ids]
        for rule in request.segments:
            ids.extend(rule.permitted() | {rule.start_id})
        if min(ids) < 0 or max(ids) >= self.vocab_size:
            raise ValueError(f"token ids must lie in [0, {self.vocab_size})")
        if len(request.prompt_ids) >= self.config.max_seq_len:
            raise ValueError(
                f"prompt of {len(request.prompt_ids)} tokens does not fit max_seq_len "
                f"{self.config.max_seq_len} with room to generate"
            )

    def _cancel(self, handle: RequestHandle) -> None:
        with self._lock:
            self._queues.cancelled.add(handle)
            self._lock.notify()

    # ---- lifecycle --------------------------------------------------------------------------

    def warmup(self) -> None:
        """Run one prefill and capture every decode graph, so the first request pays for
        neither. Call before `start()`."""
        if self._thread is not None:
            raise RuntimeError("warmup() must run before start()")
        with self._device_scope():
            self.forward.prefill(0, torch.zeros(1, dtype=torch.long, device=self.device), 0)
            self._cached[0] = [0]
            self.runner.capture_all()

    @property
    def running(self) -> bool:
        """Whether the engine thread is driving steps."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Engine:
        """Start the engine thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="icot-engine", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the thread; requests still queued or running end as cancelled."""
        with self._lock:
            self._stopping = True
            for handle in [*self._queues.pending, *self._active_handles()]:
                self._queues.cancelled.add(handle)
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._drop_cancelled()

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run_until_idle(self) -> None:
        """Drive steps on this thread until no request is left (synchronous use only)."""
        if self._thread is not None:
            raise RuntimeError("the engine thread is running; iterate the handles instead")
        with self._device_scope(), torch.inference_mode():
            while self.step():
                pass

    def _device_scope(self) -> contextlib.AbstractContextManager:
        """Make the engine's GPU the current one (graphs and streams use the current device)."""
        if self.device.type == "cuda":
            return torch.cuda.device(self.device)
        return contextlib.nullcontext()

    def _loop(self) -> None:
        with self._device_scope(), torch.inference_mode():
            while True:
                with self._lock:
                    while not (self._stopping or self._has_work_locked()):
                        self._lock.wait()
                    if self._stopping:
                        return
                self.step()

    def _has_work_locked(self) -> bool:
        queues = self._queues
        return bool(queues.pending or queues.cancelled or any(self._slots))

    def _active_handles(self) -> list[RequestHandle]:
        return [slot.handle for slot in self._slots if slot is not None]

    # ---- the step (engine thread) -------------------------------------------------------

    def step(self) -> bool:
        """One scheduling step; returns False when there was nothing to do."""
        try:
            self._drop_cancelled()
            self._admit()
            if not any(self._slots):
                return False
            self._prefill_some()
            self._decode()
        except Exception as error:  # noqa: BLE001 - every request must learn of the failure
            self._fail_all(error)
        return True

    def _drop_cancelled(self) -> None:
        with self._lock:
            cancelled, self._queues.cancelled = self._queues.cancelled, set()
            waiting = [handle for handle in cancelled if handle in self._queues.pending]
            for handle in waiting:
                self._queues.pending.remove(handle)
                self._queues.reserved -= 1
        for handle in waiting:
            handle._finish("cancelled")
        for index, slot in enumerate(self._slots):
            if slot is not None and slot.handle in cancelled:
                self._release(index, "cancelled")

    def _admit(self) -> None:
        while True:
            with self._lock:
                if not self._queues.pending:
                    return
                handle = self._queues.pending.popleft()
            request = handle.request
            index, shared = self._pick_slot(request.prompt_ids)
            slot = self._slots[index] = _Slot(handle=handle)  # from here a failure releases it
            del self._cached[index][shared:]
            slot.prefilled = handle.cached_tokens = shared
            for token in request.prompt_ids:
                slot.segment = request.segment_after(slot.segment, token)
            seed = request.seed if request.seed is not None else secrets.randbits(63)
            self.sampler.reset(index, list(request.prompt_ids), seed)
            self._apply_segment(index)
            self.runner.positions[index] = self.forward.cache.scratch_position
            self._prefill_queue.append(index)

    def _pick_slot(self, prompt: tuple[int, ...]) -> tuple[int, int]:
        """A free slot for `prompt` and how many of its first tokens that slot's cache holds.

        The slot with the longest shared prefix wins; without one (or with reuse off), the lowest
        free slot, which keeps decode batches compact. The shared part stops one token short of
        the prompt: prefilling at least its last token yields the logits that start generation.
        """
        best, best_shared = -1, -1
        for index, slot in enumerate(self._slots):
            if slot is not None:
                continue
            shared = 0
            if self.config.reuse_prefixes:
                shared = shared_prefix_length(self._cached[index], prompt, len(prompt) - 1)
            if shared > best_shared:
                best, best_shared = index, shared
        return best, best_shared

    def _apply_segment(self, index: int) -> None:
        slot = self._slots[index]
        if slot.segment is None:
            self.sampler.set_params(index, slot.request.sampling, 0)
        else:
            rule = slot.request.segments[slot.segment]
            self.sampler.set_params(index, rule.sampling, self.sampler.mask_index(rule.permitted()))

    def _prefill_some(self) -> None:
        budget = self.config.prefill_chunk_tokens
        while budget > 0 and self._prefill_queue:
            index = self._prefill_queue[0]
            slot = self._slots[index]
            prompt = slot.request.prompt_ids
            n = min(budget, len(prompt) - slot.prefilled)
            piece = prompt[slot.prefilled : slot.prefilled + n]
            chunk = torch.tensor(piece, device=self.device)
            logits = self.forward.prefill(index, chunk, slot.prefilled)  # (V,)
            self._cached[index].extend(piece)
            slot.prefilled += n
            budget -= n
            if slot.prefilled < len(prompt):
                continue
            self._prefill_queue.popleft()
            token = self.sampler.sample(logits[None], [index])  # (1,)
            slot.position = len(prompt)
            slot.decoding = True
            self.runner.tokens[index] = token[0]
            self.runner.positions[index] = slot.position
            self._accept(index, int(token[0]))

    def _decode(self) -> None:
        rows = [i for i, slot in enumerate(self._slots) if slot is not None and slot.decoding]
        if not rows:
            return
        longest = max(self._slots[i].position for i in rows)
        batch, length = self.runner.bucket(rows[-1] + 1, longest + 1)
        logits = self.runner.run(batch, length)  # (batch, V)
        index = torch.tensor(rows, device=self.device)  # (N,)
        all_rows = len(rows) == batch
        tokens = self.sampler.sample(logits if all_rows else logits[index], rows)  # (N,)
        self.runner.tokens[index] = tokens
        self.runner.positions[index] += 1
        for row, token in zip(rows, tokens.tolist(), strict=True):
            slot = self._slots[row]
            self._cached[row].append(slot.handle.tokens[-1])  # the token this step fed in
            slot.position += 1
            self._accept(row, token)

    def _accept(self, index: int, token: int) -> None:
        """Deliver a sampled token, follow segments, and end the request if it is done.

        A request's last token is delivered with its end, after its slot is freed: a client
        that stops reading at that token and submits its next turn at once finds the slot free
        (before, a one-slot engine could answer that turn with EngineBusy).
        """
        slot = self._slots[index]
        request = slot.request
        reason = self._end_reason(slot, token)
        if reason is not None:
            self._release(index, reason, last_token=token)
            return
        slot.handle._push(token)
        segment = request.segment_after(slot.segment, token)
        if segment != slot.segment:
            slot.segment = segment
            self._apply_segment(index)

    def _end_reason(self, slot: _Slot, token: int) -> FinishReason | None:
        """Why the request ends with `token` (not yet delivered), or None if it goes on."""
        if token in slot.request.stop_ids:
            return "stop"
        if len(slot.handle.tokens) + 1 >= slot.request.max_new_tokens:
            return "max_tokens"
        if slot.position >= self.config.max_seq_len:
            return "length"
        return None

    def _release(self, index: int, reason: FinishReason, error: BaseException | None = None,
                 last_token: int | None = None):
        """Free the slot first, then tell the request (handing it `last_token`, if any), so a
        finished request's slot is free by the time its consumer sees the end."""
        slot = self._slots[index]
        self._slots[index] = None
        if index in self._prefill_queue:
            self._prefill_queue.remove(index)
        self.runner.positions[index] = self.forward.cache.scratch_position
        with self._lock:
            self._queues.reserved -= 1
        slot.handle._finish(reason, error, last_token)

    def _fail_all(self, error: Exception) -> None:
        for cached in self._cached:  # a failed step may have left any row half-written
            cached.clear()
        for index, slot in enumerate(self._slots):
            if slot is not None:
                self._release(index, "error", error)


def shared_prefix_length(cached: list[int], prompt: tuple[int, ...], limit: int) -> int:
    """How many leading tokens `cached` and `prompt` share, at most `limit`."""
    count = 0
    for a, b in zip(cached, prompt[:limit], strict=False):
        if a != b:
            break
        count += 1
    return count
