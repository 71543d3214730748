"""The item ledger: items in conversation order, pending user audio taken once, and every edit a
client may not make refused with its code and parameter."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from server.errors import ErrorCode, ProtocolError
from server.realtime.client_events import ConversationItemCreate, ConversationItemTruncate
from server.realtime.items import ItemLedger, NewItem

PCM = b"\x01\x00\xff\x7f" * 8


def create(role: str = "user", *, item_id: str | None = None, previous: str | None = None,
           content: list[dict] | None = None) -> ConversationItemCreate:
    content = content or [{"type": "input_audio", "audio": base64.b64encode(PCM).decode()}]
    return ConversationItemCreate.model_validate({
        "type": "conversation.item.create", "previous_item_id": previous,
        "item": {"id": item_id, "role": role, "content": content}})


def refused(call, *args) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        call(*args)
    return info.value


def samples(value: float, n: int = 4) -> np.ndarray:
    return np.full(n, value, dtype=np.float32)


def test_user_items_chain_in_order_and_pending_audio_is_taken_once():
    ledger = ItemLedger()
    first, previous = ledger.add_user("item_1", samples(0.1))
    assert previous is None and first.role == "user"
    second, previous = ledger.add_user("item_2", samples(0.2, 2))
    assert previous == "item_1" and ledger.last_id == "item_2"
    pending = ledger.take_pending()
    assert pending.user_item is second
    np.testing.assert_array_equal(pending.samples, np.r_[samples(0.1), samples(0.2, 2)])
    again = ledger.take_pending()  # nothing left: a reply from the conversation alone
    assert again.samples is None and again.text == "" and again.user_item is None
    assert again.previous_item_id == "item_2"


def test_create_returns_the_audio_of_an_acceptable_item():
    assert ItemLedger().check_create(create()) == NewItem(role="user", audio=PCM, text="")


@pytest.mark.parametrize("role", ["user", "system"])
def test_typed_words_are_items_that_wait_for_a_reply(role):
    ledger = ItemLedger()
    new = ledger.check_create(create(role, content=[{"type": "input_text", "text": "hello"},
                                                     {"type": "input_text", "text": "there"}]))
    assert new == NewItem(role=role, audio=None, text="hello there")
    item, previous = ledger.add_text("item_t", role, new.text)
    assert previous is None and item.content[0].type == "input_text"
    pending = ledger.take_pending()
    assert pending.samples is None
    assert pending.text == "hello there"


def test_pending_audio_wins_over_typed_words():
    ledger = ItemLedger()
    ledger.add_text("item_t", "user", "hello")
    ledger.add_user("item_a", samples(0.3))
    pending = ledger.take_pending()
    assert pending.samples is not None and pending.item_ids == ["item_t", "item_a"]


def test_root_places_the_first_item_only():
    ledger = ItemLedger()
    assert ledger.check_create(create(previous="root")).role == "user"
    ledger.add_user("item_0", samples(0.0))
    assert refused(ledger.check_create, create(previous="root")).code is (
        ErrorCode.ITEM_NOT_EDITABLE)


@pytest.mark.parametrize("event, code, param", [
    (create("assistant"), ErrorCode.UNSUPPORTED_VALUE, "item.role"),
    (create(content=[{"type": "input_image", "image_url": "data:,"}]),
     ErrorCode.UNSUPPORTED_VALUE, "item.content"),
    (create("system", content=[{"type": "input_audio", "audio": "AAAA"}]),
     ErrorCode.UNSUPPORTED_VALUE, "item.content"),
    (create(item_id="item_1"), ErrorCode.INVALID_VALUE, "item.id"),
    (create(previous="item_0"), ErrorCode.ITEM_NOT_EDITABLE, "previous_item_id"),
    (create(previous="item_x"), ErrorCode.ITEM_NOT_FOUND, "previous_item_id"),
])
def test_create_refuses_what_the_model_cannot_take(event, code, param):
    ledger = ItemLedger()
    ledger.add_user("item_0", samples(0.0))
    ledger.add_user("item_1", samples(0.0))
    error = refused(ledger.check_create, event)
    assert (error.code, error.param) == (code, param)


def test_answered_user_audio_cannot_be_deleted():
    ledger = ItemLedger()
    ledger.add_user("item_1", samples(0.1))
    ledger.add_user("item_2", samples(0.2))
    ledger.delete("item_2")
    assert ledger.last_id == "item_1"
    ledger.take_pending()
    assert refused(ledger.delete, "item_1").code is ErrorCode.ITEM_NOT_EDITABLE
    assert refused(ledger.delete, "item_9").code is ErrorCode.ITEM_NOT_FOUND


def test_user_audio_cannot_be_truncated():
    ledger = ItemLedger()
    ledger.add_user("item_1", samples(0.1))
    event = ConversationItemTruncate(type="conversation.item.truncate", item_id="item_1",
                                     content_index=0, audio_end_ms=0)
    error = refused(ledger.truncatable, event)
    assert (error.code, error.param) == (ErrorCode.ITEM_NOT_EDITABLE, "item_id")
