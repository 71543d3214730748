"""The token-level generation engine: token ids in, token ids out, many requests at once.

Requests take one of `max_slots` slots of a static KV cache. One loop (a dedicated thread, so model
work never blocks an asyncio loop) repeats a step: drop cancelled requests, admit new ones, spend
up to `prefill_chunk_tokens` of prompt prefill, then decode one token for every decoding slot
(continuous batching: requests join and leave between steps). A freed slot keeps its keys and
values: a new request goes to the free slot whose cached tokens share the longest prefix with its
prompt and prefills only the rest (a conversation's next turn repeats the whole earlier dialogue,
and every prompt starts with the same instruction). Requests, handles and the configuration
are model/engine_requests.py. Knows nothing of audio, text, templates or HTTP; the chain layer
speaks to it in token ids and `SegmentRule`s.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import LlamaForCausalLM

from model.decode_step import DecodeRunner, batch_buckets, length_buckets
from model.engine_requests import (
    EngineBusy,
    EngineClosed,
    EngineConfig,
    EngineError,
    FinishReason,
    Request,
    RequestHandle,
)
from model.llama_forward import LlamaForward
from model.prefix_reuse import pick_slot
from model.sampling import SlotSampler

__all__ = ["Engine", "EngineBusy", "EngineClosed", "EngineConfig", "EngineError", "Request",
           "RequestHandle"]


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
        self.sampler = SlotSampler(config.max_slots, self.vocab_size, self.device)
        self.runner = DecodeRunner(
            self.forward,
            self.sampler,
            batch_buckets(config.max_slots),
            length_buckets(config.max_seq_len, config.attention_block_tokens),
            config.cuda_graphs,
        )
        self._slots: list[_Slot | None] = [None] * config.max_slots
        # Per slot: the token ids whose keys and values fill the slot's cache row from column 0.
        self._cached: list[list[int]] = [[] for _ in range(config.max_slots)]
        self._prefill_queue: deque[int] = deque()
        self._lock = threading.Condition()
        self._queues = _Queues()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.failure: BaseException | None = None  # the first step that raised, if any

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

    def cancel_handle(self, handle: RequestHandle) -> None:
        """Ask the loop to drop `handle` at its next step (any thread)."""
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
            if self.failure is None:
                self.failure = error
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
        """A free slot for `prompt` and how many of its first tokens it holds (prefix_reuse.py)."""
        free = [index for index, slot in enumerate(self._slots) if slot is None]
        return pick_slot(free, self._cached, prompt, self.config.reuse_prefixes)

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
        # Forward, draw and each decoding row's advance run on the device; one read here.
        drawn = self.runner.step(batch, length, self.sampler.stages(rows)).tolist()  # (batch,)
        for row in rows:
            slot = self._slots[row]
            self._cached[row].append(slot.handle.tokens[-1])  # the token this step fed in
            slot.position += 1
            self._accept(row, drawn[row])

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

