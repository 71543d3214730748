"""A realtime session's conversation items: create, truncate, delete, and collect pending audio.

The ledger keeps the items in conversation order. A user item holds its audio (16 kHz float32)
until a response takes it (`take_pending`); an assistant item remembers the response that made
it, so a truncation can be checked against the audio actually sent. Every refusal is a
`ProtocolError` naming the parameter. Sends nothing and knows neither the WebSocket nor the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from server.errors import ErrorCode, ProtocolError
from server.realtime import server_events as out
from server.realtime.client_events import ConversationItemCreate, ConversationItemTruncate

if TYPE_CHECKING:
    from server.realtime.response import ResponseRun


@dataclass
class ItemRecord:
    item: out.Item
    samples: np.ndarray | None = None  # a user turn not yet answered: (T,) float32 at 16 kHz
    response: ResponseRun | None = None  # the response that produced an assistant item


@dataclass(frozen=True)
class PendingTurn:
    """User audio no response has taken yet, and the last user item it came from."""

    samples: np.ndarray  # (T,) float32 at 16 kHz, the pending items one after another
    user_item: out.Item


class ItemLedger:
    """The items of one session, oldest first."""

    def __init__(self) -> None:
        self._records: dict[str, ItemRecord] = {}

    @property
    def last_id(self) -> str | None:
        return next(reversed(self._records), None)

    def check_create(self, event: ConversationItemCreate) -> bytes:
        """Refuse an item the model cannot take; the PCM16 audio of one that it can."""
        item = event.item
        if item.role != "user":
            raise ProtocolError(ErrorCode.UNSUPPORTED_VALUE,
                                "only user items can be added (the model hears audio)",
                                param="item.role")
        part = item.content[0]
        if len(item.content) != 1 or part.type != "input_audio" or not part.audio:
            raise ProtocolError(ErrorCode.UNSUPPORTED_VALUE,
                                "a user item needs exactly one input_audio part with audio; "
                                "text input is not supported", param="item.content")
        if item.id is not None and item.id in self._records:
            raise ProtocolError(ErrorCode.INVALID_VALUE, f"item {item.id} already exists",
                                param="item.id")
        if event.previous_item_id is not None and event.previous_item_id != self.last_id:
            code = (ErrorCode.ITEM_NOT_EDITABLE if event.previous_item_id in self._records
                    else ErrorCode.ITEM_NOT_FOUND)
            raise ProtocolError(code, "items can only be added at the end of the conversation",
                                param="previous_item_id")
        return part.audio

    def add_user(self, item_id: str, samples: np.ndarray) -> tuple[out.Item, str | None]:
        """Append a user item holding `samples`; the item and the id of the one before it."""
        previous = self.last_id
        item = out.Item(id=item_id, status="completed", role="user",
                        content=[out.ContentPart(type="input_audio")])
        self._records[item_id] = ItemRecord(item=item, samples=samples)
        return item, previous

    def add_reply(self, run: ResponseRun) -> None:
        """Append the assistant item a response is producing."""
        self._records[run.item.id] = ItemRecord(item=run.item, response=run)

    def take_pending(self) -> PendingTurn:
        """Hand every unanswered user item's audio to a response; refuse when there is none.

        The items stay in the conversation without their audio, even if the reply then fails.
        """
        pending = [record for record in self._records.values() if record.samples is not None]
        if not pending:
            raise ProtocolError(ErrorCode.NO_INPUT_AUDIO,
                                "there is no new user audio to answer; commit audio first")
        samples = np.concatenate([record.samples for record in pending])
        for record in pending:
            record.samples = None
        return PendingTurn(samples=samples, user_item=pending[-1].item)

    def truncatable(self, event: ConversationItemTruncate) -> ResponseRun:
        """The response behind the latest reply, if `event` may truncate it; else refuse."""
        record = self._record(event.item_id)
        run = record.response
        if run is None:
            raise ProtocolError(ErrorCode.ITEM_NOT_EDITABLE,
                                "only assistant audio can be truncated", param="item_id")
        latest = next(r for r in reversed(self._records.values()) if r.response is not None)
        if record is not latest:
            raise ProtocolError(ErrorCode.ITEM_NOT_EDITABLE,
                                "only the latest reply can be truncated", param="item_id")
        if event.content_index != 0:
            raise ProtocolError(ErrorCode.INVALID_VALUE, "the reply has one content part (0)",
                                param="content_index")
        if event.audio_end_ms > run.audio_ms_sent:
            raise ProtocolError(ErrorCode.INVALID_AUDIO_END,
                                f"audio_end_ms {event.audio_end_ms} is past the "
                                f"{run.audio_ms_sent} ms of audio sent", param="audio_end_ms")
        return run

    def delete(self, item_id: str) -> None:
        """Remove unanswered user audio; anything the model has heard or said stays."""
        if self._record(item_id).samples is None:
            raise ProtocolError(ErrorCode.ITEM_NOT_EDITABLE,
                                "the item is already part of the model's conversation history; "
                                "only unanswered user audio can be deleted", param="item_id")
        del self._records[item_id]

    def _record(self, item_id: str) -> ItemRecord:
        record = self._records.get(item_id)
        if record is None:
            raise ProtocolError(ErrorCode.ITEM_NOT_FOUND, f"no item {item_id} in this session",
                                param="item_id")
        return record
