"""Client events of the Realtime protocol in both dialects: parsed into their models, and every bad
message mapped to a stable code with the parameter it names."""

from __future__ import annotations

import base64
import json

import pytest

from server.errors import ErrorCode, ProtocolError
from server.realtime import client_events as c
from server.realtime.client_parsing import parse_client_event

LIMIT = 1 << 20
PCM = (b"\x01\x00\xff\x7f" * 8)  # 16 samples of PCM16
B64 = base64.b64encode(PCM).decode()


def parse(obj) -> object:
    return parse_client_event(obj if isinstance(obj, str) else json.dumps(obj), max_bytes=LIMIT)


def refused(obj, *, max_bytes: int = LIMIT) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_client_event(obj if isinstance(obj, str | bytes) else json.dumps(obj),
                             max_bytes=max_bytes)
    return info.value


def test_append_decodes_base64_pcm():
    event = parse({"type": "input_audio_buffer.append", "audio": B64, "event_id": "e1"})
    assert isinstance(event, c.InputAudioBufferAppend)
    assert event.audio == PCM and event.event_id == "e1"


@pytest.mark.parametrize("kind, cls", [
    ("input_audio_buffer.commit", c.InputAudioBufferCommit),
    ("input_audio_buffer.clear", c.InputAudioBufferClear),
    ("response.create", c.ResponseCreate),
    ("response.cancel", c.ResponseCancel),
])
def test_events_without_fields(kind, cls):
    assert isinstance(parse({"type": kind}), cls)


def test_item_events():
    truncate = parse({"type": "conversation.item.truncate", "item_id": "item_1",
                      "content_index": 0, "audio_end_ms": 1500})
    assert (truncate.item_id, truncate.audio_end_ms) == ("item_1", 1500)
    assert parse({"type": "conversation.item.delete", "item_id": "item_1"}).item_id == "item_1"
    create = parse({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user",
        "content": [{"type": "input_audio", "audio": B64}]}})
    assert create.item.content[0].audio == PCM


def test_ga_session_update_nests_audio_config():
    event = parse({"type": "session.update", "session": {
        "type": "realtime", "output_modalities": ["audio"], "instructions": "ignored",
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000},
                            "turn_detection": {"type": "server_vad", "threshold": 0.6,
                                               "prefix_padding_ms": 200,
                                               "silence_duration_ms": 400}},
                  "output": {"format": {"type": "audio/pcm", "rate": 24000},
                             "voice": "marin"}}}})
    session = event.session
    assert session.input_format().rate == 16000 and session.output_format().rate == 24000
    assert session.turn_detection_given()
    assert session.new_turn_detection().threshold == 0.6
    assert session.requested_modalities() == ["audio"]


def test_beta_session_update_is_flat():
    session = parse({"type": "session.update", "session": {
        "modalities": ["text", "audio"], "input_audio_format": "pcm16", "voice": "alloy",
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
        "tools": [], "temperature": 0.8}}).session
    assert session.input_format().rate == 24000
    assert session.new_turn_detection().silence_duration_ms == 300
    assert session.requested_modalities() == ["text", "audio"]


@pytest.mark.parametrize("session", [
    {"turn_detection": None},
    {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
])
def test_null_turn_detection_selects_manual_mode(session):
    parsed = parse({"type": "session.update", "session": session}).session
    assert parsed.turn_detection_given() and parsed.new_turn_detection() is None


def test_an_update_without_turn_detection_leaves_it_alone():
    parsed = parse({"type": "session.update", "session": {"modalities": ["audio"]}}).session
    assert not parsed.turn_detection_given()


BAD_MESSAGES = [
    ("{not json", ErrorCode.INVALID_JSON, None),
    ("[1, 2]", ErrorCode.INVALID_JSON, None),
    ({"audio": B64}, ErrorCode.MISSING_FIELD, "type"),
    ({"type": "response.explode"}, ErrorCode.UNKNOWN_EVENT, "type"),
    ({"type": 7}, ErrorCode.UNKNOWN_EVENT, "type"),
    ({"type": "input_audio_buffer.append"}, ErrorCode.MISSING_FIELD, "audio"),
    ({"type": "input_audio_buffer.append", "audio": 12}, ErrorCode.INVALID_VALUE, "audio"),
    ({"type": "input_audio_buffer.append", "audio": "@@not base64@@"},
     ErrorCode.INVALID_BASE64, "audio"),
    ({"type": "session.update"}, ErrorCode.MISSING_FIELD, "session"),
    ({"type": "session.update", "session": {"input_audio_format": "g722"}},
     ErrorCode.UNSUPPORTED_FORMAT, "session.input_audio_format"),
    ({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "format": {"type": "audio/opus"}}}}},
     ErrorCode.UNSUPPORTED_FORMAT, "session.audio.input.format.type"),
    ({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "format": {"type": "audio/pcm", "rate": 44100}}}}},
     ErrorCode.UNSUPPORTED_FORMAT, "session.audio.input.format.rate"),
    ({"type": "session.update", "session": {"turn_detection": {"type": "semantic_vad",
                                                               "eagerness": "eager"}}},
     ErrorCode.INVALID_VALUE, "session.turn_detection"),
    ({"type": "session.update", "session": {"turn_detection": {"type": "vad"}}},
     ErrorCode.INVALID_VALUE, "session.turn_detection.type"),
    ({"type": "session.update", "session": {"turn_detection": {"type": "server_vad",
                                                               "threshold": 1.5}}},
     ErrorCode.INVALID_VALUE, "session.turn_detection.threshold"),
    ({"type": "session.update", "session": {"type": "transcription"}},
     ErrorCode.UNSUPPORTED_VALUE, "session.type"),
    ({"type": "session.update", "session": {"modalities": ["video"]}},
     ErrorCode.INVALID_VALUE, "session.modalities.0"),
    ({"type": "conversation.item.truncate", "item_id": "x", "content_index": 0},
     ErrorCode.MISSING_FIELD, "audio_end_ms"),
    ({"type": "conversation.item.truncate", "item_id": "x", "content_index": 0,
      "audio_end_ms": -5}, ErrorCode.INVALID_VALUE, "audio_end_ms"),
    ({"type": "conversation.item.truncate", "item_id": "x", "content_index": 0,
      "audio_end_ms": "soon"}, ErrorCode.INVALID_VALUE, "audio_end_ms"),
    ({"type": "conversation.item.delete"}, ErrorCode.MISSING_FIELD, "item_id"),
    ({"type": "conversation.item.create", "item": {"role": "user", "content": []}},
     ErrorCode.INVALID_VALUE, "item.content"),
    ({"type": "conversation.item.create", "item": {"role": "user", "content": [
        {"type": "input_audio", "audio": "%%%"}]}},
     ErrorCode.INVALID_BASE64, "item.content.0.audio"),
]


@pytest.mark.parametrize("message, code, param", BAD_MESSAGES)
def test_every_bad_message_maps_to_a_stable_code(message, code, param):
    error = refused(message)
    assert (error.code, error.param) == (code, param)
    assert error.message


def test_a_bad_message_keeps_its_event_id():
    error = refused({"type": "input_audio_buffer.append", "audio": "@@", "event_id": "ev_7"})
    assert error.event_id == "ev_7"


def test_over_size_messages_are_refused_before_parsing():
    message = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 2000})
    assert refused(message, max_bytes=1000).code is ErrorCode.MESSAGE_TOO_LARGE
    assert refused("x" * 2000, max_bytes=1000).code is ErrorCode.MESSAGE_TOO_LARGE
