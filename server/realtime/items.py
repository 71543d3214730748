"""A realtime session's conversation items: create, retrieve, truncate, delete, collect input.

The ledger keeps the items in conversation order. A user item holds its audio (16 kHz float32)
or typed words until a response takes them (`take_pending`); a system item's words are answered
like typed user words (the bundle's template has no system turn; Pipecat appends its messages as
system items); an assistant item remembers the response that
made it, so a truncation can be checked against the audio actually sent and a deletion can take
the reply out of the model's history. Every refusal is a `ProtocolError` naming the parameter.
Sends nothing and knows neither the WebSocket nor the model.
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


ROOT = "root"  # previous_item_id that means "at the start of the conversation"


@dataclass
class ItemRecord:
    item: out.Item
    samples: np.ndarray | None = None  # a user turn not yet answered: (T,) float32 at 16 kHz
    text: str | None = None  # typed user words not yet answered
    response: ResponseRun | None = None  # the response that produced an assistant item


@dataclass(frozen=True)
class PendingTurn:
    """User input no response has taken yet: audio (which wins when there is any) or typed
    words ("" when there is none: a greeting), and the last pending user item."""

    samples: np.ndarray | None  # (T,) float32 at 16 kHz, the pending audio one after another
    text: str
    user_item: out.Item | None
    previous_item_id: str | None  # the item the reply follows
    item_ids: list[str]  # every user item the reply answers


@dataclass(frozen=True)
class NewItem:
    """A checked `conversation.item.create`: audio (wire format) or words, and the role."""

    role: str
    audio: bytes | None
    text: str


class ItemLedger:
    """The items of one session, oldest first."""

    def __init__(self) -> None:
        self._records: dict[str, ItemRecord] = {}

    @property
    def last_id(self) -> str | None:
        return next(reversed(self._records), None)

    def check_create(self, event: ConversationItemCreate) -> NewItem:
        """Refuse an item the model cannot take; what to add for one that it can: a user item
        with one `input_audio` part, or user / system items of `input_text` parts."""
        item = event.item
        if item.role == "assistant":
            raise ProtocolError(ErrorCode.UNSUPPORTED_VALUE,
                                "assistant items cannot be added: the model writes its own "
                                "replies (and speaks them)", param="item.role")
        kinds = [part.type for part in item.content]
        if kinds == ["input_audio"] and item.role == "user" and item.content[0].audio:
            new = NewItem(role="user", audio=item.content[0].audio, text="")
        elif kinds and all(kind in ("input_text", "text") for kind in kinds):
            new = NewItem(role=item.role, audio=None,
                          text=" ".join((part.text or "").strip() for part in item.content))
        else:
            raise ProtocolError(ErrorCode.UNSUPPORTED_VALUE,
                                "an item needs one input_audio part (user) or input_text parts "
                                "(user, system)", param="item.content")
        if item.id is not None and item.id in self._records:
            raise ProtocolError(ErrorCode.INVALID_VALUE, f"item {item.id} already exists",
                                param="item.id")
        at_start = event.previous_item_id == ROOT and not self._records
        if event.previous_item_id not in (None, self.last_id) and not at_start:
            code = (ErrorCode.ITEM_NOT_EDITABLE if event.previous_item_id in self._records
                    or event.previous_item_id == ROOT else ErrorCode.ITEM_NOT_FOUND)
            raise ProtocolError(code, "items can only be added at the end of the conversation",
                                param="previous_item_id")
        return new

    def add_user(self, item_id: str, samples: np.ndarray) -> tuple[out.Item, str | None]:
        """Append a user item holding `samples`; the item and the id of the one before it."""
        previous = self.last_id
        item = out.Item(id=item_id, status="completed", role="user",
                        content=[out.ContentPart(type="input_audio")])
        self._records[item_id] = ItemRecord(item=item, samples=samples)
        return item, previous

    def add_text(self, item_id: str, role: str, text: str) -> tuple[out.Item, str | None]:
        """Append typed words (user or system); they wait for a response."""
        previous = self.last_id
        item = out.Item(id=item_id, status="completed", role=role,
                        content=[out.ContentPart(type="input_text", text=text)])
        self._records[item_id] = ItemRecord(item=item, text=text)
        return item, previous

    def get(self, item_id: str) -> out.Item:
        return self._record(item_id).item

    def add_reply(self, run: ResponseRun) -> None:
        """Append the assistant item a response is producing."""
        self._records[run.item.id] = ItemRecord(item=run.item, response=run)

    def take_pending(self) -> PendingTurn:
        """Hand every unanswered user item's audio (or, without audio, typed words) to a
        response; with neither, the response answers from the conversation alone.

        The items stay in the conversation without their input, even if the reply then fails.
        """
        pending = [record for record in self._records.values()
                   if record.samples is not None or record.text is not None]
        audio = [record.samples for record in pending if record.samples is not None]
        words = " ".join(record.text for record in pending if record.text)
        for record in pending:
            record.samples, record.text = None, None
        return PendingTurn(samples=np.concatenate(audio) if audio else None, text=words,
                           user_item=pending[-1].item if pending else None,
                           previous_item_id=self.last_id,
                           item_ids=[record.item.id for record in pending])

    def truncatable(self, event: ConversationItemTruncate) -> ResponseRun:
        """The response behind a reply still in the conversation, if `event` may truncate it;
        else refuse."""
        run = self._record(event.item_id).response
        if run is None:
            raise ProtocolError(ErrorCode.ITEM_NOT_EDITABLE,
                                "only assistant audio can be truncated", param="item_id")
        if event.content_index != 0:
            raise ProtocolError(ErrorCode.INVALID_VALUE, "the reply has one content part (0)",
                                param="content_index")
        if event.audio_end_ms > run.audio_ms_sent:
            raise ProtocolError(ErrorCode.INVALID_AUDIO_END,
                                f"audio_end_ms {event.audio_end_ms} is past the "
                                f"{run.audio_ms_sent} ms of audio sent", param="audio_end_ms")
        return run

    def delete(self, item_id: str) -> ResponseRun | None:
        """Remove an item: unanswered user input, a system item, or a reply (returned, so its
        turn can leave the model's history). Answered user input stays: the reply that heard
        it is built on it."""
        record = self._record(item_id)
        answered_user = (record.item.role != "assistant" and record.samples is None
                         and record.text is None)
        if answered_user:
            raise ProtocolError(ErrorCode.ITEM_NOT_EDITABLE,
                                "the item is already part of the model's conversation history; "
                                "delete the reply instead", param="item_id")
        del self._records[item_id]
        return record.response

    def _record(self, item_id: str) -> ItemRecord:
        record = self._records.get(item_id)
        if record is None:
            raise ProtocolError(ErrorCode.ITEM_NOT_FOUND, f"no item {item_id} in this session",
                                param="item_id")
        return record
